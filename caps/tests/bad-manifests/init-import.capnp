# Malformed test manifest: init imports from a service
@0xb19e6df18bd91ed4;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = (binary = "init", caps = [T.echoImport]),
);
