# Malformed test manifest: an account's password hash is not an Argon2id PHC string
@0xc5752251d44deaca;

using M = import "/manifest.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [],
  sessions = (
    accounts = [(name = "operator", principal = "operator", profile = "operator", passwordHash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW")],
    profiles = [(name = "operator")],
  ),
);
