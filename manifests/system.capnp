# What `make run` boots: a person at the terminal (COM2, the serial console
# `make run` puts on your terminal) gets the capability shell, holding the
# schema registry (and the right to stop it), an echo service, a timer, a
# console, the measurement Null, and init's Launcher for the programs on its
# allowlist (`hello`); the kernel log goes to COM1 (a file).
# Stopping the echo server (`echo.quit()`) and the registry
# (`registryControl.stop()`) and leaving the shell (`exit`) ends the system. Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/system.capnp
@0xed016cb94e4dcc60;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using S = import "/services.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "registry", module = "registry"),
    (name = "echo-server", module = "echo-server"),
    (name = "shell", module = "shell"),
    (name = "hello", module = "hello"),
  ],
  kernel = (logLevel = info, maxCpus = 0, terminal = com2),
  init = (
    binary = "init",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
      (name = "terminal", expectedInterfaceId = C.terminalSessionInterfaceId, source = (kernel = terminal)),
      (name = "launcher", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
    ],
  ),
  services = [
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
          name = "echo",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "echo-server", export = "echo")),
        ),
        (
          name = "registryControl",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "registry", export = "control")),
        ),
        (name = "launcher", expectedInterfaceId = S.launcherInterfaceId, source = (launcher = void)),
      ],
      launchable = ["hello"],
    ),
  ],
);
