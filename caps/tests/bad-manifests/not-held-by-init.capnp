# Malformed test manifest: a service asks for a timer init does not hold
@0xb9fb64b318424c3b;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = (
    binary = "init",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
    ],
  ),
  services = [
    (
      name = "timer-demo",
      binary = "timer-demo",
      caps = [(name = "clock", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer))],
    ),
  ],
);
