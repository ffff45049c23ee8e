# Heap growth: init starts heap-demo twice. "heap" holds a VirtualMemory
# capability: its heap grows well past the runtime's arena, then it uses up
# its frame quota on purpose and its next allocation fails with the
# runtime's report. "heap-novm" holds none: its first allocation larger
# than the arena fails the same way, naming the missing capability. Both
# end with the panic exit code (101); nothing else is affected.
@0xe1a5503d2dd9080d;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const console :M.CapRef = (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console));

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "heap-demo", module = "heap-demo"),
  ],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "init",
    caps = [
      .console,
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
    ],
  ),
  services = [
    (name = "heap", binary = "heap-demo", caps = [.console, (name = "vm", expectedInterfaceId = C.virtualMemoryInterfaceId, source = (kernel = virtualMemory))]),
    (name = "heap-novm", binary = "heap-demo", caps = [.console]),
  ],
);
