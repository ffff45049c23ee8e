# Malformed test manifest: a service pinned to a CPU that kernel.maxCpus leaves off
@0x8b08bac7cb9c0469;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (maxCpus = 2),
  init = T.init,
  services = [(name = "timer-demo", binary = "timer-demo", caps = [T.console], placement = (cpu = 2))],
);
