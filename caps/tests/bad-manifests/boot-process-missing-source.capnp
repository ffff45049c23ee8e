# Malformed test manifest: a boot process cap has no source
@0xb924d6f8f142e1d0;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (bootProcesses = [
    (binary = "timer-demo", caps = [(name = "timer", expectedInterfaceId = C.timerInterfaceId)]),
  ]),
  init = T.init,
);
