# Malformed test manifest: an account's Argon2id hash is below the cost floor
@0xf6ffe5cedaa72b47;

using M = import "/manifest.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [],
  sessions = (
    accounts = [(name = "operator", principal = "operator", profile = "operator",
                 passwordHash = "$argon2id$v=19$m=4096,t=3,p=1$fH/3ixB83YUb5uV/JrCCkg$8UEx3ZOB1yUksyCTl6wZrSQd6bFCbwxjl+EKpvcKZhU")],
    profiles = [(name = "operator")],
  ),
);
