# Malformed test manifest: a service imports an export its exporter does not declare
@0xdbf94e85968a741d;

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
          expectedInterfaceId = C.clientEndpointInterfaceId,
          source = (service = (service = "echo-server", export = "ping")),
        ),
      ],
    ),
  ],
);
