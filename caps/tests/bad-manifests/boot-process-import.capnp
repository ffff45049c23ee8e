# Malformed test manifest: a boot process imports a service export
@0xa94e08bb0592639b;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (bootProcesses = [
    (binary = "echo-client", caps = [T.console, T.echoImport]),
  ]),
  init = T.init,
);
