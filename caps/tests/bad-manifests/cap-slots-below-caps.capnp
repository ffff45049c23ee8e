# Malformed test manifest: a service's cap-slot quota cannot hold the caps it starts with
@0xd8e27c1a4f0b3c52;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [T.echoServer, (name = "echo-client", binary = "echo-client", caps = [T.console, T.echoImport], capSlots = 1)],
);
