# The terminal smoke: init holds the terminal (on COM2, the default) and
# moves it to `terminal-test`, which a script drives by typing on COM2
# while the kernel log goes to COM1 (scripts/terminal_run.py). Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/terminal.capnp
@0xc1b0d79391eb38f0;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "terminal-test", module = "terminal-test"),
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
    ],
  ),
  services = [
    (
      name = "terminal-test",
      binary = "terminal-test",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (name = "terminal", expectedInterfaceId = C.terminalSessionInterfaceId, source = (kernel = terminal)),
        (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      ],
    ),
  ],
);
