# The smoke-test manifest: init alone with a console and the boot package, so
# it can read and print the service graph. The other binaries are packed so
# the same ISO layout serves the process tests (see procs.capnp). Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/smoke.capnp
@0xb98d8e7b7e20bafe;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "hostile", module = "hostile"),
    (name = "worker", module = "worker"),
    (name = "fault-pf", module = "fault-pf"),
    (name = "fault-gp", module = "fault-gp"),
    (name = "fault-ud", module = "fault-ud"),
    (name = "fault-de", module = "fault-de"),
  ],
  kernel = (logLevel = info, maxCpus = 0, bootProcesses = []),
  init = (
    binary = "init",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
    ],
  ),
  services = [],
);
