# Malformed test manifest: an endpoint exported without attenuation
@0xbe08df9d300c723a;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    (
      name = "echo-server",
      binary = "echo-server",
      caps = [T.endpoint],
      exports = [(name = "echo", cap = "endpoint", facet = raw)],
    ),
  ],
);
