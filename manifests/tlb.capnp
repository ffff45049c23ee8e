# The TLB shoot-down test: init plus the VirtualMemory demo started by the
# kernel on an otherwise quiet machine. The demo sleeps between using memory
# and changing its mapping, so it tends to wake on another CPU while the
# CPU it left idles with its page tables still loaded; each protect or unmap
# after such a move must interrupt that CPU (the kernel counts the IPIs in
# its final report). Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/tlb.capnp
@0xd3b1f0c7a9e26a41;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const console :M.CapRef = (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console));
const timer :M.CapRef = (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer));
const vm :M.CapRef = (name = "vm", expectedInterfaceId = C.virtualMemoryInterfaceId, source = (kernel = virtualMemory));

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "vm-demo", module = "vm-demo"),
  ],
  kernel = (
    logLevel = info,
    maxCpus = 0,
    bootProcesses = [
      (binary = "vm-demo", caps = [.console, .vm, .timer]),
    ],
  ),
  init = (
    binary = "init",
    caps = [.console, (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage))],
  ),
  services = [],
);
