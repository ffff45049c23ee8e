# Malformed test manifest: an import expects the owner side of an endpoint
@0xe0936fed721c1b23;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";
using T = import "common.capnp";

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = T.binaries,
  init = T.init,
  services = [
    T.echoServer,
    (
      name = "echo-client",
      binary = "echo-client",
      caps = [
        (
          name = "echo",
          expectedInterfaceId = C.endpointInterfaceId,
          source = (service = (service = "echo-server", export = "echo")),
        ),
      ],
    ),
  ],
);
