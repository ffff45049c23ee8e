# Malformed test manifest: a service asks for a terminal init does not hold
@0xb9fb64b318424c3b;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    (
      name = "timer-demo",
      binary = "timer-demo",
      caps = [(name = "tty", expectedInterfaceId = C.terminalSessionInterfaceId, source = (kernel = terminal))],
    ),
  ],
);
