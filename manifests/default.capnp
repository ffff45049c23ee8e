# The default capOS boot manifest: init, an echo server and client pair over
# an endpoint, the schema registry (which the echo client reads Echo back
# from, then stops), a shared-memory producer and consumer, and a timer
# demo. Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/default.capnp
@0xd33f21ec1717a09b;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "echo-server", module = "echo-server"),
    (name = "echo-client", module = "echo-client"),
    (name = "registry", module = "registry"),
    (name = "shm-producer", module = "shm-producer"),
    (name = "shm-consumer", module = "shm-consumer"),
    (name = "timer-demo", module = "timer-demo"),
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
      name = "echo-server",
      binary = "echo-server",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (name = "endpoint", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      ],
      exports = [(name = "echo", cap = "endpoint", facet = client)],
    ),
    (
      name = "registry",
      binary = "registry",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (name = "endpoint", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "control", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      ],
      exports = [
        (name = "registry", cap = "endpoint", facet = client),
        (name = "control", cap = "control", facet = client),
      ],
    ),
    (
      name = "echo-client",
      binary = "echo-client",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (
          name = "echo",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "echo-server", export = "echo")),
        ),
        (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
        (name = "own", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (
          name = "registry",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "registry", export = "registry")),
        ),
        (
          name = "registryControl",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "registry", export = "control")),
        ),
      ],
    ),
    (
      name = "shm-producer",
      binary = "shm-producer",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (name = "frames", expectedInterfaceId = C.frameAllocatorInterfaceId, source = (kernel = frameAllocator)),
        (name = "endpoint", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      ],
      exports = [(name = "shm", cap = "endpoint", facet = client)],
    ),
    (
      name = "shm-consumer",
      binary = "shm-consumer",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (
          name = "shm",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "shm-producer", export = "shm")),
        ),
      ],
    ),
    (
      name = "timer-demo",
      binary = "timer-demo",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      ],
    ),
  ],
);
