# The credential store (docs/sessions.md): init hands authd the manifest's
# accounts as its `config` (allocated from init's frameAllocator), a frame
# quota Argon2id's 19 MiB fit in, and a VirtualMemory for its heap to grow;
# authd-test checks its answers over the `credentials` export and stops it
# through `control`. The operator's password is "hunter2" (made with
# `mkmanifest passwd`); the guest has none. No EntropySource here: authd
# then refuses `setup` (the operator has a password anyway).
@0xa887a4449eeebfe3;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const console :M.CapRef = (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console));
const timer :M.CapRef = (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer));

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "authd", module = "authd"),
    (name = "authd-test", module = "authd-test"),
  ],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "init",
    caps = [
      .console,
      .timer,
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
      (name = "frames", expectedInterfaceId = C.frameAllocatorInterfaceId, source = (kernel = frameAllocator)),
    ],
  ),
  services = [
    (
      name = "authd",
      binary = "authd",
      caps = [
        .console,
        .timer,
        (name = "endpoint", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "control", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
        (name = "vm", expectedInterfaceId = C.virtualMemoryInterfaceId, source = (kernel = virtualMemory)),
      ],
      exports = [
        (name = "credentials", cap = "endpoint", facet = client),
        (name = "control", cap = "control", facet = client),
      ],
      frameLimit = 8192,
      sessionsConfig = true,
    ),
    (
      name = "authd-test",
      binary = "authd-test",
      caps = [
        .console,
        .timer,
        (name = "auth", expectedInterfaceId = C.clientEndpointInterfaceId,
         source = (service = (service = "authd", export = "credentials"))),
        (name = "control", expectedInterfaceId = C.clientEndpointInterfaceId,
         source = (service = (service = "authd", export = "control"))),
      ],
    ),
  ],
  sessions = (
    accounts = [
      (name = "operator", principal = "operator", profile = "operator",
       passwordHash = "$argon2id$v=19$m=19456,t=2,p=1$fH/3ixB83YUb5uV/JrCCkg$8UEx3ZOB1yUksyCTl6wZrSQd6bFCbwxjl+EKpvcKZhU"),
      (name = "guest", principal = "guest-1", profile = "guest"),
    ],
    profiles = [
      (name = "operator"),
      (name = "guest"),
      (name = "anonymous"),
    ],
  ),
);
