# Malformed test manifest: seventeen boot processes, one more than allowed
@0xe40e66f963bc434b;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  kernel = (bootProcesses = [
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
    (binary = "timer-demo", caps = [T.console]),
  ]),
  init = T.init,
);
