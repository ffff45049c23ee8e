# Malformed test manifest: init asks for a cap-slot quota above the limit
@0xa4c9e0b2d61f7e83;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = (binary = "init", caps = [T.console], capSlots = 4097),
);
