# Malformed test manifest: a boot process asks for the boot package
@0xcb4810daa31a122e;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (bootProcesses = [
    (binary = "timer-demo", caps = [T.console, (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage))]),
  ]),
  init = T.init,
);
