# Protocols that userspace services serve over endpoints. Client and server
# code for them is generated from this file like for the kernel interfaces
# (see docs/schema.md); the kernel never interprets them.
@0xb1a923be88ea1a95;

using C = import "capos.capnp";

interface Echo @0x975f538cdc85f147 {
  # The echo server of the default service graph.
  echo @0 (data :Data) -> (data :Data);
  # Answers with the data it was sent.
  fail @1 () -> ();
  # Always answers with an application exception.
  quit @2 () -> ();
  # Answers, then the server exits (clients then see a dead server).
  inspectCaps @3 () -> (count :UInt32);
  # Reports the capabilities sent with the call on the console, releases
  # them, and answers with how many there were.
  useTimer @4 () -> (nanos :UInt64);
  # Calls `now` on a Timer sent with the call and answers with it.
}

interface SharedMemoryDemo @0x9c9e36a5ed2f6b45 {
  # The shared-memory producer's protocol (the consumer is its client).
  share @0 () -> (memory :UInt16 $C.resultCap("MemoryObject"));
  # A copy of the producer's memory object.
  check @1 () -> (answer :Text);
  # The consumer's answer as the producer reads it in its own mapping of
  # the shared pages (an exception if the consumer has not written it).
  refusedReturns @2 () -> (note :Text);
  # The producer first tries two RETURNs the kernel must refuse, then
  # answers with a note.
  done @3 () -> ();
  # Ends the demo.
  giveFrames @4 () -> (frames :UInt16 $C.resultCap("FrameAllocator"));
  # Moves the producer's FrameAllocator to the caller.
}

interface Keeper @0xda89b528f4e19098 {
  # The self-abuse keeper (services/self-abuse in its keeper role): a
  # second process that takes over an endpoint's owner side moved to it.
  keep @0 () -> ();
  # The caller moves an endpoint's owner side with the call. The keeper
  # answers, then serves exactly one call on that endpoint (answering
  # "kept:" followed by the parameters) and holds it until `quit`.
  quit @1 () -> ();
  # Answers, releases what it holds, and exits.
}

interface Watch @0xc6cd61bad6a31e85 {
  # Served by self-abuse to the victim of its kill case.
  watch @0 () -> ();
  # The caller sends a client facet of an endpoint it owns and never
  # serves. Self-abuse calls that facet; the call completes CANCELLED when
  # the caller has exited (its endpoint closes with it).
  full @1 () -> ();
  # The caller's calls now fill self-abuse's `sink`; answered once
  # self-abuse has seen its own call refused there.
}

struct SleeperResult @0xf242e03137ffb6d2 {
  # What one sleepers child saw.
  index @0 :UInt32;
  # Its index (spawn order).
  pid @1 :UInt32;
  # Its pid.
  sleeps @2 :UInt32;
  # Sleeps that completed successfully.
  inOrder @3 :Bool;
  # Whether they completed in deadline order (by their position in its
  # completion queue).
  early @4 :UInt32;
  # Sleeps that completed before their deadline.
  late @5 :UInt32;
  # Deadlines that had passed before all its sleeps were submitted.
}

interface Sleepers @0xf253ff1651ad2830 {
  # The sleepers parent's roll call (services/sleepers).
  join @0 () -> (index :UInt32, count :UInt32);
  # A child's index (spawn order) and how many children there are.
}

interface Sleeper @0xf565d208d07278bf {
  # Served by each sleepers child on its own endpoint, to the parent.
  go @0 (base :UInt64) -> ();
  # The common base time of every child's deadlines (ns, monotonic clock).
  # The child answers, then makes its sleeps.
  result @1 () -> (result :SleeperResult);
  # What the child saw, once its sleeps are done; it exits after answering.
}

interface SchemaRegistry @0xc05b8a67f0ed2afb {
  # The compiled schema of every interface the system knows: the kernel's
  # interfaces and the protocols services define (this file), so that tools
  # (the shell's `inspect` and typed calls) reflect on interfaces instead of
  # hard-coding them. Served by the `registry` service from the schema
  # compiled into it at build time.
  interfaces @0 () -> (entries :List(SchemaEntry)) $C.resultBytes(65536);
  # Every interface, in schema order.
  node @1 (id :UInt64) -> (node :Data) $C.resultBytes(65536);
  # The schema node with type id `id` (an interface, a struct or an enum) as
  # a single-segment Cap'n Proto message whose root is a `schema.capnp`
  # `Node`. A failed exception names an id no node has.
}

struct SchemaEntry {
  # One interface the registry knows.
  id @0 :UInt64;
  # Its type id (the interface id on the wire).
  name @1 :Text;
  # Its display name, e.g. `capos.capnp:Timer`.
}

interface ServiceControl @0xc254e48d6a7423de {
  # The right to end a long-lived service, kept apart from the protocol it
  # serves so that its clients cannot stop it: the service serves this on
  # a second endpoint whose client facet only its stopper holds (the
  # registry's `control`).
  stop @0 () -> ();
  # Answers, then the service exits.
}

interface Launcher @0x8d781b59bd4555a1 {
  # Starts programs for its holder: only boot binaries on the holder's
  # allowlist (the manifest's `launchable` for the service that holds it),
  # with exactly the capabilities the caller sends and names, plus fresh
  # child-local kernel caps; never anything else. Served by init; a holder
  # is known by its pid, so a copy passed on to another process is refused.
  launch @0 (binary :Text, name :Text, grants :List(C.CapGrant))
      -> (handle :UInt16 $C.resultCap("ProcessHandle"));
  # Starts `binary` as a process named `name` whose CapSet is `grants`, in
  # order: each either a capability sent with the call (`transferred`, its
  # transfer index; moved or copied as the caller sent it) or a child-local
  # kernel kind. Answers with the child's ProcessHandle. A binary not on the
  # allowlist is refused with a failed exception naming it.
  allowed @1 () -> (binaries :List(Text));
  # The binaries this holder may start.
}

interface StdIO @0xa017c369b232fe98 {
  # A program's standard input and output, served by whoever runs it (the
  # shell) and bridged to its terminal, so that the program never holds the
  # terminal itself.
  write @0 (data :Data) -> ();
  # Writes the bytes as they are.
  writeLine @1 (text :Text) -> ();
  # Writes the text and a line break.
  readLine @2 (maxBytes :UInt32) -> (status :C.TerminalSession.LineStatus, line :Data)
      $C.resultBytes(4128);
  # Reads one line (at most 4096 bytes; 0 means 4096), echoed.
}

const launcherInterfaceId :UInt64 = 0x8d781b59bd4555a1;
# What a manifest's launcher cap expects (`source = (launcher = void)`).

interface CredentialStore @0x8adfe0ea7a7d63c7 {
  # Checks passwords against the manifest's accounts (Argon2id PHC hashes)
  # and a volatile operator password made by `setup`. Served by `authd`;
  # only the session manager holds it. Never answers with a hash.
  verify @0 (account :Text, password :Data, terminal :Data) -> (outcome :VerifyOutcome,
      principal :Text, profile :Text, delayedMillis :UInt32);
  # `success` (with the account's principal and profile), `denied` (unknown
  # account, wrong password, a password over 1024 bytes: one answer for all)
  # or `unavailable` (no password is set for the account). The work done
  # does not depend on the password or on whether the account exists.
  # Failures are counted per `terminal` (an opaque key: the session manager
  # passes the caller's session reference): the n-th failure in a row is
  # answered 500 ms * 2^(n-1) (at most 16 s) after its check, and no answer
  # to that terminal comes sooner than that delay after the last failure's
  # answer; `delayedMillis` says how long this answer was held back after
  # its check. A success clears the count.
  setup @1 (password :Data) -> (account :Text);
  # Sets a volatile (RAM only, gone at reboot) password for the operator
  # account, only while it has none; fails otherwise. 1 to 1024 bytes.
  status @2 () -> (operatorAccount :Text, operatorPasswordSet :Bool, volatile :Bool);
  # Whether `setup` is needed.

  enum VerifyOutcome {
    success @0;
    denied @1;
    unavailable @2;
  }
}

struct BundleCap {
  # One capability of a session's bundle, as a result capability.
  name @0 :Text;
  cap @1 :UInt16;          # result-cap index
  interfaceId @2 :UInt64;
  protocol @3 :UInt64;     # for an endpoint client: the protocol its server
                           # speaks, where the session manager knows it; else 0
}

interface SessionManager @0xb2b98a6027307ac2 {
  # Sessions for the people at terminals. Served by `sessiond`, which holds
  # the kernel's SessionAuthority. Who is calling is the caller's session
  # (endpoint caller context), never a parameter.
  anonymous @0 () -> (session :UInt16 $C.resultCap("UserSession"));
  # A new anonymous session (what a terminal's shell starts in). Refused to
  # a caller that is itself in a session this manager made: only whoever
  # starts terminals' shells (init) opens them.
  login @1 (account :Text, password :Data) -> (outcome :LoginOutcome,
      session :UInt16, bundle :List(BundleCap)) $C.resultBytes(8192);
  # Checks the password (CredentialStore) and on success answers a new
  # session of the account's profile (`session`, a UserSession result cap)
  # and its bundle, every cap scoped to the new session. On failure no
  # caps, and the outcome only.
  setup @2 (password :Data) -> (outcome :LoginOutcome, session :UInt16,
      bundle :List(BundleCap)) $C.resultBytes(8192);
  # First-boot setup: sets the volatile operator password (only when none
  # exists) and logs the operator in as `login` does.
  logout @3 () -> ();
  # Ends the caller's session: every capability scoped to it stops
  # working, in every process holding a copy.
  current @4 () -> (principal :Text, profile :Text, live :Bool, bundle :List(Text));
  # The caller's session: principal (empty for anonymous), profile, and the
  # names of its bundle.
  bundle @5 () -> (bundle :List(BundleCap)) $C.resultBytes(8192);
  # The caller's session's bundle, freshly scoped copies.
  setupNeeded @6 () -> (needed :Bool, account :Text);
  # Whether the operator account has no password yet.

  enum LoginOutcome {
    success @0;
    denied @1;
    unavailable @2;
  }
}

struct AuditRecord {
  # One audited event. Never holds a password or a hash.
  seq @0 :UInt64;
  nanos @1 :UInt64;        # monotonic time
  kind @2 :Kind;
  session @3 :Data;        # the session's 16-byte reference (as the session manager sees it)
  principal @4 :Text;      # the account's principal, where one is known
  detail @5 :Text;         # the binary launched, the refusal, the delay

  enum Kind {
    loginSuccess @0;
    loginFailure @1;
    setup @2;
    sessionStart @3;
    sessionEnd @4;
    launch @5;
    launchRefused @6;
  }
}

interface AuditLog @0x81e729c7470de6d9 {
  # The session manager's append-only audit log (operator bundles only).
  read @0 (from :UInt64, max :UInt32) -> (records :List(AuditRecord), next :UInt64)
      $C.resultBytes(32768);
  # Records with `seq >= from`, at most `max` (0: 64), and the seq to read
  # from next.
}

const credentialStoreInterfaceId :UInt64 = 0x8adfe0ea7a7d63c7;
const sessionManagerInterfaceId :UInt64 = 0xb2b98a6027307ac2;
const auditLogInterfaceId :UInt64 = 0x81e729c7470de6d9;
