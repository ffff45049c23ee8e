# Malformed test manifest: a service asks for a frame quota above the limit
@0xe943e6b2c15b5beb;

using M = import "/manifest.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [(name = "timer-demo", binary = "timer-demo", caps = [T.console], frameLimit = 16385)],
);
