# Malformed test manifest: init runs an undeclared binary
@0xf6d950c561b097c0;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = (binary = "sbin-init"),
);
