# Malformed test manifest: init asks for a launcher (it serves the Launcher; only services hold one)
@0xf6b2d84a1c93e057;

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
      (name = "launcher", expectedInterfaceId = S.launcherInterfaceId, source = (launcher = void)),
    ],
  ),
);
