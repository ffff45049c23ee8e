#!/usr/bin/env python3
"""Prints `make bench`'s table from the capOS and Linux guests' serial logs.

    bench_report.py MODE CAPOS_LOG LINUX_LOG LINUX_VERSION

MODE is `pathlen` (QEMU TCG with -icount shift=0: the TSC counts guest
instructions; figures are the minimum of the runs) or `cycles` (hardware
KVM: TSC cycles; figures are the median of the runs). The capOS log holds
`bench: ...` lines from services/bench, the Linux log `baseline: ...` lines
from scripts/linux-baseline running as the guest's /init. Exits 1 with a
message when a figure the table needs is missing, or, in path-length mode,
when either guest's TSC did not count instructions exactly.
"""
import re
import sys

# Which Linux operations each capOS operation is compared with.
COMPARE = {
    "ipc-same-cpu": ["pipe-same-cpu", "futex-same-cpu"],
    "ipc-cross-cpu": ["pipe-cross-cpu", "futex-cross-cpu"],
    "ipc-session-same-cpu": ["pipe-same-cpu", "futex-same-cpu"],
}
# The goals (path length, instructions), judged in path-length mode only.
GOALS = [
    ("cap-enter-empty", "empty cap_enter <= 100 instructions", 100),
    ("nop-batched", "NOP batched 32 per cap_enter <= 30 per NOP", 30),
    ("null-call", "CALL on Null, one per cap_enter, <= 250", 250),
    ("ipc-same-cpu", "IPC round trip, same CPU, 16 B each way, <= 1,000", 1000),
]
PIPE_FACTOR = 13


def read_lines(path, prefix):
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.replace("\r", "").rstrip("\n")
            i = line.find(prefix)
            if i >= 0:
                out.append(line[i:])
    return out


def premise(lines, prefix):
    for line in lines:
        m = re.match(prefix + r"premise rdtsc ([0-9]+) expected ([0-9]+)$", line)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def main():
    mode, capos_log, linux_log, linux_version = sys.argv[1:5]
    pathlen = mode == "pathlen"
    pick = 3 if pathlen else 2  # regex group of the min or of the median
    capos_lines = read_lines(capos_log, "bench: ")
    linux_lines = read_lines(linux_log, "baseline: ")

    p_capos, p_linux = premise(capos_lines, "bench: "), premise(linux_lines, "baseline: ")
    if pathlen:
        for who, p in (("capOS", p_capos), ("Linux", p_linux)):
            if p is None:
                print(f"bench: the {who} guest printed no premise line; see its log", file=sys.stderr)
                return 1
            if p[0] != p[1]:
                print(f"bench: STOP: path-length mode needs the guest's TSC to count instructions, "
                      f"but in the {who} guest a loop of {p[1]} instructions advanced it by {p[0]} "
                      f"(QEMU TCG with -icount shift=0,sleep=off and one CPU should give exactly "
                      f"{p[1]}); no figure of this run is an instruction count", file=sys.stderr)
                return 1

    capos, order, extra = {}, [], []
    fig = re.compile(r"^bench: ([a-z0-9-]+) median ([0-9]+) cycles/[a-z ]+ \(min ([0-9]+),")
    for line in capos_lines:
        m = fig.match(line)
        if m:
            capos[m.group(1)] = int(m.group(pick))
            order.append(m.group(1))
        elif line.startswith("bench: premise "):
            continue
        elif pathlen and re.match(r"^bench: ipc-cross-cpu skipped: .*not online", line):
            # Expected: path-length mode runs one CPU.
            extra.append("bench: ipc-cross-cpu not measured (path-length mode runs one CPU; "
                         "cycles mode measures it)")
        else:
            extra.append(re.sub(r"\bcycles\b", "instructions", line) if pathlen else line)
    linux, missing = {}, {}
    for line in linux_lines:
        m = re.match(r"^baseline: linux-([a-z0-9-]+) median ([0-9]+) min ([0-9]+)$", line)
        if m:
            linux[m.group(1)] = int(m.group(pick))
            continue
        m = re.match(r"^baseline: linux-([a-z0-9-]+) (.*)$", line)
        if m:
            missing[m.group(1)] = m.group(2)
    if not capos:
        print("bench: the capOS guest printed no figures; see its log", file=sys.stderr)
        return 1
    if "getppid" not in linux:
        print("bench: the Linux guest printed no figures; see its log", file=sys.stderr)
        return 1

    unit = "instructions" if pathlen else "TSC cycles"
    print()
    if pathlen:
        print("Path length: guest instructions per operation (IPC: per round trip), QEMU TCG "
              "-icount shift=0,sleep=off, 1 CPU; minimum of 101 runs")
        print(f"  premise: a loop of {p_capos[1]} instructions advanced the TSC by exactly "
              f"{p_capos[0]} in capOS and {p_linux[0]} in Linux")
    else:
        print("Cycles: TSC cycles per operation (IPC: per round trip), hardware KVM, 2 CPUs; "
              "median of 101 runs")
        if p_capos and p_linux:
            print(f"  a loop of {p_capos[1]} instructions took {p_capos[0]} TSC cycles in capOS "
                  f"and {p_linux[0]} in Linux")
    print(f"  Linux guest: {linux_version}")
    row = "{:<20} {:>13}   {:<16} {:>13} {:>12}"
    print(row.format("capOS operation", unit, "Linux operation", unit, "capOS/Linux"))
    for name in order:
        value = capos[name]
        for i, base in enumerate(COMPARE.get(name, ["getppid"])):
            left = (name, value) if i == 0 else ("", "")
            if base in linux:
                print(row.format(*left, base, linux[base], f"{value / linux[base]:.2f}x"))
            else:
                print(row.format(*left, base, "-", missing.get(base, "not measured")))
    for line in extra:
        print(line)
    plain, ctx = capos.get("ipc-same-cpu"), capos.get("ipc-session-same-cpu")
    if plain and ctx:
        print(f"  the caller's session reference (RECV_FLAG_CALLER_SESSION, cached per endpoint) "
              f"costs {ctx - plain:+d} {unit} per round trip ({plain} without, {ctx} with)")

    print()
    if not pathlen:
        print("Goals: judged on path length only (BENCH_MODE=pathlen).")
        return 0
    print("Goals (instructions):")

    def goal(text, shown, ok):
        state = "-" if ok is None else ("met" if ok else "MISSED")
        print(f"  {text:<58} {shown:>10}  {state}")

    for name, text, limit in GOALS:
        v = capos.get(name)
        goal(text, "-" if v is None else v, None if v is None else v <= limit)
    same, pipe = capos.get("ipc-same-cpu"), linux.get("pipe-same-cpu")
    if same and pipe:
        goal(f"IPC round trip >= {PIPE_FACTOR}x shorter than Linux pipe (Linux/capOS)",
             f"{pipe / same:.2f}x", pipe >= PIPE_FACTOR * same)
    else:
        goal(f"IPC round trip >= {PIPE_FACTOR}x shorter than Linux pipe (Linux/capOS)", "-", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
