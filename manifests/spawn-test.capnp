# ProcessSpawner test: spawn-test runs as init with a spawner and starts
# (and refuses to start) children itself. `not-elf` is a boot module that is
# not an executable, to prove a bad binary is refused without leaking.
@0xa1762d22f9cb7101;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "spawn-test", module = "spawn-test"),
    (name = "template", module = "template"),
    (name = "not-elf", module = "not-elf"),
  ],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "spawn-test",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
    ],
  ),
  services = [],
);
