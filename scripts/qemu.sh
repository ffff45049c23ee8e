#!/usr/bin/env bash
# Boots a capOS ISO in QEMU with the serial console on this terminal.
#
#   scripts/qemu.sh ISO [--uefi] [--tcg] [--smp N] [--log FILE] [-- extra QEMU args]
#
# With --log, COM1 (the kernel log and the Console capability) goes to FILE
# and this terminal is COM2, the capOS terminal the shell runs on; without
# it, this terminal is COM1.
# Uses KVM only where it is hardware-assisted and can run capOS userspace;
# TCG otherwise (PVM hosts, no VMX/SVM, unusable /dev/kvm) or with --tcg,
# and says which in one line. Ctrl-A X quits QEMU; Ctrl-\ asks the kernel
# for a scheduler dump.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/qemu-common.sh"
[ $# -ge 1 ] || { echo "usage: $0 ISO [--uefi] [--tcg] [--smp N] [-- QEMU args]" >&2; exit 2; }
iso=$1; shift
accel=auto firmware=bios smp=2 log="" extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --uefi) firmware=uefi; shift ;;
        --tcg) accel=tcg; shift ;;
        --smp) smp=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
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
serial=(-serial mon:stdio)
if [ -n "$log" ]; then
    mkdir -p "$(dirname "$log")"
    : > "$log"
    echo "qemu: the kernel log goes to $log (tail -f it in another terminal); this terminal is capOS's terminal" >&2
    # Ctrl-C goes to capOS (signal=off); Ctrl-A X still quits (mux).
    serial=(-serial "file:$log" -chardev "stdio,id=terminal,mux=on,signal=off"
        -serial chardev:terminal -mon chardev=terminal)
fi
exec qemu-system-x86_64 $(qemu_args "$accel" "$firmware" "$smp") "${serial[@]}" -cdrom "$iso" "${extra[@]}"
