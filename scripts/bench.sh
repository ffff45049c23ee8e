#!/usr/bin/env bash
# `make bench`: boots the benchmark manifest (manifests/bench.capnp) under
# KVM when it works (TCG otherwise, with a warning: TCG cycle counts are not
# comparable), collects the `bench: NAME MEDIAN ...` lines the bench service
# prints (TSC cycles per operation), measures this machine's Linux baseline
# in the same run, and prints each result beside it as a ratio.
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
    qemu-system-x86_64 $(qemu_args "$accel" bios 1) -cdrom "$out/bench.iso")
status=$(sed -n 's/.*status=\([^ ]*\).*/\1/p' <<<"$summary")
if [ "$status" != 33 ]; then
    echo "bench: the benchmark boot failed ($summary); last lines of $out/bench.log:" >&2
    tail -n 20 "$out/bench.log" | tr -d '\r' >&2
    exit 1
fi

baseline=$(CARGO_TARGET_DIR="$root/target/host" cargo run -q --release -p capos-linux-baseline)
getppid=$(sed -n 's/^baseline: linux-getppid \([0-9]*\)$/\1/p' <<<"$baseline")
[ -n "$getppid" ] || { echo "bench: no Linux baseline" >&2; exit 1; }

echo
echo "capOS benchmarks ($accel, 1 CPU), TSC cycles per operation, median of many runs"
printf '%-28s %12s %16s %10s\n' operation "capOS" "Linux getppid" ratio
tr -d '\r' < "$out/bench.log" | sed -n 's/^bench: \([a-z0-9-]*\) median \([0-9]*\) .*/\1 \2/p' |
while read -r name cycles; do
    ratio=$(python3 -c "print(f'{$cycles / $getppid:.2f}x')")
    printf '%-28s %12s %16s %10s\n' "$name" "$cycles" "$getppid" "$ratio"
done
grep -a '^bench: ' "$out/bench.log" | tr -d '\r' | grep -v ' median ' || true
