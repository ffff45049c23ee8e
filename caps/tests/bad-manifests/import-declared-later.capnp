# Malformed test manifest: the importer comes before its exporter
@0x98912cbeed7402b8;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [T.echoClient, T.echoServer],
);
