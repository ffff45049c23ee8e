# Malformed test manifest: init expects a console from its timer
@0xe8d2bdc277f7654a;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = (binary = "init", caps = [(name = "timer", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = timer))]),
);
