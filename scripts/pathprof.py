#!/usr/bin/env python3
"""`make pathprof OP=<benchmark>`: where one operation's instructions go.

    pathprof.py --op OP --iso ISO --kernel-elf ELF --bench-elf ELF
                [--hit N] [--iterations K] [--call] [--inline] [--timeline] [--log FILE] [--no-figure]

Boots the bench ISO under QEMU TCG with `-icount shift=0,sleep=off`, one
CPU and the gdb stub (`-S`), puts a breakpoint on the function that is one
operation of benchmark OP in services/bench (`bench::op_*`), lets the bench
run to the N-th call of it (after the first calls, so nothing is cold), and
single-steps from there, in every mode and process, until the next call of
it begins in the same process: one iteration of the benchmark's loop, the
same instructions its timed runs count (`--call`: only until that call
returns). QEMU's stub steps with interrupts and timers masked, so no
interrupt lands in the region. Each instruction is charged to the function
holding its address: the kernel's ELF symbols for kernel addresses, the
bench binary's for user ones (`--inline`: the innermost inlined function,
through addr2line and the ELFs' debug info). Then it lets the bench run on
and prints the bench's own figure for OP beside the profile's total.

The client is a small GDB remote-protocol client over TCP (no gdb needed).
"""
import argparse
import bisect
import collections
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

# OP name -> (function in services/bench, operations per call of it).
OPS = {
    "nop-single": ("bench::op_nop_single", 1),
    "nop-batched": ("bench::op_nop_batch", 32),
    "cap-enter-empty": ("bench::op_cap_enter_empty", 1),
    "null-call": ("bench::op_null_call", 1),
    "ipc-same-cpu": ("bench::op_ipc_round_trip", 1),
}
USER_TOP = 0x0000_8000_0000_0000
STEP_LIMIT = 5_000_000


class Stub:
    """A GDB remote-protocol connection to QEMU's gdb stub (no-ack mode)."""

    def __init__(self, port, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.ack = True
        if self.cmd("QStartNoAckMode") == "OK":
            self.ack = False

    def send(self, data):
        body = data.encode()
        self.sock.sendall(b"$" + body + b"#%02x" % (sum(body) & 0xFF))

    def recv(self, timeout=None):
        self.sock.settimeout(timeout)
        while True:
            start = self.buf.find(b"$")
            if start >= 0:
                end = self.buf.find(b"#", start)
                if end >= 0 and len(self.buf) >= end + 3:
                    body = self.buf[start + 1:end]
                    self.buf = self.buf[end + 3:]
                    if self.ack:
                        self.sock.sendall(b"+")
                    return body.decode("latin-1")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the gdb stub closed the connection")
            self.buf += chunk

    def cmd(self, data, timeout=30):
        self.send(data)
        return self.recv(timeout)

    def reg(self, num):
        r = self.cmd("p%x" % num)
        return int.from_bytes(bytes.fromhex(r), "little")

    def mem64(self, addr):
        return int.from_bytes(bytes.fromhex(self.cmd("m%x,8" % addr)), "little")

    def xfer(self, annex):
        out, off = "", 0
        while True:
            r = self.cmd(f"qXfer:features:read:{annex}:{off:x},ffb")
            out += r[1:]
            off += len(r) - 1
            if r[:1] != "m":
                return out


def register_numbers(stub):
    """Register name -> number, from the stub's target description."""
    nums, n = {}, 0

    def walk(annex):
        nonlocal n
        xml = stub.xfer(annex)
        for m in re.finditer(r'<xi:include href="([^"]+)"/>|<reg ([^>]*)/?>', xml):
            if m.group(1):
                walk(m.group(1))
                continue
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            if "regnum" in attrs:
                n = int(attrs["regnum"])
            nums[attrs["name"]] = n
            n += 1

    walk("target.xml")
    return nums


def find_cr3(stub, regs):
    """The number of CR3 (CR0's plus two). QEMU 7.2's target description
    names three segment bases its stub does not have, which shifts the
    control registers; so CR0 is found by its value (paging and protected
    mode on: the guest runs user code now) at or before its named number."""
    named = regs["cr0"]
    for n in range(named, max(named - 8, 0), -1):
        if stub.reg(n) & 0x8000_0001 == 0x8000_0001:
            return n + 2
    raise SystemExit("pathprof: cannot find CR0/CR3 among the stub's registers")


class Symbols:
    """Address -> function name, from `nm` of one ELF."""

    def __init__(self, elf):
        self.elf = elf
        out = subprocess.run(["nm", "-C", "-n", "-S", "--defined-only", elf],
                             check=True, capture_output=True, text=True).stdout
        self.starts, self.ends, self.names = [], [], []
        for line in out.splitlines():
            m = re.match(r"^([0-9a-f]+) (?:([0-9a-f]+) )?([tTwW]) (.*)$", line)
            if not m:
                continue
            start = int(m.group(1), 16)
            if self.starts and self.starts[-1] == start and self.ends[-1] is None:
                # An alias of a label without a size: keep the later name.
                self.starts.pop()
                self.ends.pop()
                self.names.pop()
            self.starts.append(start)
            # Assembly labels have no size: they reach to the next symbol.
            self.ends.append(start + int(m.group(2), 16) if m.group(2) else None)
            self.names.append(m.group(4))
        for i, end in enumerate(self.ends):
            if end is None:
                self.ends[i] = self.starts[i + 1] if i + 1 < len(self.starts) else start + 0x1000

    def lookup(self, addr):
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.ends[i]:
            return self.names[i]
        return f"?{addr:#x}"

    def address(self, name):
        for s, n in zip(self.starts, self.names):
            if n == name:
                return s
        raise SystemExit(f"pathprof: no symbol {name} in {self.elf}")

    def inline_names(self, addrs):
        """Innermost (inlined) function of each address, via addr2line."""
        addrs = sorted(set(addrs))
        if not addrs:
            return {}
        out = subprocess.run(["addr2line", "-f", "-i", "-C", "-a", "-e", self.elf]
                             + [f"{a:#x}" for a in addrs],
                             check=True, capture_output=True, text=True).stdout.splitlines()
        names, cur, first = {}, None, False
        for line in out:
            if line.startswith("0x") and re.fullmatch(r"0x[0-9a-f]+", line):
                cur, first = int(line, 16), True
            elif first and cur is not None:
                # addr2line prints function/location pairs innermost first.
                names[cur] = line if line != "??" else self.lookup(cur)
                first = False
        return names


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--op", required=True, choices=sorted(OPS))
    ap.add_argument("--iso", required=True)
    ap.add_argument("--kernel-elf", required=True)
    ap.add_argument("--bench-elf", required=True)
    ap.add_argument("--hit", type=int, default=16,
                    help="profile the N-th call of the operation (default 16)")
    ap.add_argument("--inline", action="store_true",
                    help="charge each instruction to the innermost inlined function")
    ap.add_argument("--timeline", action="store_true",
                    help="also print the region as a sequence of functions")
    ap.add_argument("--call", action="store_true",
                    help="profile the call only (entry to return), not the whole loop iteration")
    ap.add_argument("--iterations", type=int, default=1,
                    help="profile this many consecutive iterations (default 1)")
    ap.add_argument("--log", default=None, help="the guest's serial output")
    ap.add_argument("--no-figure", action="store_true",
                    help="stop after the profile (do not wait for the bench's own figure)")
    a = ap.parse_args()

    func, per_call = OPS[a.op]
    ksyms, usyms = Symbols(a.kernel_elf), Symbols(a.bench_elf)
    entry = usyms.address(func)
    log = a.log or os.path.join(tempfile.mkdtemp(), "pathprof.log")
    port = free_port()
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-machine", "q35", "-m", "512M", "-smp", "1",
         "-display", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
         "-accel", "tcg", "-cpu", "max", "-icount", "shift=0,sleep=off",
         "-cdrom", a.iso, "-serial", f"file:{log}",
         "-gdb", f"tcp:127.0.0.1:{port}", "-S"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        return profile(a, qemu, port, log, func, per_call, entry, ksyms, usyms)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()


def profile(a, qemu, port, log, func, per_call, entry, ksyms, usyms):
    stub = Stub(port)
    regs = register_numbers(stub)
    r_rip, r_rsp = regs["rip"], regs["rsp"]

    # Run to the N-th call of the operation.
    if stub.cmd("Z0,%x,1" % entry) != "OK":
        raise SystemExit("pathprof: the stub refused the breakpoint")
    for _ in range(a.hit):
        reply = stub.cmd("c", timeout=600)
        if not reply.startswith("T"):
            raise SystemExit(f"pathprof: the guest stopped unexpectedly ({reply}); see {log}")
    stub.cmd("z0,%x,1" % entry)
    r_cr3 = find_cr3(stub, regs)
    entry_rsp, entry_cr3 = stub.reg(r_rsp), stub.reg(r_cr3)
    ret = stub.mem64(entry_rsp)

    # Single-step that call until it returns to its caller (same process,
    # same stack depth).
    counts = collections.Counter()
    timeline = []
    rip, space, was_user = stub.reg(r_rip), entry_cr3, True
    steps = 0
    per_iteration = []
    started = time.monotonic()
    while True:
        user = rip < USER_TOP
        if user and not was_user:
            space = stub.reg(r_cr3)
        key = ("user" if space == entry_cr3 else "user (peer)", rip) if user else ("kernel", rip)
        counts[key] += 1
        if a.timeline:
            timeline.append(key)
        steps += 1
        if steps > STEP_LIMIT:
            raise SystemExit(f"pathprof: no return after {STEP_LIMIT} instructions")
        was_user = user
        reply = stub.cmd("s")
        if not reply.startswith(("T", "S")):
            raise SystemExit(f"pathprof: unexpected stop reply {reply}")
        rip = stub.reg(r_rip)
        if a.call:
            if rip == ret and space == entry_cr3 and stub.reg(r_rsp) == entry_rsp + 8:
                break
        elif rip == entry and space == entry_cr3:
            per_iteration.append(steps - sum(per_iteration))
            if len(per_iteration) == a.iterations:
                break
    elapsed = time.monotonic() - started
    if a.call:
        per_iteration = [steps]

    # Charge instructions to functions.
    if a.inline:
        knames = ksyms.inline_names(r for (w, r) in counts if w == "kernel")
        unames = usyms.inline_names(r for (w, r) in counts if w != "kernel")
    else:
        knames = unames = {}

    def name(key):
        where, rip = key
        if where == "kernel":
            return knames.get(rip) or ksyms.lookup(rip)
        return unames.get(rip) or usyms.lookup(rip)

    per_func = collections.Counter()
    for key, n in counts.items():
        per_func[(name(key), key[0])] += n
    total = sum(counts.values())
    by_where = collections.Counter()
    for (_, where), n in per_func.items():
        by_where[where] += n

    region = ("from its first instruction to its return" if a.call else
              "from its first instruction to the next call's (one iteration of the timed loop)")
    print(f"pathprof: {a.op}: call {a.hit} of {func}, single-stepped {region} "
          f"({steps} steps, {elapsed:.1f} s)")
    if len(per_iteration) > 1:
        print(f"pathprof: {len(per_iteration)} iterations of "
              f"{', '.join(str(n) for n in per_iteration)} instructions; the table sums them")
    if per_call > 1:
        print(f"pathprof: one call is {per_call} operations of {a.op}")
    width = max(48, min(100, max(len(f) for f, _ in per_func)))
    print(f"{'function':<{width}} {'where':<12} {'instructions':>12} {'share':>7}")
    for (f, where), n in sorted(per_func.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{f[:width]:<{width}} {where:<12} {n:>12} {100 * n / total:>6.1f}%")
    print(f"{'total':<{width}} {'':<12} {total:>12} {100.0:>6.1f}%")
    print("  " + ", ".join(f"{w} {n} ({100 * n / total:.1f}%)" for w, n in sorted(by_where.items())))
    if per_call > 1 or len(per_iteration) > 1:
        print(f"  per operation: {total / per_call / len(per_iteration):.1f}")

    if a.timeline:
        print()
        print("Timeline (consecutive instructions in one function):")
        run_name, run_n = None, 0
        for key in timeline + [None]:
            cur = None if key is None else (name(key), key[0])
            if cur == run_name:
                run_n += 1
                continue
            if run_name is not None:
                print(f"  {run_n:>6}  {run_name[1]:<12} {run_name[0]}")
            run_name, run_n = cur, 1

    if a.no_figure:
        return 0
    # Let the bench run on for its own figure of the same operation.
    stub.send("c")
    pattern = re.compile(r"bench: " + re.escape(a.op) + r" median ([0-9]+) [^(]+\(min ([0-9]+),")
    deadline = time.monotonic() + 600
    figure = None
    while figure is None and time.monotonic() < deadline and qemu.poll() is None:
        time.sleep(0.5)
        with open(log, encoding="utf-8", errors="replace") as f:
            m = pattern.search(f.read())
        if m:
            figure = int(m.group(2))
    if figure is None:
        print(f"pathprof: the bench printed no figure for {a.op}; see {log}")
        return 1
    per_op = total / per_call / len(per_iteration)
    print()
    diff = figure - per_op
    print(f"bench's figure for {a.op} (min of its timed runs, in the same boot): {figure} "
          f"instructions per operation; this profile: {per_op:.1f} ({diff:+.1f})")
    if a.call:
        print("  (--call leaves out the timed loop's own instructions: the call, the result "
              "check and the counter)")
    elif diff:
        print("  (the bench's figure is a whole run's instructions divided by its operations, "
              "rounded down: the run's rdtsc and loop set-up, and iterations that differ from "
              "this one, move it from one iteration's count)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
