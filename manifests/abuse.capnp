# Self-abuse regression: a process that turns its own capabilities on
# itself (services/self-abuse), a keeper that takes over an endpoint owner
# it moves away, and a victim killed with 24 operations waiting (8 long
# sleeps and 16 calls filling the self-abuser's `sink`). The same binary
# plays all three roles, chosen by the names in its CapSet. Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/abuse.capnp
@0xd983f51ca1338e5f;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "self-abuse", module = "self-abuse"),
  ],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "init",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
    ],
  ),
  services = [
    (
      name = "keeper",
      binary = "self-abuse",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (name = "keeper", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      ],
      exports = [(name = "keeper", cap = "keeper", facet = client)],
    ),
    (
      name = "self-abuse",
      binary = "self-abuse",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
        (name = "vm", expectedInterfaceId = C.virtualMemoryInterfaceId, source = (kernel = virtualMemory)),
        (
          name = "keeper",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "keeper", export = "keeper")),
        ),
        (name = "control", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "sink", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "release", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "moved", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "queued", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "twice", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "itself", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "own", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "other", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      ],
      exports = [
        (name = "sink", cap = "sink", facet = client),
        (name = "watch", cap = "control", facet = client),
      ],
    ),
    (
      name = "victim",
      binary = "self-abuse",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
        (
          name = "sink",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "self-abuse", export = "sink")),
        ),
        (
          name = "watch",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "self-abuse", export = "watch")),
        ),
        (name = "notice", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      ],
    ),
  ],
);
