# Malformed test manifest: a boot process runs an undeclared binary
@0xc4b5dae2399ca0fc;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (bootProcesses = [
    (binary = "timer-demo", caps = [T.console]),
    (binary = "sbin-worker", caps = [T.console]),
  ]),
  init = T.init,
);
