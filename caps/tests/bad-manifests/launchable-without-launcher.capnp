# Malformed test manifest: a service lists launchable binaries but holds no launcher
@0xd0a7c2e95b3f1846;

using M = import "/manifest.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    (name = "timer-demo", binary = "timer-demo", caps = [.T.console], launchable = ["echo-client"]),
  ],
);
