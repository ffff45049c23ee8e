# Malformed test manifest: a service asks for the boot package
@0xc4e6f9eaaeb1afc1;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    (
      name = "timer-demo",
      binary = "timer-demo",
      caps = [(name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage))],
    ),
  ],
);
