# Malformed test manifest: a service asks for a launcher, init has no `launcher` endpoint to serve it on
@0xc5e81b3d27a04f69;

using M = import "/manifest.capnp";
using S = import "/services.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    (
      name = "timer-demo",
      binary = "timer-demo",
      caps = [.T.console, (name = "launcher", expectedInterfaceId = S.launcherInterfaceId, source = (launcher = void))],
      launchable = ["echo-client"],
    ),
  ],
);
