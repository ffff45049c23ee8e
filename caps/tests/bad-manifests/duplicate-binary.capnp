# Malformed test manifest: two binaries share a name
@0xef3f65bcd706f379;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [(name = "init", module = "init"), (name = "init", module = "init2")],
  init = (binary = "init"),
);
