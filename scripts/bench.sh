#!/usr/bin/env bash
# `make bench`: boots capOS's benchmark (manifests/bench.capnp, whose init
# is services/bench) and a Linux guest (Debian's cloud kernel with
# scripts/linux-baseline as a static /init, scripts/linux-guest.sh) under
# the same QEMU flags, and prints one table: each capOS operation beside
# the Linux operations it compares with, and the ratio; then the goals.
# docs/bench.md explains every figure.
#
# Modes (BENCH_MODE):
#   pathlen  QEMU TCG with -icount shift=0,sleep=off and one CPU: the
#            guests' TSC advances by one per instruction, so figures are
#            exact, repeatable path lengths. Both guests first check that
#            premise (a loop of known length); the run stops if it fails.
#   cycles   hardware KVM, two CPUs: TSC cycles for both guests.
#   auto     (default) pathlen, and cycles too where KVM is hardware-
#            assisted (usable and not PVM).
#
#   scripts/bench.sh KERNEL_ELF
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/qemu-common.sh"
kernel=${1:?usage: bench.sh KERNEL_ELF}
out="$root/build/bench"
mkdir -p "$out"
# The Linux guest's command line: its serial console, no speculative-
# execution mitigations (capOS has none either, so both pay for the same
# kind of work), and a panic ends the run.
linux_append=${BENCH_LINUX_APPEND:-console=ttyS0 quiet mitigations=off panic=-1}
icount="-icount shift=0,sleep=off"

hw_kvm=0
if kvm_usable && ! kvm_is_pvm; then
    hw_kvm=1
fi
mode=${BENCH_MODE:-auto}
case $mode in
    auto)
        modes=(pathlen)
        if [ $hw_kvm = 1 ]; then
            modes+=(cycles)
        elif kvm_is_pvm; then
            echo "bench: path length only: this host's KVM is PVM (no hardware virtualisation; capOS userspace cannot run under it)"
        else
            echo "bench: path length only: KVM is not usable here"
        fi
        ;;
    pathlen) modes=(pathlen) ;;
    cycles)
        [ $hw_kvm = 1 ] || { echo "bench: cycles mode needs hardware KVM (usable and not PVM); BENCH_MODE=pathlen works anywhere" >&2; exit 1; }
        modes=(cycles)
        ;;
    *) echo "bench: BENCH_MODE must be auto, pathlen or cycles (got $mode)" >&2; exit 2 ;;
esac

"$here/linux-guest.sh" || exit 1
linux_dir="$root/build/linux-guest"
"$here/mkiso.sh" "$out/bench.iso" "$kernel" --cmdline "test=boot" \
    --module "$root/build/manifests/bench.bin" manifest \
    --module "$root/build/services/bench" bench || exit 1
# IRQOFF_KERNEL: the same kernel built to measure interrupts-off stretches
# (which costs instructions on every lock); booted beside the others only to
# report the longest stretch.
irqoff_kernel=${IRQOFF_KERNEL:-}
if [ -n "$irqoff_kernel" ]; then
    "$here/mkiso.sh" "$out/bench-irqoff.iso" "$irqoff_kernel" --cmdline "test=boot" \
        --module "$root/build/manifests/bench.bin" manifest \
        --module "$root/build/services/bench" bench || exit 1
fi

# run_guest NAME LOG QEMU-ARGS...: one guest, its serial console to LOG.
# Prints the exit status QEMU ended with (33: capOS's success exit; 0:
# Linux powered off).
run_guest() {
    local name=$1 log=$2
    shift 2
    python3 "$here/qemu_run.py" --log "$log" --timeout 600 -- qemu-system-x86_64 "$@" |
        sed -n 's/.*status=\([^ ]*\).*/\1/p'
}

# check_status NAME STATUS WANT LOG: a failed boot stops the bench.
check_status() {
    if [ "$2" != "$3" ]; then
        echo "bench: the $1 guest failed (QEMU status $2, expected $3); last lines of $4:" >&2
        tail -n 20 "$4" | tr -d '\r' >&2
        exit 1
    fi
}

# terminal_figures: the shell of `make run` typed into (scripts/terminal_run.py,
# scenario shell-bench) under path-length mode with the kernel's debug log,
# whose lines time the writes after each burst of input: one keystroke to
# its echo, and a typed call's Enter to its result. No goal yet.
terminal_figures() {
    local services=(init registry echo-server shell hello authd sessiond session-probe) mods=() s
    for s in "${services[@]}"; do mods+=(--module "$root/build/services/$s" "$s"); done
    "$here/mkiso.sh" "$out/shell.iso" "$kernel" --cmdline "test=boot log=debug" \
        --module "$root/build/manifests/system.bin" manifest "${mods[@]}" || exit 1
    local summary
    # shellcheck disable=SC2046,SC2086
    summary=$(python3 "$here/terminal_run.py" --log "$out/shell.log" --timeout 300 --scenario shell-bench \
        -- qemu-system-x86_64 $(qemu_args tcg bios 1) $icount -cdrom "$out/shell.iso")
    check_status "capOS shell" "$(sed -n 's/.*status=\([^ ]*\).*/\1/p' <<<"$summary")" 33 "$out/shell.log"
    echo
    echo "Terminal (the shell of make run typed into; path length; no goal yet):"
    grep -a 'writes after the previous input' "$out/shell.log" | tr -d '\r' | python3 -c '
import re, sys
rows = [tuple(map(int, re.search(r"(\d+) writes after the previous input, the first at \+(\d+) \+(\d+) \+(\d+)", l).groups()))
        for l in sys.stdin]
keys, calls = rows[0:5], rows[6:11]
if len(calls) < 5 or any(r[0] != 1 for r in keys) or any(r[0] < 3 for r in calls):
    sys.exit("bench: the terminal timing lines are not as expected: %r" % rows)
k, c = sorted(r[1] for r in keys), sorted(r[2] for r in calls)
print("  one echoed keystroke (receive interrupt to echo written):  %6d instructions (5 keys: %d to %d)" % (k[0], k[0], k[-1]))
print("  typed call timer.now() (Enter received to result written): %6d instructions (5 calls: %d to %d; the first reads the schema)" % (c[0], c[0], c[-1]))
' || exit 1
}

# login_figures: one Argon2id `verify` as authd times it at start (its
# second check of the dummy hash: TSC cycles, which are guest instructions
# under path-length mode), and a whole login typed at the shell of
# manifests/login.capnp, timed on the host, under plain TCG (the speed
# `make run` has here) and under path-length mode.
login_figures() {
    local services=(init registry echo-server shell hello authd sessiond session-probe) mods=() s
    for s in "${services[@]}"; do mods+=(--module "$root/build/services/$s" "$s"); done
    "$here/mkiso.sh" "$out/login.iso" "$kernel" --cmdline "test=boot" \
        --module "$root/build/manifests/login.bin" manifest "${mods[@]}" || exit 1
    echo
    echo "Login (manifests/login.capnp; Argon2id m=19456 KiB, t=2, p=1; no goal yet):"
    local how extra summary check
    for how in tcg pathlen; do
        extra=""
        [ "$how" = pathlen ] && extra=$icount
        # shellcheck disable=SC2046,SC2086
        summary=$(python3 "$here/terminal_run.py" --log "$out/login-$how.log" --timeout 600 --scenario login-bench \
            -- qemu-system-x86_64 $(qemu_args tcg bios 1) $extra -cdrom "$out/login.iso")
        check_status "capOS login ($how)" "$(sed -n 's/.*status=\([^ ]*\).*/\1/p' <<<"$summary")" 33 "$out/login-$how.log"
        check=$(grep -a 'authd: second Argon2id check' "$out/login-$how.log" | tr -d '\r' |
            sed -n 's/.*took \([0-9]*\) ms, \([0-9]*\) TSC cycles.*/\1 \2/p')
        [ -n "$check" ] || { echo "bench: authd printed no timing in $out/login-$how.log" >&2; exit 1; }
        if [ "$how" = tcg ]; then
            echo "  one verify, plain TCG:            $(cut -d' ' -f1 <<<"$check") ms (authd's Timer)"
            echo "  a login, plain TCG:               $(sed -n 's/^login-bench: login took \([0-9.]*\) s.*/\1/p' <<<"$summary") s wall, password Enter to 'Logged in' (fastest of 3)"
        else
            echo "  one verify, path length:          $(cut -d' ' -f2 <<<"$check") instructions"
            echo "  a login, path length:             $(sed -n 's/^login-bench: login took \([0-9.]*\) s.*/\1/p' <<<"$summary") s wall under -icount (fastest of 3)"
        fi
    done
}

for m in "${modes[@]}"; do
    if [ "$m" = pathlen ]; then
        # shellcheck disable=SC2046,SC2086
        capos_args=($(qemu_args tcg bios 1) $icount -cdrom "$out/bench.iso")
        # shellcheck disable=SC2046,SC2086
        linux_args=($(qemu_args tcg bios 1) $icount -kernel "$linux_dir/vmlinuz"
            -initrd "$linux_dir/initramfs.cpio" -append "$linux_append")
        # Instruction counts do not depend on the host's load: both guests
        # run at once.
        echo "bench: booting capOS and the Linux guest under TCG with $icount, 1 CPU"
        run_guest capOS "$out/capos-$m.log" "${capos_args[@]}" >"$out/capos-$m.status" &
        capos_pid=$!
        if [ -n "$irqoff_kernel" ]; then
            # shellcheck disable=SC2046,SC2086
            run_guest capOS-irqoff "$out/capos-irqoff.log" $(qemu_args tcg bios 1) $icount \
                -cdrom "$out/bench-irqoff.iso" >"$out/capos-irqoff.status" &
            irqoff_pid=$!
        fi
        linux_status=$(run_guest Linux "$out/linux-$m.log" "${linux_args[@]}")
        wait "$capos_pid"
        capos_status=$(cat "$out/capos-$m.status")
    else
        # shellcheck disable=SC2046
        capos_args=($(qemu_args kvm bios 2) -cdrom "$out/bench.iso")
        # shellcheck disable=SC2046
        linux_args=($(qemu_args kvm bios 2) -kernel "$linux_dir/vmlinuz"
            -initrd "$linux_dir/initramfs.cpio" -append "$linux_append")
        # Cycles depend on what else runs: one guest at a time.
        echo "bench: booting capOS, then the Linux guest, under KVM, 2 CPUs"
        capos_status=$(run_guest capOS "$out/capos-$m.log" "${capos_args[@]}")
        linux_status=$(run_guest Linux "$out/linux-$m.log" "${linux_args[@]}")
    fi
    check_status capOS "$capos_status" 33 "$out/capos-$m.log"
    check_status Linux "$linux_status" 0 "$out/linux-$m.log"
    python3 "$here/bench_report.py" "$m" "$out/capos-$m.log" "$out/linux-$m.log" \
        "$(cat "$linux_dir/version") ($linux_append)" || exit 1
    if [ "$m" = pathlen ] && [ -n "$irqoff_kernel" ]; then
        wait "$irqoff_pid"
        check_status capOS-irqoff "$(cat "$out/capos-irqoff.status")" 33 "$out/capos-irqoff.log"
        echo
        echo "Longest interrupts-off stretch (a second boot of the same bench, kernel built with irqoff):"
        grep -a 'bench: longest interrupts-off stretch' "$out/capos-irqoff.log" | tr -d '\r' |
            sed 's/cycles$/instructions/; s/^/  /'
        # The kernel's end-of-boot line names where the longest one began.
        grep -a 'longest interrupts-off stretch (TSC cycles)' "$out/capos-irqoff.log" | tr -d '\r' |
            sed -n 's/.*cpu0=\([0-9]*\) (from \([^)]*\)).*/  kernel: the longest (\1 instructions, whole boot) began at \2/p'
    fi
    if [ "$m" = pathlen ]; then
        terminal_figures
        login_figures
    fi
    if [ "$m" = cycles ]; then
        echo
        echo "Kernel wake-up counters of the whole capOS boot (mostly the ipc-cross-cpu run):"
        grep -a -e 'wake-up IPIs' -e 'woken by IPI' "$out/capos-$m.log" | tr -d '\r' |
            sed 's/^\[[^]]*\] [a-z0-9]* info: /  /' || true
    fi
done
