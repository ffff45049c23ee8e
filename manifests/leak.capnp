# The leak test: leak-test runs as init with a spawner and an endpoint of
# its own, spawns and reaps 10,000 children (leak-test again, exiting at
# once) and creates and releases 100,000 capabilities, then checks that
# spawns and inserts still work, up to its cap-slot quota of 1000 (above the
# default 256, so its table must grow past it). The kernel's final report
# compares the free frames with those before the first process. Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/leak.capnp
@0xe6f2a9c14b7d3085;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "leak-test", module = "leak-test"),
  ],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "leak-test",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
      (name = "endpoint", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
    ],
    capSlots = 1000,
  ),
  services = [],
);
