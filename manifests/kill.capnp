# ProcessHandle.kill: `kill-test` runs as init with a spawner and kills
# children in every state a process can be in (spinning in user mode on
# another CPU, blocked in a sleep, blocked in a RECV with a call in flight
# to it, already exited, killed twice, killing itself); see
# services/kill-test. Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/kill.capnp
@0xb1c0a3f4e6d25a71;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "kill-test", module = "kill-test"),
  ],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "kill-test",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
      (name = "roster", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
    ],
  ),
  services = [],
);
