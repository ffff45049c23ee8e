# Sessions and the kernel services they rest on: session-test runs as init
# with EntropySource, SystemInfo, SessionAuthority and a ProcessSpawner, and
# starts a child of its own binary in a session it creates
# (services/session-test, docs/sessions.md).
@0xc4b0e61f3a9d2e51;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "session-test", module = "session-test"),
  ],
  kernel = (logLevel = info, maxCpus = 0, motd = "capOS sessions test."),
  init = (
    binary = "session-test",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "entropy", expectedInterfaceId = C.entropySourceInterfaceId, source = (kernel = entropy)),
      (name = "sysinfo", expectedInterfaceId = C.systemInfoInterfaceId, source = (kernel = systemInfo)),
      (name = "sessions", expectedInterfaceId = C.sessionAuthorityInterfaceId, source = (kernel = sessionAuthority)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
      (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer)),
      (name = "ep", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
      (name = "ep2", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
    ],
  ),
  services = [],
);
