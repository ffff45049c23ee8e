# Malformed test manifest: a service declares two caps with one name
@0x815e054a40476eff;

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
      caps = [T.console, (name = "console", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer))],
    ),
  ],
);
