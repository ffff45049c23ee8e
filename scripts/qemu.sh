#!/usr/bin/env bash
# Boots a capOS ISO in QEMU with the serial console on this terminal.
#
#   scripts/qemu.sh ISO [--uefi] [--tcg] [--smp N] [-- extra QEMU args]
#
# Uses KVM when /dev/kvm works (falling back to TCG otherwise, or with
# --tcg). Ctrl-A X quits QEMU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/qemu-common.sh"
[ $# -ge 1 ] || { echo "usage: $0 ISO [--uefi] [--tcg] [--smp N] [-- QEMU args]" >&2; exit 2; }
iso=$1; shift
accel=auto firmware=bios smp=2 extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --uefi) firmware=uefi; shift ;;
        --tcg) accel=tcg; shift ;;
        --smp) smp=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "qemu.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$accel" = auto ] && { kvm_usable && accel=kvm || accel=tcg; }
echo "qemu: $accel, $firmware firmware, $smp CPUs (Ctrl-A X quits)" >&2
exec qemu-system-x86_64 $(qemu_args "$accel" "$firmware" "$smp") -serial mon:stdio -cdrom "$iso" "${extra[@]}"
