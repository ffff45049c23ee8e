#!/usr/bin/env bash
# Boots a capOS ISO in QEMU with the serial console on this terminal.
#
#   scripts/qemu.sh ISO [--uefi] [--tcg] [--smp N] [-- extra QEMU args]
#
# Uses KVM only where it is hardware-assisted and can run capOS userspace;
# TCG otherwise (PVM hosts, no VMX/SVM, unusable /dev/kvm) or with --tcg,
# and says which in one line. Ctrl-A X quits QEMU; Ctrl-\ asks the kernel
# for a scheduler dump.
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
why="--tcg given"
if [ "$accel" = auto ]; then
    choose_accel
    accel=$ACCEL why=$ACCEL_WHY
fi
echo "qemu: ${accel^^} ($why); $firmware firmware, $smp CPUs; Ctrl-A X quits, Ctrl-\\ dumps the scheduler" >&2
exec qemu-system-x86_64 $(qemu_args "$accel" "$firmware" "$smp") -serial mon:stdio -cdrom "$iso" "${extra[@]}"
