# Init starting a service graph: init holds the boot package and a process
# spawner, validates the graph, starts each service with exactly the caps it
# declares, and reports each exit. vm-demo ends by faulting on purpose, so
# its exit code shows supervision of a killed service. The worker is pinned
# to CPU 1, and the echo server and client to CPUs 1 and 0, so every call
# and answer between them crosses CPUs (the smoke boots this manifest with
# two CPUs).
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
    (name = "echo-server", module = "echo-server"),
    (name = "echo-client", module = "echo-client"),
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
    (name = "cruncher", binary = "worker", caps = [.console], placement = (cpu = 1)),
    (name = "memory", binary = "vm-demo", caps = [.console, .vm, .timer]),
    (
      name = "echo-server",
      binary = "echo-server",
      caps = [.console, (name = "endpoint", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint))],
      exports = [(name = "echo", cap = "endpoint", facet = client)],
      placement = (cpu = 1),
    ),
    (
      name = "echo-client",
      binary = "echo-client",
      caps = [
        .console,
        (name = "echo", expectedInterfaceId = C.clientEndpointInterfaceId, source = (service = (service = "echo-server", export = "echo"))),
        .timer,
        (name = "own", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      ],
      placement = (cpu = 0),
    ),
  ],
);
