# Init starting a service graph: init holds the boot package and a process
# spawner, validates the graph, starts each service with exactly the caps it
# declares, and reports each exit. vm-demo ends by faulting on purpose, so
# its exit code shows supervision of a killed service.
@0xc7fc1ac67e3c6bb3;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const console :M.CapRef = (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console));
const timer :M.CapRef = (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer));
const vm :M.CapRef = (name = "vm", expectedInterfaceId = C.virtualMemoryInterfaceId, source = (kernel = virtualMemory));

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "timer-demo", module = "timer-demo"),
    (name = "worker", module = "worker"),
    (name = "vm-demo", module = "vm-demo"),
  ],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "init",
    caps = [
      .console,
      .timer,
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
    ],
  ),
  services = [
    (name = "clock", binary = "timer-demo", caps = [.console, .timer]),
    (name = "cruncher", binary = "worker", caps = [.console]),
    (name = "memory", binary = "vm-demo", caps = [.console, .vm, .timer]),
  ],
);
