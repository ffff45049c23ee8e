# Malformed test manifest: an export names a cap its service does not declare
@0xeef867c97c1bf0bd;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    (name = "echo-server", binary = "echo-server", caps = [T.endpoint], exports = [(name = "echo", cap = "ep")]),
  ],
);
