# Malformed test manifest: a service asks for a kind this kernel cannot mint yet
@0x9d1bf49a134c9bbd;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [(
    name = "timer-demo",
    binary = "timer-demo",
    caps = [T.console, (name = "threads", expectedInterfaceId = C.threadSpawnerInterfaceId, source = (kernel = threadSpawner))],
  )],
);
