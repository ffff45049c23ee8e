# Malformed test manifest: a boot process asks for the process spawner
@0x97e58623cd7bd73c;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (bootProcesses = [
    (binary = "echo-server", caps = [T.console]),
    (binary = "timer-demo", caps = [(name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner))]),
  ]),
  init = T.init,
);
