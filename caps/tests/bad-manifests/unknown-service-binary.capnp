# Malformed test manifest: a service runs an undeclared binary
@0x8eccb036ec0239f1;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [(name = "timer-demo", binary = "timer", caps = [T.console])],
);
