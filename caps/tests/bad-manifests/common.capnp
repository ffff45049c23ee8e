# Shared pieces for the malformed test manifests in this directory (not a manifest).
@0x8172360c7f2f8a15;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const binaries :List(M.Binary) = [
  (name = "init", module = "init"),
  (name = "echo-server", module = "echo-server"),
  (name = "echo-client", module = "echo-client"),
  (name = "timer-demo", module = "timer-demo"),
];

const init :M.InitProcess = (
  binary = "init",
  caps = [
    (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
    (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
    (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
    (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
  ],
);

const console :M.CapRef = (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console));
const endpoint :M.CapRef = (name = "endpoint", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint));
const echoImport :M.CapRef = (
  name = "echo",
  expectedInterfaceId = C.clientEndpointInterfaceId,
  source = (service = (service = "echo-server", export = "echo")),
);

const echoServer :M.Service = (
  name = "echo-server",
  binary = "echo-server",
  caps = [.console, .endpoint],
  exports = [(name = "echo", cap = "endpoint", facet = client)],
);

const echoClient :M.Service = (name = "echo-client", binary = "echo-client", caps = [.console, .echoImport]);
