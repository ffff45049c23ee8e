#!/usr/bin/env python3
"""Boots one capOS test ISO again and again and stops at the first hang.

    stress.py --iso ISO --elf KERNEL_ELF --out DIR --count N --jobs J
              --timeout S --silence S -- qemu-system-x86_64 ARGS...

Each boot runs QEMU with the serial console on a pipe and a QMP socket. A
boot passes when QEMU exits with the test-success status and the serial log
shows `test: all processes exited`. It hangs when that end marker has not
appeared within --timeout seconds, or the console stays silent for
--silence seconds. It fails when QEMU exits with any other status.

At the first hang the runner types the kernel's dump key (Ctrl-\\) on the
serial console and waits for the dump's end line, pauses the machine,
reads every CPU's registers (`info registers -a`), walks each CPU's RBP
frame-pointer chain through guest memory (`x /2gx`) and symbolises the
addresses with addr2line on the unstripped kernel ELF. It prints the
serial tail, the dump, the registers and the backtraces, keeps them in
DIR/hang-<n>/, stops the other boots and exits 1. A failed boot is
reported the same way without the machine state (QEMU has exited).
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

SUCCESS_STATUS = 33
END_MARKER = b"test: all processes exited"
BAD_MARKERS = re.compile(rb"EXCEPTION|PANIC|boot halted")
DUMP_KEY = b"\x1c"
DUMP_END = re.compile(rb"dump \d+: end \(")
KERNEL_BASE = 0xFFFF_8000_0000_0000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Qmp:
    """A minimal QMP client over a UNIX socket."""

    def __init__(self, path: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.buf = b""
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, cmd: str, **args) -> object:
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError(f"QMP {cmd}: {reply['error']}")
            return reply.get("return")

    def hmp(self, line: str, cpu: int | None = None) -> str:
        args = {"command-line": line}
        if cpu is not None:
            args["cpu-index"] = cpu
        return self.execute("human-monitor-command", **args)


class Boot:
    """One QEMU run with its serial log and QMP socket."""

    def __init__(self, n: int, qemu: list[str], out: str):
        self.n = n
        self.log_path = os.path.join(out, f"boot-{n}.log")
        self.qmp_path = os.path.join(out, f"qmp-{n}.sock")
        self.lines: list[bytes] = []
        self.last_output = time.monotonic()
        self.ended = threading.Event()
        self.dump_done = threading.Event()
        self.lock = threading.Lock()
        cmd = qemu + ["-serial", "stdio", "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        self.start = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        with open(self.log_path, "wb") as log:
            for raw in self.proc.stdout:
                log.write(raw)
                log.flush()
                with self.lock:
                    self.lines.append(raw)
                    self.last_output = time.monotonic()
                if END_MARKER in raw:
                    self.ended.set()
                if DUMP_END.search(raw):
                    self.dump_done.set()

    def text(self) -> str:
        with self.lock:
            data = b"".join(self.lines)
        return data.decode("utf-8", "replace").replace("\r", "")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(timeout=5)
        try:
            os.unlink(self.qmp_path)
        except OSError:
            pass


def parse_registers(text: str) -> list[dict]:
    """Splits `info registers -a` into one dict of named values per CPU."""
    cpus = []
    for block in re.split(r"^CPU#\d+\s*$", text, flags=re.M)[1:]:
        regs = {}
        for name, value in re.findall(r"\b([A-Z][A-Z0-9]{1,3}|R\d+|R\d+ )\s*=\s*([0-9a-fA-F]+)\b", block):
            regs.setdefault(name.strip(), int(value, 16))
        m = re.search(r"\bHLT=(\d)", block)
        regs["halted"] = bool(m and m.group(1) == "1")
        m = re.search(r"^CS\s*=\s*([0-9a-f]{4})", block, flags=re.M)
        regs["cs"] = int(m.group(1), 16) if m else 0
        cpus.append(regs)
    return cpus


def read_words(qmp: Qmp, cpu: int, addr: int) -> tuple[int, int] | None:
    """The two 64-bit words at guest-virtual `addr` as CPU `cpu` sees them."""
    out = qmp.hmp(f"x /2gx {addr:#x}", cpu=cpu)
    words = re.findall(r"0x([0-9a-f]{16})", out.split(":", 1)[-1]) if ":" in out else []
    if len(words) < 2:
        return None
    return int(words[0], 16), int(words[1], 16)


def symbolise(elf: str, addrs: list[int]) -> list[str]:
    """`function at file:line` (with inlined callers) for each address."""
    names = []
    for a in addrs:
        try:
            out = subprocess.run(["addr2line", "-f", "-i", "-C", "-p", "-e", elf, f"{a:#x}"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            out = f"(addr2line failed: {e})"
        out = re.sub(r"/\S*/\.cargo/registry/src/[^/]+/", "~cargo/", out)
        out = out.replace(ROOT + "/", "")
        names.append(re.sub(r"\s+\(inlined by\)\s+", "\n        inlined into ", out) or "??")
    return names


def backtrace(qmp: Qmp, elf: str, cpu: int, regs: dict) -> list[str]:
    """RIP, then the return addresses of the RBP frame chain, symbolised."""
    rip, rbp = regs.get("RIP", 0), regs.get("RBP", 0)
    if rip < KERNEL_BASE:
        return [f"  user mode at rip {rip:#x} (no kernel frames: the CPU runs a process)"]
    pcs = [rip]
    seen = set()
    while rbp >= KERNEL_BASE and rbp % 8 == 0 and rbp not in seen and len(pcs) < 40:
        seen.add(rbp)
        words = read_words(qmp, cpu, rbp)
        if words is None:
            break
        next_rbp, ret = words
        if ret < KERNEL_BASE:
            pcs.append(ret)
            break
        pcs.append(ret)
        if next_rbp <= rbp:
            break
        rbp = next_rbp
    # A return address points after the call, and a halted CPU's RIP after
    # its HLT: look up the instruction before.
    first = pcs[0] - 1 if regs.get("halted") else pcs[0]
    lookups = [first] + [p - 1 for p in pcs[1:]]
    kernel = [a for a in lookups if a >= KERNEL_BASE]
    names = dict(zip(kernel, symbolise(elf, kernel)))
    lines = []
    for i, (pc, look) in enumerate(zip(pcs, lookups)):
        where = names.get(look, "user code" if pc < KERNEL_BASE else "??")
        note = " (after HLT)" if i == 0 and regs.get("halted") else ""
        lines.append(f"  #{i:<2} {pc:#018x}{note} {where}")
    return lines


def machine_state(boot: Boot, elf: str) -> str:
    """Registers and backtraces of every CPU, through QMP (machine paused)."""
    qmp = Qmp(boot.qmp_path)
    qmp.execute("stop")
    regs_text = qmp.hmp("info registers -a")
    parts = ["==== registers (info registers -a) ====", regs_text.rstrip(), "",
             "==== backtraces (RBP frame chain, symbolised with " + os.path.basename(elf) + ") ===="]
    for cpu, regs in enumerate(parse_registers(regs_text)):
        state = "halted (HLT)" if regs.get("halted") else "running"
        iflag = "on" if regs.get("RFL", 0) & 0x200 else "off"
        parts.append(f"cpu{cpu}: {state}, interrupts {iflag}, rip {regs.get('RIP', 0):#x} "
                     f"rsp {regs.get('RSP', 0):#x} rbp {regs.get('RBP', 0):#x} cr3 {regs.get('CR3', 0):#x}")
        try:
            parts.extend(backtrace(qmp, elf, cpu, regs))
        except (OSError, RuntimeError) as e:
            parts.append(f"  (backtrace failed: {e})")
    return "\n".join(parts)


def report(boot: Boot, kind: str, why: str, out: str, elf: str, tail: int,
           quiet: bool = False) -> None:
    """Prints and keeps everything known about a boot that did not pass."""
    keep = os.path.join(out, f"{kind}-{boot.n}")
    os.makedirs(keep, exist_ok=True)
    state = ""
    if kind == "hang":
        try:
            boot.proc.stdin.write(DUMP_KEY)
            boot.proc.stdin.flush()
            if not boot.dump_done.wait(10):
                state += "(the dump key got no complete dump within 10 s)\n"
        except OSError as e:
            state += f"(could not type the dump key: {e})\n"
        try:
            state += machine_state(boot, elf)
        except (OSError, RuntimeError, ValueError) as e:
            state += f"(could not read the machine state through QMP: {e})"
    text = boot.text()
    lines = text.splitlines()
    first_dump = next((i for i, l in enumerate(lines) if l.startswith("dump ")), len(lines))
    before = lines[:first_dump]
    dump = [l for l in lines[first_dump:] if l.startswith("dump ")]
    body = [f"stress: boot {boot.n} {kind}: {why}",
            f"---- serial tail before the dump key ({min(tail, len(before))} of {len(before)} lines) ----"]
    body += before[-tail:]
    if dump:
        body += ["---- dump key output ----"] + dump
    kept = os.path.join(keep, "report.txt")
    with open(kept, "w") as f:
        f.write("\n".join(body + [state, ""]))
    with open(os.path.join(keep, "serial.log"), "w") as f:
        f.write(text)
    # On the terminal, the registers without the FPU, SSE, debug and
    # segment-cache lines (report.txt keeps them all).
    noise = re.compile(r"^(FCW|FPR|XMM|YMM|DR[0-7]|ES |SS |DS |FS |LDT|GDT|IDT)")
    body += [l for l in state.splitlines() if not noise.match(l) and l.strip()]
    body += [f"---- everything kept in {keep}/ (report.txt, serial.log) ----"]
    if not quiet:
        sys.stdout.write("\n".join(body) + "\n")
        sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--elf", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--silence", type=float, default=45)
    ap.add_argument("--tail", type=int, default=40)
    ap.add_argument("--label", default="")
    ap.add_argument("--keep-going", action="store_true",
                    help="record every hang or failure and go on (to measure a rate)")
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    qemu = a.qemu[1:] if a.qemu[:1] == ["--"] else a.qemu
    os.makedirs(a.out, exist_ok=True)

    lock = threading.Lock()
    stop = threading.Event()
    state = {"next": 0, "passed": 0, "seconds": 0.0, "bad": None, "not_passed": []}
    started = time.monotonic()
    running: dict[int, Boot] = {}

    def worker() -> None:
        while not stop.is_set():
            with lock:
                if state["next"] >= a.count:
                    return
                n = state["next"] = state["next"] + 1
            boot = Boot(n, qemu, a.out)
            with lock:
                running[n] = boot
            verdict = None
            while verdict is None:
                if stop.is_set():
                    break
                code = boot.proc.poll()
                now = time.monotonic()
                if code is not None:
                    boot.reader.join(timeout=5)
                    text = boot.text()
                    if code == SUCCESS_STATUS and END_MARKER.decode() in text \
                            and not BAD_MARKERS.search(text.encode()):
                        verdict = ("pass", "")
                    else:
                        verdict = ("fail", f"QEMU exited with status {code}, expected "
                                           f"{SUCCESS_STATUS} and {END_MARKER.decode()!r}")
                elif now - boot.start > a.timeout:
                    verdict = ("hang", f"no {END_MARKER.decode()!r} within {a.timeout:.0f} s")
                elif now - boot.last_output > a.silence:
                    verdict = ("hang", f"serial console silent for {a.silence:.0f} s "
                                       f"({now - boot.start:.1f} s into the boot)")
                else:
                    time.sleep(0.2)
            seconds = time.monotonic() - boot.start
            if verdict is None:  # stopped because another boot did not pass
                boot.kill()
                with lock:
                    running.pop(n, None)
                return
            kind, why = verdict
            if kind == "pass":
                boot.kill()
                os.unlink(boot.log_path)
                with lock:
                    running.pop(n, None)
                    state["passed"] += 1
                    state["seconds"] += seconds
                    done = state["passed"]
                if done % 25 == 0 or done == a.count:
                    elapsed = time.monotonic() - started
                    print(f"stress: {done} of {a.count} boots passed ({elapsed / done:.1f} s of "
                          f"elapsed time per boot, {state['seconds'] / done:.1f} s per boot)",
                          flush=True)
                continue
            with lock:
                first = state["bad"] is None
                if first:
                    state["bad"] = (n, kind)
                state["not_passed"].append((n, kind))
                if not a.keep_going:
                    stop.set()
            if first:
                report(boot, kind, why, a.out, a.elf, a.tail)
            elif a.keep_going:
                report(boot, kind, why, a.out, a.elf, a.tail, quiet=True)
                print(f"stress: boot {n} {kind}: {why} (kept in {a.out}/{kind}-{n}/)", flush=True)
            boot.kill()
            with lock:
                running.pop(n, None)
            if not a.keep_going:
                return

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.jobs))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        stop.set()
        with lock:
            boots = list(running.values())
        for b in boots:
            b.kill()
        print("stress: interrupted")
    elapsed = time.monotonic() - started
    passed = state["passed"]
    per = f"{state['seconds'] / passed:.1f} s per boot, {elapsed / passed:.1f} s of elapsed time per boot" \
        if passed else "no boot passed"
    bad = state["bad"]
    if bad is None:
        outcome = "no hang and no failure"
    elif a.keep_going:
        hangs = sum(1 for _, k in state["not_passed"] if k == "hang")
        outcome = (f"{hangs} hung and {len(state['not_passed']) - hangs} failed (boots "
                   + ", ".join(f"{n} {k}" for n, k in sorted(state["not_passed"])) + ")")
    else:
        outcome = f"stopped at boot {bad[0]} ({bad[1]})"
    print(f"stress: {a.label}{passed} boots passed of {a.count} asked, {outcome}; {per}; "
          f"{a.jobs} at a time, {elapsed / 60:.1f} min in all", flush=True)
    return 0 if bad is None and passed == a.count else 1


if __name__ == "__main__":
    sys.exit(main())
