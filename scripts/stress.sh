#!/usr/bin/env bash
# Boots one manifest in test mode again and again and stops at the first
# hang, printing the serial tail, the kernel's dump-key output, every CPU's
# registers and a symbolised backtrace per CPU (scripts/stress.py).
#
#   scripts/stress.sh KERNEL_ELF
#
# Environment (the Makefile's `make stress` passes these through):
#   STRESS_MANIFEST  manifest name in build/manifests/ (default tlb)
#   STRESS_COUNT     boots to run (default 100)
#   STRESS_SMP       CPUs per boot (default 4)
#   STRESS_JOBS      boots at a time (default: 2, or 1 on a one-core host)
#   STRESS_FIRMWARE  bios or uefi (default bios)
#   STRESS_TIMEOUT   seconds a boot may take before it counts as hung (180)
#   STRESS_SILENCE   seconds of serial silence that count as a hang (45)
#   STRESS_SERVICES  services packed as modules (the Makefile's SERVICES)
#   STRESS_KEEP_GOING=1  record every hang and go on (to measure a rate)
#   STRESS_OUT       output directory (default build/stress/MANIFEST-smpN)
# Boots run under TCG (where the rare hang was seen; the same accelerator
# choice as every other QEMU entry point when STRESS_ACCEL=auto).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/qemu-common.sh"
kernel_elf=${1:?usage: stress.sh KERNEL_ELF}
manifest=${STRESS_MANIFEST:-tlb}
count=${STRESS_COUNT:-100}
smp=${STRESS_SMP:-4}
cores=$(nproc 2>/dev/null || echo 1)
jobs=${STRESS_JOBS:-$((cores >= 2 ? 2 : 1))}
firmware=${STRESS_FIRMWARE:-bios}
accel=${STRESS_ACCEL:-tcg}
[ "$accel" = auto ] && accel=$(pick_accel)

out=${STRESS_OUT:-"$root/build/stress/$manifest-smp$smp"}
rm -rf "$out"
mkdir -p "$out"
[ -f "$root/build/manifests/$manifest.bin" ] || { echo "stress: no build/manifests/$manifest.bin (make manifests)" >&2; exit 2; }

# The symbols of the very kernel that boots: copy the unstripped ELF, so a
# rebuild while the run goes on cannot mislead the backtraces.
cp "$kernel_elf" "$out/capos-kernel.elf"
objcopy --strip-debug "$out/capos-kernel.elf" "$out/capos-kernel"
mods=(--module "$root/build/manifests/$manifest.bin" manifest)
for s in ${STRESS_SERVICES:-}; do mods+=(--module "$root/build/services/$s" "$s"); done
"$here/mkiso.sh" "$out/stress.iso" "$out/capos-kernel" --cmdline "test=boot" "${mods[@]}"

echo "stress: $count boots of manifests/$manifest.capnp, $smp CPUs, $accel $firmware, $jobs at a time; output in ${out#"$root"/}/"
# shellcheck disable=SC2046
exec python3 "$here/stress.py" --elf "$out/capos-kernel.elf" --out "$out" --count "$count" \
    --jobs "$jobs" --timeout "${STRESS_TIMEOUT:-180}" --silence "${STRESS_SILENCE:-45}" \
    --label "$manifest smp$smp: " ${STRESS_KEEP_GOING:+--keep-going} -- \
    qemu-system-x86_64 $(qemu_args "$accel" "$firmware" "$smp") -cdrom "$out/stress.iso"
