# The login proof (scripts/terminal_run.py, scenario `login`): the system of
# `make run` (manifests/system.capnp: the same binaries, init and services)
# with passwords in the manifest, made by `mkmanifest passwd`: the
# operator's is "correct horse battery", and a guest account ("guest",
# password "guest pass") whose profile grants nothing. Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/login.capnp
@0xc3a5d7e90b1f2468;

using M = import "/manifest.capnp";
using Sys = import "system.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = Sys.binaries,
  kernel = (logLevel = info, maxCpus = 0, terminal = com2, motd = "This is the login proof's capOS."),
  init = Sys.initProcess,
  services = Sys.services,
  sessions = (
    accounts = [
      (
        name = "operator",
        principal = "operator",
        profile = "operator",
        passwordHash = "$argon2id$v=19$m=19456,t=2,p=1$1thxE6re6qDRbJmJzs+9PA$9sh/dDdOVtqr4xA+k7RrHzX2xFmrdHWo84EhpAXMDf8",
      ),
      (
        name = "guest",
        principal = "guest-1",
        profile = "guest",
        passwordHash = "$argon2id$v=19$m=19456,t=2,p=1$n78Vkrl0DGnKWYc3VOej/A$3QDFgfG5omr1aTmldzPgjB5xEC9o5DNbRwLyymEkrLo",
      ),
    ],
    profiles = Sys.profiles,
  ),
);
