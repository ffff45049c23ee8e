# Malformed test manifest: a boot process cap has no name
@0xa0bee72957647f75;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (bootProcesses = [
    (binary = "timer-demo", caps = [(expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console))]),
  ]),
  init = T.init,
);
