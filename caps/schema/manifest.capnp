# The capOS boot manifest: which binaries exist, how the kernel starts init,
# and the service graph init starts. Written as a text `const` and compiled
# with `capnp eval --binary`; see docs/manifest.md.
@0xa59a5c8765d6be96;

using Caps = import "capos.capnp";

const currentSchemaVersion :UInt32 = 1;

struct SystemManifest {
  schemaVersion @0 :UInt32;        # must equal currentSchemaVersion
  binaries @1 :List(Binary);       # every binary packed into the ISO
  kernel @2 :KernelParams;
  init @3 :InitProcess;            # the first process the kernel starts
  services @4 :List(Service);      # started by init, in this order
  sessions @5 :SessionsConfig;     # accounts and profiles (docs/sessions.md)
}

struct SessionsConfig {
  # What the credential store and the session manager are configured with.
  # A service with `sessionsConfig = true` receives it as a read-only
  # MemoryObject cap named `config` holding this struct as a
  # single-segment message.
  accounts @0 :List(Account);
  profiles @1 :List(Profile);
}

struct Account {
  name @0 :Text;          # what `login` asks for
  principal @1 :Text;     # the stable principal id (audit records name it)
  profile @2 :Text;       # one of `profiles`; at most one account is `operator`
  passwordHash @3 :Text;  # Argon2id PHC string (`mkmanifest passwd`); empty: none
                          # set yet (`setup` may create a volatile one for the operator)
}

struct Profile {
  name @0 :Text;          # `operator`, `guest`, `anonymous` or another name
  launchable @1 :List(Text);  # binaries its sessions' launcher may start
  bundle @2 :List(Text);  # the session manager's caps (by CapSet name) each
                          # session of this profile receives, scoped to the
                          # session; `audit` names the session manager's
                          # audit log
}

struct Binary {
  name @0 :Text;     # the name services refer to
  module @1 :Text;   # the GRUB module2 string the binary is loaded under
}

struct KernelParams {
  logLevel @0 :LogLevel = info;
  maxCpus @1 :UInt32;              # 0: every CPU the firmware reports
  bootProcesses @2 :List(InitProcess);  # started by the kernel beside init, kernel-minted caps only; for tests and bring-up
  terminal @3 :SerialPort = com2;  # the serial line of the `terminal` cap; the kernel log stays on com1
  motd @4 :Text;                   # SystemInfo's message of the day; empty: the default

  enum SerialPort {
    com1 @0;       # shared with the kernel log: the two interleave
    com2 @1;
  }

  enum LogLevel {
    error @0;
    warn @1;
    info @2;
    debug @3;
    trace @4;
  }
}

struct InitProcess {
  binary @0 :Text;
  caps @1 :List(CapRef);           # kernel-minted caps only
  capSlots @2 :UInt32;             # cap-slot quota; 0: the default (256); at most 4096
}

struct Service {
  name @0 :Text;
  binary @1 :Text;
  caps @2 :List(CapRef);           # the service's CapSet, in this order
  exports @3 :List(Export);        # caps later services may import
  placement @4 :Caps.Placement;    # where it runs; left out: any CPU
  capSlots @5 :UInt32;             # cap-slot quota; 0: the default (256); at most 4096
  launchable @6 :List(Text);       # binaries its launcher may start (needs a `launcher` cap)
  frameLimit @7 :UInt32;           # frame quota in pages; 0: the default (4096); at most 16384
  session @8 :ImportRef;           # left out: init's session; else the SessionManager export
                                   # that mints the anonymous session it runs in
  sessionsConfig @9 :Bool;         # receives the manifest's `sessions` as cap `config`
  endsSystem @10 :Bool;            # when it exits, init ends the services still running
}

struct CapRef {
  name @0 :Text;                   # the name the holder looks the cap up by
  expectedInterfaceId @1 :UInt64;  # must match what the source provides
  source :union {
    unset @2 :Void;                # the default: rejected, sources are explicit
    kernel @3 :Caps.KernelCapKind; # minted by the kernel
    service @4 :ImportRef;         # another service's export
    launcher @5 :Void;             # init's Launcher, limited to the service's `launchable` binaries
    spawner @6 :Void;              # a copy of init's ProcessSpawner (for a session manager)
  }
}

struct ImportRef {
  service @0 :Text;
  export @1 :Text;
}

struct Export {
  name @0 :Text;                   # the name importers use
  cap @1 :Text;                    # one of the exporting service's own caps
  facet @2 :Facet;

  enum Facet {
    client @0;                     # importers get a CALL-only ClientEndpoint
    raw @1;                        # importers would get the owner side: rejected
  }
}
