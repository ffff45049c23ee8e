# Malformed test manifest: a service exports its console
@0x96249abdde37914e;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    (name = "echo-server", binary = "echo-server", caps = [T.console], exports = [(name = "log", cap = "console")]),
  ],
);
