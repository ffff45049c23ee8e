# Malformed test manifest: a service asks for a cap-slot quota above the limit
@0xc3a1f2e6b7d4a901;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [(name = "timer-demo", binary = "timer-demo", caps = [T.console], capSlots = 5000)],
);
