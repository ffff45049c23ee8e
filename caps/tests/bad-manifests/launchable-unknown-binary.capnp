# Malformed test manifest: a launcher's allowlist names a binary the manifest does not declare
@0xe3c1f5a0b7d24e91;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using S = import "/services.capnp";
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
      (name = "launcher", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
    ],
  ),
  services = [
    (
      name = "timer-demo",
      binary = "timer-demo",
      caps = [.T.console, (name = "launcher", expectedInterfaceId = S.launcherInterfaceId, source = (launcher = void))],
      launchable = ["echo-client", "hostile"],
    ),
  ],
);
