# The Launcher test: init serves its Launcher on its `launcher` endpoint;
# launcher-test holds one that may start `template` and `launcher-test`
# itself (for the child role, which is given a copy and refused). `hostile`
# is declared but not launchable. Init's cap-slot quota is small on
# purpose: a capability it kept from a launch would soon fill its table.
@0xc2de0ca3cc95cc29;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using S = import "/services.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "launcher-test", module = "launcher-test"),
    (name = "template", module = "template"),
    (name = "hostile", module = "hostile"),
  ],
  kernel = (logLevel = info, maxCpus = 0),
  init = (
    binary = "init",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
      (name = "spawner", expectedInterfaceId = C.processSpawnerInterfaceId, source = (kernel = processSpawner)),
      (name = "launcher", expectedInterfaceId = C.endpointInterfaceId, source = (kernel = endpoint)),
    ],
    capSlots = 12,
  ),
  services = [
    (
      name = "launcher-test",
      binary = "launcher-test",
      caps = [
        (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
        (name = "launcher", expectedInterfaceId = S.launcherInterfaceId, source = (launcher = void)),
      ],
      launchable = ["template", "launcher-test"],
    ),
  ],
);
