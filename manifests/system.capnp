# What `make run` boots: a person at the terminal (COM2, the serial console
# `make run` puts on your terminal) gets the capability shell in an
# anonymous session: it holds its terminal, a timer, a console, the
# measurement Null, the schema registry (and the right to stop it) and the
# session manager. This is a first boot: the operator account has no
# password yet, so `setup` sets a volatile one and logs in; the operator's
# bundle then holds SystemInfo, the echo service and the audit log, and its
# launcher starts `hello` and `session-probe`. The kernel log goes to COM1
# (a file). Leaving the shell (`exit`) ends the system. Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/system.capnp
@0xed016cb94e4dcc60;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using S = import "/services.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = .binaries,
  kernel = (logLevel = info, maxCpus = 0, terminal = com2),
  init = .initProcess,
  services = .services,
  sessions = (
    accounts = [
      # No password yet: the first `setup` sets a volatile one.
      (name = "operator", principal = "operator", profile = "operator", passwordHash = ""),
    ],
    profiles = .profiles,
  ),
);

const binaries :List(M.Binary) = [
  (name = "init", module = "init"),
  (name = "registry", module = "registry"),
  (name = "echo-server", module = "echo-server"),
  (name = "shell", module = "shell"),
  (name = "hello", module = "hello"),
  (name = "authd", module = "authd"),
  (name = "sessiond", module = "sessiond"),
  (name = "session-probe", module = "session-probe"),
];

const initProcess :M.InitProcess = (
  binary = "init",
  caps = [
    (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
    (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
    (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
    (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
    (name = "terminal", expectedInterfaceId = C.terminalSessionInterfaceId, source = (kernel = terminal)),
    (name = "frames", expectedInterfaceId = C.frameAllocatorInterfaceId, source = (kernel = frameAllocator)),
    (name = "entropy", expectedInterfaceId = C.entropySourceInterfaceId, source = (kernel = entropy)),
    (name = "systemInfo", expectedInterfaceId = C.systemInfoInterfaceId, source = (kernel = systemInfo)),
    (name = "authority", expectedInterfaceId = C.sessionAuthorityInterfaceId, source = (kernel = sessionAuthority)),
  ],
);

const services :List(M.Service) = [
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
    name = "echo-server",
    binary = "echo-server",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "endpoint", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
    ],
    exports = [(name = "echo", cap = "endpoint", facet = client)],
  ),
  (
    name = "authd",
    binary = "authd",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      (name = "entropy", expectedInterfaceId = C.entropySourceInterfaceId, source = (kernel = entropy)),
      (name = "endpoint", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      (name = "vm", expectedInterfaceId = C.virtualMemoryInterfaceId, source = (kernel = virtualMemory)),
    ],
    exports = [(name = "credentials", cap = "endpoint", facet = client)],
    frameLimit = 8192,
    sessionsConfig = true,
  ),
  (
    name = "sessiond",
    binary = "sessiond",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      (name = "authority", expectedInterfaceId = C.sessionAuthorityInterfaceId, source = (kernel = sessionAuthority)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (spawner = void)),
      (
        name = "credentials",
        expectedInterfaceId = C.clientEndpointInterfaceId,
        source = (service = (service = "authd", export = "credentials")),
      ),
      (name = "sessions", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      (name = "launcher", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      (name = "audit", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      (name = "systemInfo", expectedInterfaceId = C.systemInfoInterfaceId, source = (kernel = systemInfo)),
      (
        name = "echo",
        expectedInterfaceId = C.clientEndpointInterfaceId,
        source = (service = (service = "echo-server", export = "echo")),
      ),
    ],
    exports = [(name = "sessions", cap = "sessions", facet = client)],
    sessionsConfig = true,
  ),
  (
    name = "shell",
    binary = "shell",
    caps = [
      (name = "terminal", expectedInterfaceId = C.terminalSessionInterfaceId, source = (kernel = terminal)),
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      (name = "null", expectedInterfaceId = C.nullInterfaceId, source = (kernel = null)),
      (name = "stdio", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      (
        name = "registry",
        expectedInterfaceId = C.clientEndpointInterfaceId,
        source = (service = (service = "registry", export = "registry")),
      ),
      (
        name = "sessionManager",
        expectedInterfaceId = C.clientEndpointInterfaceId,
        source = (service = (service = "sessiond", export = "sessions")),
      ),
      (
        name = "registryControl",
        expectedInterfaceId = C.clientEndpointInterfaceId,
        source = (service = (service = "registry", export = "control")),
      ),
    ],
    session = (service = "sessiond", export = "sessions"),
    endsSystem = true,
  ),
];

const profiles :List(M.Profile) = [
  (name = "operator", launchable = ["hello", "session-probe"], bundle = ["systemInfo", "echo", "audit"]),
  (name = "guest"),
  (name = "anonymous"),
];
