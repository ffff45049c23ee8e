# Malformed test manifest: a cap without a source
@0xf559ba0855372417;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    (name = "timer-demo", binary = "timer-demo", caps = [(name = "timer", expectedInterfaceId = C.timerInterfaceId)]),
  ],
);
