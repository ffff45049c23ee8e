# The process-test manifest: init plus processes the kernel starts itself
# (until init can spawn services): four workers, one process per CPU fault
# kind (page fault, general protection, invalid opcode, divide error, x87
# use), and a
# hostile process that also holds a Null cap, a timer demo and a
# VirtualMemory demo. Every one
# gets only the
# kernel-minted caps listed here. Check it with
#   cargo run -p capos-caps --features std --bin mkmanifest -- check manifests/procs.capnp
@0xa585b5b98f160d78;

using M = import "/manifest.capnp";
using C = import "/capos.capnp";

const console :M.CapRef = (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console));
const null :M.CapRef = (name = "null", expectedInterfaceId = C.nullInterfaceId, source = (kernel = null));
const timer :M.CapRef = (name = "timer", expectedInterfaceId = C.timerInterfaceId, source = (kernel = timer));
const vm :M.CapRef = (name = "vm", expectedInterfaceId = C.virtualMemoryInterfaceId, source = (kernel = virtualMemory));

const manifest :M.SystemManifest = (
  schemaVersion = 1,
  binaries = [
    (name = "init", module = "init"),
    (name = "worker", module = "worker"),
    (name = "fault-pf", module = "fault-pf"),
    (name = "fault-gp", module = "fault-gp"),
    (name = "fault-ud", module = "fault-ud"),
    (name = "fault-de", module = "fault-de"),
    (name = "fault-nm", module = "fault-nm"),
    (name = "hostile", module = "hostile"),
    (name = "timer-demo", module = "timer-demo"),
    (name = "vm-demo", module = "vm-demo"),
  ],
  kernel = (
    logLevel = info,
    maxCpus = 0,
    bootProcesses = [
      (binary = "worker", caps = [.console]),
      (binary = "worker", caps = [.console]),
      (binary = "worker", caps = [.console]),
      (binary = "worker", caps = [.console]),
      (binary = "fault-pf", caps = [.console]),
      (binary = "fault-gp", caps = [.console]),
      (binary = "fault-ud", caps = [.console]),
      (binary = "fault-de", caps = [.console]),
      (binary = "fault-nm", caps = [.console]),
      (binary = "hostile", caps = [.console, .null]),
      (binary = "timer-demo", caps = [.console, .timer]),
      (binary = "vm-demo", caps = [.console, .vm, .timer]),
    ],
  ),
  init = (
    binary = "init",
    caps = [
      (name = "console", expectedInterfaceId = C.consoleInterfaceId, source = (kernel = console)),
      (name = "boot", expectedInterfaceId = C.bootPackageInterfaceId, source = (kernel = bootPackage)),
    ],
  ),
  services = [],
);
