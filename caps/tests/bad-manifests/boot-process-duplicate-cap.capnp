# Malformed test manifest: a boot process declares one cap name twice
@0xf6ff0cfeb4aa02a6;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (bootProcesses = [
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console, (name = "console", expectedInterfaceId = C.nullInterfaceId, source = (kernel = null))]),
  ]),
  init = T.init,
);
