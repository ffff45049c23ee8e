# Malformed test manifest: a service re-exports an import
@0xe6842e08bc7ff428;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    T.echoServer,
    (
      name = "echo-client",
      binary = "echo-client",
      caps = [T.echoImport],
      exports = [(name = "relay", cap = "echo")],
    ),
  ],
);
