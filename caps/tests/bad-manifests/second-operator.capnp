# Malformed test manifest: two accounts have the operator profile
@0x944d97aaf84a429e;

using M = import "/manifest.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [],
  sessions = (
    accounts = [
      (name = "operator", principal = "operator", profile = "operator"),
      (name = "root", principal = "root", profile = "operator"),
    ],
    profiles = [(name = "operator")],
  ),
);
