#!/usr/bin/env python3
"""Runs QEMU with the guest serial console on a pipe and watches it live.

    qemu_run.py --log FILE --timeout SECONDS [--stop-on REGEX]
                [--mark REGEX]... [--type REGEX BYTES]...
                -- qemu-system-x86_64 ARGS...

Writes the serial output to FILE as it arrives. Ends when QEMU exits, when
a line matches --stop-on (QEMU is then killed: for boots that halt rather
than exit), or at the timeout. Prints one line:

    status=<QEMU exit code | stopped | timeout> seconds=<wall time> mark<N>=<seconds|->

where mark<N> is the time since QEMU started at which the first line
matching the N-th --mark appeared. `--type REGEX BYTES` types BYTES (with
Python escapes, e.g. '\x1c') on the serial console once, when the first
line matching REGEX appears.
"""
import argparse
import re
import subprocess
import sys
import threading
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--stop-on")
    ap.add_argument("--mark", action="append", default=[])
    ap.add_argument("--type", nargs=2, action="append", default=[], metavar=("REGEX", "BYTES"))
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.qemu[1:] if a.qemu[:1] == ["--"] else a.qemu
    stop_re = re.compile(a.stop_on) if a.stop_on else None
    marks = [re.compile(m) for m in a.mark]
    mark_times = [None] * len(marks)
    start = time.monotonic()
    typing = [[re.compile(r), b.encode().decode("unicode_escape").encode("latin-1")]
              for r, b in a.type]
    proc = subprocess.Popen(cmd + ["-serial", "stdio"],
                            stdin=subprocess.PIPE if typing else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stopped = threading.Event()

    def pump() -> None:
        with open(a.log, "wb") as log:
            for raw in proc.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace")
                now = time.monotonic() - start
                for i, m in enumerate(marks):
                    if mark_times[i] is None and m.search(line):
                        mark_times[i] = now
                for t in typing:
                    if t[0] is not None and t[0].search(line):
                        t[0] = None
                        try:
                            proc.stdin.write(t[1])
                            proc.stdin.flush()
                        except OSError:
                            pass
                if stop_re and stop_re.search(line):
                    stopped.set()
                    proc.kill()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=a.timeout)
        status = "stopped" if stopped.is_set() else str(code)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        status = "timeout"
    reader.join(timeout=5)
    elapsed = time.monotonic() - start
    fields = [f"status={status}", f"seconds={elapsed:.1f}"]
    fields += [f"mark{i}={'-' if t is None else f'{t:.2f}'}" for i, t in enumerate(mark_times)]
    print(" ".join(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main())
