# Malformed test manifest: a manifest from a newer schema
@0xc39d3b2f1cba9778;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 2,
  binaries = T.binaries,
  init = T.init,
);
