#!/usr/bin/env bash
# `make bench`: boots the benchmark manifest (manifests/bench.capnp) with
# two CPUs under KVM when it works (TCG otherwise, with a warning: TCG cycle
# counts are not comparable), collects the `bench: NAME median ...` lines
# the bench service prints (TSC cycles per operation or per IPC round
# trip), measures this machine's Linux baseline in the same run
# (scripts/linux-baseline: getppid, pipe and futex round trips), prints
# each capOS figure beside the Linux figures it compares with as ratios,
# then the goals. docs/bench.md explains every figure.
#
#   scripts/bench.sh KERNEL_ELF
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/qemu-common.sh"
kernel=${1:?usage: bench.sh KERNEL_ELF}
out="$root/build/bench"
mkdir -p "$out"

accel=tcg
if kvm_usable && ! kvm_is_pvm; then
    accel=kvm
elif kvm_is_pvm; then
    echo "bench: WARNING: this host's KVM is PVM, which cannot run capOS userspace (no hardware SYSCALL);" >&2
    echo "bench: WARNING: measuring under TCG instead: the cycle counts do NOT measure the hardware" >&2
else
    echo "bench: WARNING: KVM is not usable here; TCG cycle counts do NOT measure the hardware" >&2
fi

"$here/mkiso.sh" "$out/bench.iso" "$kernel" --cmdline "test=boot" \
    --module "$root/build/manifests/bench.bin" manifest \
    --module "$root/build/services/bench" bench || exit 1
# shellcheck disable=SC2046
summary=$(python3 "$here/qemu_run.py" --log "$out/bench.log" --timeout 600 -- \
    qemu-system-x86_64 $(qemu_args "$accel" bios 2) -cdrom "$out/bench.iso")
status=$(sed -n 's/.*status=\([^ ]*\).*/\1/p' <<<"$summary")
if [ "$status" != 33 ]; then
    echo "bench: the benchmark boot failed ($summary); last lines of $out/bench.log:" >&2
    tail -n 20 "$out/bench.log" | tr -d '\r' >&2
    exit 1
fi

baseline=$(CARGO_TARGET_DIR="$root/target/host" cargo run -q --release -p capos-linux-baseline)
grep -q '^baseline: linux-getppid [0-9]*$' <<<"$baseline" || { echo "bench: no Linux baseline" >&2; exit 1; }

# The table: each capOS figure beside the Linux figures it compares with,
# then the goals. Unit: TSC cycles per operation (per round trip for IPC).
python3 - "$accel" "$out/bench.log" <(echo "$baseline") <<'PY'
import re, sys
accel, log_file, baseline_file = sys.argv[1:4]
capos, capos_min = {}, {}
extra = []
for line in open(log_file, encoding="utf-8", errors="replace"):
    line = line.rstrip("\r\n")
    m = re.match(r"^bench: ([a-z0-9-]+) median ([0-9]+) .*\(min ([0-9]+)", line)
    if m:
        capos[m.group(1)] = int(m.group(2))
        capos_min[m.group(1)] = int(m.group(3))
    elif line.startswith("bench: "):
        extra.append(line)
linux, missing = {}, {}
for line in open(baseline_file):
    m = re.match(r"^baseline: linux-([a-z0-9-]+) (.*)$", line.strip())
    if m and m.group(2).isdigit():
        linux[m.group(1)] = int(m.group(2))
    elif m:
        missing[m.group(1)] = m.group(2)
compare = {
    "ipc-same-cpu": ["pipe-same-cpu", "futex-same-cpu"],
    "ipc-cross-cpu": ["pipe-cross-cpu", "futex-cross-cpu"],
}
print()
print(f"capOS benchmarks ({accel}, 2 CPUs), TSC cycles per operation (IPC: per round trip), median of many runs")
row = "{:<16} {:>9} {:>9}   {:<16} {:>9} {:>12}"
print(row.format("operation", "capOS", "(min)", "Linux", "Linux", "capOS/Linux"))
for name, cycles in capos.items():
    first = True
    for base in compare.get(name, ["getppid"]):
        if base in linux:
            ratio = f"{cycles / linux[base]:.2f}x"
            print(row.format(name if first else "", cycles if first else "",
                             capos_min[name] if first else "", base, linux[base], ratio))
        else:
            print(row.format(name if first else "", cycles if first else "",
                             capos_min[name] if first else "", base,
                             "-", missing.get(base, "not measured")))
        first = False
for name in ("ipc-same-cpu", "ipc-cross-cpu"):
    if name not in capos:
        print(f"bench: WARNING: no {name} figure (see the lines below)")
for line in extra:
    print(line)

def goal(text, value, ok):
    state = "n/a" if value is None else ("met" if ok else "MISSED")
    shown = "-" if value is None else value
    print(f"  {text:<58} {shown:>14}  {state}")

g = lambda k: capos.get(k)
print()
print("Goals" + (" (TCG: emulator cycles, so met/missed says nothing about the hardware)" if accel != "kvm" else "") + ":")
goal("cap-enter-empty <= 120 cycles", g("cap-enter-empty"),
     g("cap-enter-empty") is not None and g("cap-enter-empty") <= 120)
ge, gp = g("cap-enter-empty"), linux.get("getppid")
goal("cap-enter-empty <= 1/2 of Linux getppid (capOS/Linux)",
     None if ge is None or not gp else f"{ge / gp:.2f}x", ge is not None and gp and ge * 2 <= gp)
goal("nop-batched <= 25 cycles", g("nop-batched"), g("nop-batched") is not None and g("nop-batched") <= 25)
same, pipe = g("ipc-same-cpu"), linux.get("pipe-same-cpu")
goal("ipc-same-cpu <= 1,000 cycles per round trip", same, same is not None and same <= 1000)
goal("ipc-same-cpu >= 20x faster than Linux pipe (Linux/capOS)",
     None if same is None or not pipe else f"{pipe / same:.2f}x", same is not None and pipe and pipe >= 20 * same)
print(f"  {'ipc-cross-cpu (reported; no goal yet)':<58} {g('ipc-cross-cpu') if g('ipc-cross-cpu') is not None else '-':>14}")
PY
echo
echo "Kernel wake-up counters of the whole boot (mostly the ipc-cross-cpu run):"
grep -a -e 'wake-up IPIs' -e 'woken by IPI' "$out/bench.log" | tr -d '\r' | sed 's/^\[[^]]*\] [a-z0-9]* info: /  /' || true
