# The benchmark manifest used by `make bench`: the bench service runs as
# init with a console, a measurement-only null cap and a process spawner.
# It prints its single-process measurements, then spawns itself as an IPC
# server and client pinned to CPUs (docs/bench.md), and exits when they
# have.
@0xe3a1b7c64f0d2a95;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [(name = "bench", module = "bench")],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "bench",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "null", expectedInterfaceId = C.nullInterfaceId, source = (kernel = null)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
    ],
  ),
  services = [],
);
