# Timer stress: `sleepers` runs as init with a spawner and spawns 63 copies
# of itself, which together keep 1,008 sleeps pending at once, interleaved
# across processes, and check each completes in deadline order (see
# services/sleepers). Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/sleepers.capnp
@0xd3e4246db0501aa0;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "sleepers", module = "sleepers"),
  ],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "sleepers",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
      (name = "roster", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
    ],
  ),
  services = [],
);
