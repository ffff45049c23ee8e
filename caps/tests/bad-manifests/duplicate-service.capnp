# Malformed test manifest: two services share a name
@0xb77746287316073f;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [T.echoServer, T.echoClient, (name = "echo-client", binary = "timer-demo")],
);
