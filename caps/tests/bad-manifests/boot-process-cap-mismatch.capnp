# Malformed test manifest: a boot process expects a console from its null cap
@0x8424feb588742795;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (bootProcesses = [
    (binary = "timer-demo", caps = [(name = "null", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = null))]),
  ]),
  init = T.init,
);
