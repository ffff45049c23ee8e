# capOS kernel capability interfaces, the application exception type and the
# kernel capability kinds. Changing anything here that is already on the wire
# is an ABI change; see docs/schema.md.
@0xb000a0679324b0f4;

# ---------------------------------------------------------------------------
# Conventions
#
# * A capability returned by a method is never a Cap'n Proto capability
#   pointer. The kernel appends a transfer-result record (cap id + interface
#   id) after the result payload; a `UInt16` field documented as a
#   "result-cap index" names that record, counting from zero.
# * Application failures are answered with a serialized `CapException` in the
#   caller's result buffer; transport failures are negative CQE codes.
# * Every interface carries an explicit id so that the id is stable across
#   renames. The matching `...InterfaceId` constants let text manifests name
#   ids symbolically; a unit test checks that each constant equals its
#   interface's id.
# ---------------------------------------------------------------------------

annotation resultCap(field, param) :Text;
# On a `UInt16` result field: the field is a result-cap index, and the
# capability there exposes the named interface. Client stubs adopt it as
# that interface.

annotation resultBytes(method) :UInt32;
# The result buffer a client should offer for this method, where the default
# (4096 bytes) may be too small.

struct CapException {
  # An application-level failure of a capability call.
  type @0 :Type;
  message @1 :Text;

  enum Type {
    failed @0;         # the request cannot succeed as made
    overloaded @1;     # a limit or quota was hit; retrying later may work
    disconnected @2;   # the object behind the capability is gone
    unimplemented @3;  # the method is not implemented by this object
  }
}

enum KernelCapKind {
  # The kinds of capability the kernel can mint. Init receives them from the
  # boot manifest; ProcessSpawner mints the child-local ones for children.
  console @0;          # shared: serial console
  terminal @1;         # shared: line-oriented terminal session
  timer @2;            # shared: monotonic clock and sleeps
  endpoint @3;         # child-local: a fresh IPC endpoint (owner side)
  processSpawner @4;   # shared: start processes from boot binaries
  bootPackage @5;      # init only: read the manifest and the boot binaries
  frameAllocator @6;   # child-local: allocate physical memory objects
  virtualMemory @7;    # child-local: map anonymous memory in the holder
  threadSpawner @8;    # child-local: start threads in the holder
  null @9;             # child-local: the measurement-only Null interface
  entropy @10;         # shared: random bytes (RDSEED/RDRAND, else TSC jitter)
  systemInfo @11;      # shared: uptime, memory, CPUs, processes, message of the day
  sessionAuthority @12; # shared: mint, scope and end sessions (the session manager's)
}

const protRead :UInt32 = 1;    # mapping protection bit: readable
const protWrite :UInt32 = 2;   # mapping protection bit: writable
const protExec :UInt32 = 4;    # mapping protection bit: executable

interface Console @0xdfa84506728bf29c {
  # Write-only text output (the serial console).
  write @0 (data :Data) -> ();
  writeLine @1 (text :Text) -> ();
}

interface TerminalSession @0xe87c6bb0e2f15053 {
  # An interactive terminal on a serial line: output, and input a line or a
  # key at a time. One holder at a time: the capability only moves. A read
  # completes when the person has typed what it waits for; one read may be
  # pending at a time. Input typed while no read is pending waits in a
  # bounded buffer (the excess is dropped) and is echoed when a read takes it.
  write @0 (data :Data) -> ();
  # Writes the bytes as they are (escape sequences included).
  writeLine @1 (text :Text) -> ();
  # Writes the text and a line break.
  readLine @2 (maxBytes :UInt32, echo :EchoMode) -> (status :LineStatus, line :Data)
      $resultBytes(4128);
  # Waits for a line of at most `maxBytes` bytes (at most 4096; 0 means
  # 4096), edited with Backspace, Ctrl-U (erase the line), Ctrl-C (give up
  # the line: `interrupted`) and Ctrl-D on an empty line (`endOfInput`).
  # UTF-8 characters stay whole. Fails with an exception while another read
  # is pending.
  readKey @3 () -> (key :Key);
  # Waits for one key, unechoed: for line editors in userspace.
  cancelRead @4 () -> (cancelled :Bool);
  # Ends the pending read, if any, as `cancelled` (a key read: with an
  # exception) and throws away typed input not yet read.
  readKeys @5 (max :UInt32) -> (keys :List(Key)) $resultBytes(1056);
  # Waits for at least one key, then answers every key already typed, up
  # to `max` (at most 128; 0 means 128), unechoed: a line editor's read,
  # one call per burst of typing (or a paste) rather than per key.

  enum EchoMode {
    visible @0;      # characters are echoed as typed
    hidden @1;       # only the final line break is echoed (passwords)
  }

  enum LineStatus {
    complete @0;     # a full line, without its terminator
    truncated @1;    # the line was longer than maxBytes; the rest is dropped
    endOfInput @2;   # Ctrl-D on an empty line
    interrupted @3;  # Ctrl-C: the line was thrown away
    cancelled @4;    # cancelRead ended the read
  }

  struct Key {
    union {
      char @0 :UInt32;        # a printable character (a Unicode scalar value)
      named @1 :NamedKey;
      ctrl @2 :UInt8;         # Ctrl and a letter, as the lower-case ASCII letter
    }
  }

  enum NamedKey {
    enter @0;
    backspace @1;
    delete @2;
    tab @3;
    escape @4;
    up @5;
    down @6;
    left @7;
    right @8;
    home @9;
    end @10;
  }
}

interface Timer @0xa06e7a0d0d2e312e {
  # Monotonic time in nanoseconds since boot.
  now @0 () -> (nanos :UInt64);
  sleep @1 (nanos :UInt64) -> ();
  sleepUntil @2 (deadline :UInt64) -> ();
}

interface Endpoint @0xcbfd3ce01f06ba53 {
  # The owner side of an IPC endpoint. RECV and RETURN are ring opcodes that
  # only a holder of this interface may submit; clients hold a ClientEndpoint.
  clientFacet @0 () -> (client :UInt16 $resultCap("ClientEndpoint"));
  # `client` is the result-cap index of a new client facet.
}

interface ClientEndpoint @0x9e8a4b887bf7d685 {
  # The attenuated client side of an endpoint: CALL only. It declares no
  # methods of its own; the method ids of a CALL belong to the protocol the
  # endpoint owner serves and are delivered to it unchanged.
}

struct CapGrant {
  # One capability handed to a child by ProcessSpawner.spawn.
  name @0 :Text;                   # name the child sees in its CapSet
  expectedInterfaceId @1 :UInt64;  # checked against the granted object
  source :union {
    transferred @2 :UInt16;        # index of a transfer descriptor sent with the call
    kernel @3 :KernelCapKind;      # minted for the child (child-local kinds only)
  }
}

struct SpawnedFacet {
  # A client facet of a child-local endpoint, returned to the spawner.
  grant @0 :Text;      # the endpoint grant's name
  client @1 :UInt16;   # result-cap index of the ClientEndpoint facet
}

struct Placement {
  # Where the scheduler may run a process's threads.
  union {
    anyCpu @0 :Void;     # the default: placed and balanced by the scheduler
    cpu @1 :UInt32;      # pinned: always queued on this CPU (0 = the boot CPU), never stolen
  }
}

interface ProcessSpawner @0xceb500d0b476a0d0 {
  spawn @0 (name :Text, binaryName :Text, grants :List(CapGrant), placement :Placement,
            frameLimit :UInt32, capSlotLimit :UInt32, session :UInt16 = 0xffff)
      -> (handle :UInt16, facets :List(SpawnedFacet));
  # `session` is the index of a transfer descriptor holding the UserSession
  # the child runs in (it must be live), or 0xffff: the caller's own
  # session. A process's session never changes after it starts.
  # `handle` is the result-cap index of the child's ProcessHandle.
  # A `placement` pinning the child to a CPU that is not online is refused.
  # `frameLimit` is the child's frame quota in pages (0: the default, 4096;
  # at most 16384); a child whose image, stack, ring,
  # CapSet and page tables do not fit it is refused before it runs.
  # `capSlotLimit` is the child's cap-slot quota (0: the default, 256; at
  # most 4096); the child's capability table grows on demand up to it.
}

interface ProcessHandle @0xbe7424d191f1a8df {
  wait @0 () -> (exitCode :Int64);
  pid @1 () -> (pid :UInt64);
  kill @2 () -> ();
  # `wait` answers with the exit code once the process is gone: what it
  # passed to `exit` (a service's `main` returns an Int32), 128 + the vector
  # for a CPU exception that killed it, or 4294967296 (2^32, outside Int32)
  # if `kill` ended it.
  # `kill` ends the process: every thread of it stops before it next runs
  # in user mode (one running on another CPU is interrupted, one blocked is
  # woken), and it exits as through `exit`, with 2^32: its pending calls are
  # cancelled, its endpoints closed (their callers get CANCELLED), its
  # capabilities released. It answers at once; `wait` tells when the
  # process is gone. A second kill, or a kill of a process that has exited
  # or started exiting on its own, answers ok and changes nothing. Its own
  # children are not killed.
}

struct BinaryInfo {
  name @0 :Text;
  size @1 :UInt64;
}

interface BootPackage @0xf2b53ebe0df4188d {
  # Read-only access to the boot manifest and the boot binaries. Reads are
  # chunked: each call returns at most maxBytes, fewer at the end.
  manifestSize @0 () -> (size :UInt64);
  readManifest @1 (offset :UInt64, maxBytes :UInt32) -> (data :Data) $resultBytes(17408);
  listBinaries @2 () -> (binaries :List(BinaryInfo)) $resultBytes(65536);
  readBinary @3 (name :Text, offset :UInt64, maxBytes :UInt32) -> (data :Data) $resultBytes(17408);
}

interface FrameAllocator @0xb3c47a7af6cae81c {
  allocate @0 (pages :UInt32, contiguous :Bool) -> (memory :UInt16 $resultCap("MemoryObject"));
  # `memory` is the result-cap index of a MemoryObject owning the frames.
}

interface MemoryObject @0xa4479cc90a6cadb0 {
  # Physical memory that can be mapped into the holder's address space.
  info @0 () -> (pageCount :UInt32, sizeBytes :UInt64);
  map @1 (hint :UInt64, offset :UInt64, size :UInt64, prot :UInt32) -> (addr :UInt64);
  unmap @2 (addr :UInt64, size :UInt64) -> ();
}

interface VirtualMemory @0xd00fafd8be53b4b8 {
  # Anonymous memory in the holder's own address space.
  map @0 (hint :UInt64, size :UInt64, prot :UInt32) -> (addr :UInt64);
  unmap @1 (addr :UInt64, size :UInt64) -> ();
  protect @2 (addr :UInt64, size :UInt64, prot :UInt32) -> ();
}

interface ThreadSpawner @0xbc49c1f9e26ad428 {
  spawn @0 (entry :UInt64, stackTop :UInt64, arg :UInt64) -> (thread :UInt16 $resultCap("ThreadHandle"));
  # `thread` is the result-cap index of the new thread's ThreadHandle.
}

interface ThreadHandle @0xf0abf367d007d1c3 {
  join @0 () -> (exitCode :Int64);
  threadId @1 () -> (tid :UInt64);
}

interface ThreadControl @0xea47a5dcd9ea001e {
  # Operations on the calling thread itself.
  currentId @0 () -> (tid :UInt64);
  yieldNow @1 () -> ();
  exitThread @2 (code :Int64) -> ();
}

interface Null @0xebbe9c3253cdbcaa {
  # Does nothing. It exists so benchmarks can measure the cost of a capability
  # call itself, with no work behind it.
  ping @0 () -> ();
  counters @1 () -> (heapAllocations :UInt64, longestInterruptsOff :UInt64);
  # Kernel heap allocations since boot, and the longest stretch any CPU has
  # spent with interrupts masked (TSC cycles): what a benchmark reads
  # around its timed loops.
  echoLater @2 (data :Data, nanos :UInt64) -> (data :Data);
  # Answers with `data` after `nanos` nanoseconds: a call that completes
  # later, built only from the shared kernel mechanisms (a deferred
  # completion and a timer entry), with no help from the dispatcher.
}

interface EntropySource @0xed384e4186929325 {
  # Random bytes from the CPU's generator: RDSEED where the CPU has it, else
  # RDRAND, else jitter between TSC reads, always conditioned through
  # SHA-256 with the kernel's pool. Which one is reported at boot.
  read @0 (count :UInt32) -> (bytes :Data);
  # `count` random bytes (1 to 256).
  source @1 () -> (source :Source);
  # Where the bytes come from.

  enum Source {
    rdseed @0;
    rdrand @1;
    tscJitter @2;
  }
}

struct ProcessInfo {
  # One live process, as SystemInfo reports it.
  pid @0 :UInt32;
  name @1 :Text;
  caps @2 :UInt32;       # capabilities in its table
  frames @3 :UInt64;     # frames charged to its ledger
}

interface SystemInfo @0x94f871b5472448ab {
  # What the system is doing: read-only facts for an operator.
  summary @0 () -> (uptimeNanos :UInt64, cpus :UInt32, totalFrames :UInt64,
                    freeFrames :UInt64, processes :List(ProcessInfo))
      $resultBytes(16384);
  # Uptime, online CPUs, physical frames (4 KiB) in all and free, and every
  # live process in pid order.
  motd @1 () -> (text :Text);
  # The message of the day: the manifest's `kernel.motd`, or a default.
}

interface SessionAuthority @0x971cf3f456c19c2d {
  # The right to mint, scope and end sessions: held by the session manager
  # only. The kernel attaches no meaning to principals or profiles; they
  # are labels the session manager chose and the session reports back.
  create @0 (principal :Text, profile :Text) -> (session :UInt16 $resultCap("UserSession"));
  # A new live session (labels at most 64 bytes each), with a fresh
  # 128-bit random identity that nothing outside the kernel ever sees.
  scope @1 () -> (scoped :UInt16);
  # Transfers: [0] a UserSession, [1] any capability. Answers a capability
  # with the same interface that works only while the session is live and
  # that speaks for the session: an endpoint call made through it carries
  # that session as the caller's, whatever process makes it. Once the
  # session ends, every copy of it fails with `disconnected`, wherever it
  # has been passed, and the object behind it is let go.
  end @2 () -> ();
  # Transfer [0] a UserSession: ends it (a second end changes nothing).
  reference @3 () -> (reference :Data);
  # Transfers: [0] a UserSession, [1] an Endpoint (the owner side). The
  # 16-byte reference that endpoint's server sees for calls in that session.
}

interface UserSession @0xadf6e7b59f2655bc {
  # One session: the context a process runs in and bundle capabilities are
  # scoped to. Holding it lets the holder start processes in it (through
  # ProcessSpawner) and read its labels.
  info @0 () -> (principal :Text, profile :Text, live :Bool);
}

const consoleInterfaceId :UInt64 = 0xdfa84506728bf29c;
const terminalSessionInterfaceId :UInt64 = 0xe87c6bb0e2f15053;
const timerInterfaceId :UInt64 = 0xa06e7a0d0d2e312e;
const endpointInterfaceId :UInt64 = 0xcbfd3ce01f06ba53;
const clientEndpointInterfaceId :UInt64 = 0x9e8a4b887bf7d685;
const processSpawnerInterfaceId :UInt64 = 0xceb500d0b476a0d0;
const processHandleInterfaceId :UInt64 = 0xbe7424d191f1a8df;
const bootPackageInterfaceId :UInt64 = 0xf2b53ebe0df4188d;
const frameAllocatorInterfaceId :UInt64 = 0xb3c47a7af6cae81c;
const memoryObjectInterfaceId :UInt64 = 0xa4479cc90a6cadb0;
const virtualMemoryInterfaceId :UInt64 = 0xd00fafd8be53b4b8;
const threadSpawnerInterfaceId :UInt64 = 0xbc49c1f9e26ad428;
const threadHandleInterfaceId :UInt64 = 0xf0abf367d007d1c3;
const threadControlInterfaceId :UInt64 = 0xea47a5dcd9ea001e;
const nullInterfaceId :UInt64 = 0xebbe9c3253cdbcaa;
const entropySourceInterfaceId :UInt64 = 0xed384e4186929325;
const systemInfoInterfaceId :UInt64 = 0x94f871b5472448ab;
const sessionAuthorityInterfaceId :UInt64 = 0x971cf3f456c19c2d;
const userSessionInterfaceId :UInt64 = 0xadf6e7b59f2655bc;
