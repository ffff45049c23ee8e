# Malformed test manifest: a service imports from a service that does not exist
@0x97b5e753d12b8ca4;

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
        T.console,
        (
          name = "echo",
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "echo-srv", export = "echo")),
        ),
      ],
    ),
  ],
);
