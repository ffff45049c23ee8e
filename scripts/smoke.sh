#!/usr/bin/env bash
# QEMU smoke tests for capOS: boots the kernel headless in test mode under
# TCG (always) and KVM (when /dev/kvm works), with one CPU and several, BIOS
# and UEFI, plus deliberate faults and injected hostile boot inputs. Each
# run asserts markers on the serial log and the isa-debug-exit status, and
# prints one summary line. Exits non-zero if any run fails.
#
#   scripts/smoke.sh KERNEL_ELF
#
# KERNEL_ELF must be built with the lock-order validator (`make smoke` uses
# build/capos-kernel-lockdep): every boot must say `lockdep: on`, every
# successful test boot must end with the validator's summary, and no boot
# may print a validator report except the cases that inject one.
#
# Environment: SMOKE_ONLY=REGEX runs only matching cases; SMOKE_KVM=0 skips
# KVM runs.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/qemu-common.sh"
kernel=${1:?usage: smoke.sh KERNEL_ELF}
out="$root/build/smoke"
rm -rf "$out"
mkdir -p "$out"
printf 'this is not an ELF executable\n' > "$out/not-elf.bin"

# isa-debug-exit statuses: (value << 1) | 1, values in arch/src/qemu.rs.
ST_SUCCESS=33 ST_FAULT=35 ST_FAILURE=37

pass=0 fail=0
results="$out/results.txt"
: > "$results"

# iso_for CMDLINE [MANIFEST [OVERRIDE [OMIT]]]: a one-entry test ISO booting
# with those kernel words, carrying build/manifests/MANIFEST.bin and every
# service when given. OVERRIDE is NAME=FILE: module NAME gets FILE's bytes
# instead (hostile boot inputs). OMIT names a module left out.
iso_for() {
    local cmdline=$1 manifest=${2:-} override=${3:-} omit=${4:-} key
    key=$(printf '%s|%s|%s|%s' "$cmdline" "$manifest" "$override" "$omit" | md5sum | cut -c1-12)
    local iso="$out/iso-$key.iso"
    if [ ! -f "$iso" ]; then
        local mods=()
        if [ -n "$manifest" ]; then
            local file name
            for name in manifest ${SMOKE_SERVICES:-}; do
                [ "$name" = "$omit" ] && continue
                if [ "$name" = manifest ]; then file="$root/build/manifests/$manifest.bin"; else file="$root/build/services/$name"; fi
                [ "${override%%=*}" = "$name" ] && file=${override#*=}
                mods+=(--module "$file" "$name")
            done
            # The not-elf module exists for tests that need a non-executable binary.
            mods+=(--module "$out/not-elf.bin" not-elf)
        fi
        "$here/mkiso.sh" "$iso" "$kernel" --cmdline "$cmdline" "${mods[@]}" || return 1
    fi
    echo "$iso"
}

# run_case NAME ACCEL FIRMWARE SMP CMDLINE EXPECT [--cpu MODEL] [--stop-on RE]
#          [--manifest NAME] [--override NAME=FILE] [--omit NAME]
#          [--type RE BYTES] [--timeout SECONDS] [--scenario NAME] -- MARKER...
# --scenario runs the terminal on COM2 under scripts/terminal_run.py, which
# types scenario NAME into it (the log is COM1's).
# EXPECT is an exit status, or "stopped" for boots that halt on purpose.
# A MARKER starting with 'NOT:' must not appear; 'COUNT<n>:' must match
# exactly n lines.
run_case() {
    local name=$1 accel=$2 firmware=$3 smp=$4 cmdline=$5 expect=$6
    shift 6
    local cpu="" stop_on="" manifest="" override="" omit="" typing=() timeout="" scenario=""
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        case $1 in
            --cpu) cpu=$2; shift 2 ;;
            --timeout) timeout=$2; shift 2 ;;
            --manifest) manifest=$2; shift 2 ;;
            --override) override=$2; shift 2 ;;
            --omit) omit=$2; shift 2 ;;
            --type) typing+=(--type "$2" "$3"); shift 3 ;;
            --scenario) scenario=$2; shift 2 ;;
            --stop-on) stop_on=$2; shift 2 ;;
            *) echo "smoke: bad option $1" >&2; return 1 ;;
        esac
    done
    shift
    local log="$out/$name.log" iso
    iso=$(iso_for "$cmdline" "$manifest" "$override" "$omit") || { record FAIL "$name" "could not build the ISO"; return; }
    local args
    args=$(qemu_args "$accel" "$firmware" "$smp")
    [ -n "$cpu" ] && args=$(echo "$args" | sed "s/-cpu [^ ]*/-cpu $cpu/")
    if [ -z "$timeout" ]; then
        timeout=90
        [ "$accel" = kvm ] && timeout=300
    fi
    local runner=(python3 "$here/qemu_run.py" --log "$log" --timeout "$timeout" --mark 'kernel ready')
    [ -n "$stop_on" ] && runner+=(--stop-on "$stop_on")
    runner+=("${typing[@]}")
    [ -n "$scenario" ] && runner=(python3 "$here/terminal_run.py" --log "$log" --timeout "$timeout" --scenario "$scenario" --mark 'kernel ready')
    local summary
    # shellcheck disable=SC2086
    summary=$("${runner[@]}" -- qemu-system-x86_64 $args -cdrom "$iso")
    local status seconds ready
    status=$(sed -n 's/.*status=\([^ ]*\).*/\1/p' <<<"$summary")
    seconds=$(sed -n 's/.*seconds=\([^ ]*\).*/\1/p' <<<"$summary")
    ready=$(sed -n 's/.*mark0=\([^ ]*\).*/\1/p' <<<"$summary")
    local problems=()
    [ "$status" = "$expect" ] || problems+=("QEMU status $status, expected $expect")
    local m
    for m in "$@"; do
        if [ "${m:0:4}" = "NOT:" ]; then
            grep -aEq -- "${m:4}" "$log" && problems+=("unexpected output /${m:4}/")
        elif [[ $m =~ ^COUNT([0-9]+):(.*)$ ]]; then
            local want=${BASH_REMATCH[1]} re=${BASH_REMATCH[2]} got
            got=$(grep -aEc -- "$re" "$log")
            [ "$got" = "$want" ] || problems+=("/$re/ matched $got lines, expected $want")
        else
            grep -aEq -- "$m" "$log" || problems+=("missing /$m/")
        fi
    done
    # The lock-order validator is on in every boot, and a boot that ends
    # well proves it kept validating to the end.
    if grep -aEq "capOS [0-9.]+ booting" "$log"; then
        grep -aq "lockdep: on" "$log" || problems+=("lock validator not on (kernel built without lockdep?)")
    fi
    if [ "$status" = "$ST_SUCCESS" ]; then
        local orders="[0-9]+"
        [ -n "$manifest" ] && orders="[1-9][0-9]*"
        grep -aEq "lockdep: [1-9][0-9]* acquisitions checked \([1-9][0-9]* in interrupt handlers\), [1-9][0-9]* lock classes, $orders lock orders, no violations" "$log" ||
            problems+=("no lock validator summary")
    fi
    if [[ $name != inject-lock-* ]] && grep -aq '!!! lockdep:' "$log"; then
        problems+=("lock validator report: $(grep -a -m1 '!!! lockdep:' "$log" | tr -d '\r')")
    fi
    local detail="$accel $firmware smp=$smp, ${seconds}s"
    [ "$ready" != "-" ] && detail+=", kernel ready at ${ready}s"
    if [ ${#problems[@]} -eq 0 ]; then
        record PASS "$name" "$detail"
    else
        record FAIL "$name" "$detail: ${problems[*]}"
        echo "---- last lines of $log ----"
        tail -n 25 "$log" | tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'
        echo "----"
    fi
}

record() {
    local verdict=$1 name=$2 text=$3
    printf '%s %-22s %s\n' "$verdict" "$name" "$text" | tee -a "$results"
    case $verdict in
        PASS) pass=$((pass + 1)) ;;
        FAIL) fail=$((fail + 1)) ;;
    esac
}

selected() { [ -z "${SMOKE_ONLY:-}" ] || [[ $1 =~ $SMOKE_ONLY ]]; }

# Markers every successful boot prints, for CPU count N.
boot_markers() {
    local n=$1
    echo "capOS [0-9.]+ booting"
    echo "memory: [0-9]+ MiB usable RAM in [0-9]+ regions"
    echo "paging: kernel tables active"
    echo "apic: (x2apic|xapic) mode"
    echo "timer: TSC [0-9]+\.[0-9]+ MHz"
    echo "smp: $n of $n CPUs online"
    local i
    for ((i = 0; i < n; i++)); do echo "timer: cpu$i APIC id [0-9]+ ticks=[0-9]+"; done
    echo "timer: periodic ticks on all $n online CPUs"
    echo "kernel ready: "
    echo "test: boot checks passed"
    echo "NOT:EXCEPTION|PANIC|boot halted"
}

# Markers of the process manifest (manifests/procs.capnp) for N CPUs.
proc_markers() {
    local n=$1
    echo "manifest: [0-9]+ binaries, init \"init\", 12 boot processes"
    echo "init: capOS init started \(pid 1\)"
    echo "init: cap console id=0x[0-9a-f]+ interface=0x[0-9a-f]+"
    echo "init: manifest: [0-9]+ binaries"
    echo "hostile: all [0-9]+ cases passed"
    echo "hostile: ok syscall-registers"
    echo "hostile: ok echo-later-deadline-order"
    echo "hostile: ok echo-later-outlives-its-cap"
    echo "timer-demo: slept [0-9]+ us for a 5000 us sleep"
    echo "timer-demo: sleeps completed in order \[10, 20, 30\] ms"
    echo "timer-demo: 1 sleeps past the limit of 16 refused with QUOTA"
    echo "timer-demo: done"
    echo "NOT:timer-demo: FAIL"
    echo "vm-demo: ok mapped 4 pages at 0x[0-9a-f]+, checksum 2041721"
    echo "vm-demo: ok write\+exec refused: writable and executable mapping refused \(W\^X\)"
    echo "vm-demo: ok unmap-ring refused"
    echo "vm-demo: ok protect-image refused"
    echo "vm-demo: ok unmap-unmapped refused"
    echo "vm-demo: ok over-quota refused: frame quota"
    echo "vm-demo: ok quota filled and released"
    echo "vm-demo: ok [0-9]+ rounds of protect and unmap across sleeps took effect"
    echo "vm-demo: ok protected a page read-only"
    echo "NOT:vm-demo: FAIL"
    echo 'proc: pid [0-9]+ \(vm-demo\) killed: page fault \(vector 14\) at rip 0x[0-9a-f]+, address 0x[0-9a-f]+, error code 0x7'
    echo "NOT:hostile: FAIL"
    echo "NOT:hostile: must not print"
    echo "COUNT4:worker [0-9]+: done"
    echo 'proc: pid [0-9]+ \(fault-pf\) killed: page fault \(vector 14\) at rip 0x[0-9a-f]+, address 0x0'
    echo 'proc: pid [0-9]+ \(fault-gp\) killed: general protection fault \(vector 13\) at rip 0x[0-9a-f]+'
    echo 'proc: pid [0-9]+ \(fault-ud\) killed: invalid opcode \(vector 6\) at rip 0x[0-9a-f]+'
    echo 'proc: pid [0-9]+ \(fault-de\) killed: divide error \(vector 0\) at rip 0x[0-9a-f]+'
    echo 'proc: pid [0-9]+ \(fault-nm\) killed: device not available \(vector 7\) at rip 0x[0-9a-f]+'
    echo 'proc: pid 1 \(init\) exited with code 0'
    echo 'proc: pid [0-9]+ \(hostile\) exited with code 0'
    echo 'COUNT4:proc: pid [0-9]+ \(worker\) exited with code 0'
    echo "proc: all processes exited; frames held by processes 0;"
    echo "test: all processes exited"
    # One CPU never interrupts another; with several, the kernel-stack
    # reclaim at the end flushes every other CPU, and every IPI sent is
    # acknowledged (whether a user space ran on several CPUs here depends
    # on timing: the tlb case below requires user shoot-downs).
    if [ "$n" -gt 1 ]; then
        echo "tlb: shoot-downs [0-9]+ .*; IPIs sent ([1-9][0-9]*), acknowledged \1 "
    else
        echo "tlb: shoot-downs 0 .*; IPIs sent (0), acknowledged \1 "
    fi
    if [ "$n" -gt 1 ]; then
        local ticks="sched: timer ticks in user mode per CPU:" i
        for ((i = 0; i < n; i++)); do ticks+=" cpu$i=[1-9][0-9]*"; done
        echo "$ticks"
        echo "sched: up to $n CPUs ran user threads at the same time"
        echo "sched: wake-up IPIs sent [1-9][0-9]*, received [1-9][0-9]*"
    fi
}

proc_case() {
    local name=$1 accel=$2 smp=$3 apic=$4
    selected "$name" || return 0
    mapfile -t markers < <(boot_markers "$smp"; proc_markers "$smp")
    run_case "$name" "$accel" bios "$smp" "test=boot" $ST_SUCCESS --manifest procs -- "${markers[@]}" "apic: $apic mode"
}

boot_case() {
    local name=$1 accel=$2 firmware=$3 smp=$4 apic=$5
    selected "$name" || return 0
    mapfile -t markers < <(boot_markers "$smp")
    run_case "$name" "$accel" "$firmware" "$smp" "test=boot bogus=1" $ST_SUCCESS -- "${markers[@]}" \
        "apic: $apic mode" "ignoring unknown boot option .bogus=1."
}

fault_case() {
    local short=$1 vector=$2 name=$3
    shift 3
    selected "fault-$short" || return 0
    run_case "fault-$short" tcg bios 2 "test=fault:$short" $ST_FAULT -- \
        "kernel ready: " "test: raising $short on purpose" \
        "!!! EXCEPTION: $name \(vector $vector\) on cpu 0 in kernel mode" \
        "!!!   rip 0x[0-9a-f]{16}" "!!!   cr2 0x[0-9a-f]{16}  cr3 0x[0-9a-f]{16}" \
        "!!!   r13 0x[0-9a-f]{16}" "!!! test: expected fault reported; cpu 0 halted" "$@"
}

# KVM runs are slow to reach the kernel here (firmware disk I/O under
# nested virtualisation), so they run in the background while TCG runs.
kvm_pids=()
if [ "${SMOKE_KVM:-1}" != 0 ] && kvm_usable; then
    # KVM that cannot run capOS userspace (PVM, or no VMX/SVM) boots the
    # kernel only; userspace runs under TCG.
    choose_accel
    if [ "$ACCEL" != kvm ]; then
        record SKIP kvm-procs "$ACCEL_WHY; KVM runs boot the kernel only, userspace runs under TCG"
    fi
    for smp in 1 4; do
        if [ "$ACCEL" != kvm ]; then
            name="kvm-bios-smp$smp"
            selected "$name" || continue
            ( boot_case "$name" kvm bios "$smp" x2apic > "$out/$name.result" 2>&1 ) &
        else
            name="kvm-procs-smp$smp"
            selected "$name" || continue
            ( proc_case "$name" kvm "$smp" x2apic > "$out/$name.result" 2>&1 ) &
        fi
        kvm_pids+=($!)
    done
else
    record SKIP kvm "KVM runs off (SMOKE_KVM=0, no usable /dev/kvm, or QEMU cannot create a host CPU); TCG runs only"
fi

proc_case tcg-procs-smp1 tcg 1 xapic
proc_case tcg-procs-smp4 tcg 4 xapic
boot_case tcg-bios-smp1 tcg bios 1 xapic
boot_case tcg-bios-smp4 tcg bios 4 xapic
boot_case tcg-uefi-smp2 tcg uefi 2 xapic

fault_case pf 14 "page fault" "error code 0x0 \[not-present read kernel\]" "cr2 0x00000000deadb000"
fault_case gp 13 "general protection fault"
fault_case ud 6 "invalid opcode"
fault_case de 0 "divide error"
fault_case bp 3 "breakpoint"
fault_case df 8 "double fault" "cr2 lies in the guard page below the boot stack: stack overflow"

if selected inject-ap-no-start; then
    run_case inject-ap-no-start tcg bios 4 "test=boot inject=ap-no-start" $ST_SUCCESS -- \
        "injected fault: withholding startup IPIs" \
        "smp: cpu1 \(APIC id [0-9]+\) did not come online within 200 ms; continuing without it" \
        "smp: 3 of 4 CPUs online" "timer: periodic ticks on all 3 online CPUs" "test: boot checks passed"
fi
if selected inject-bad-acpi; then
    run_case inject-bad-acpi tcg bios 2 "test=boot inject=bad-acpi-checksum" $ST_SUCCESS -- \
        "acpi: .*checksum.*; continuing on the boot CPU only" "smp: 1 of 1 CPUs online" "test: boot checks passed"
fi
if selected inject-module-overlap; then
    run_case inject-module-overlap tcg bios 1 "test=boot inject=module-overlap" $ST_SUCCESS -- \
        'module "injected-overlap" at 0x[0-9a-f]+\.\.0x[0-9a-f]+ rejected: .*kernel.*; ignoring it' \
        "test: boot checks passed"
fi
# A module where the AP trampoline would go (GRUB's EFI loader may put
# modules anywhere in low memory): accepted, and the trampoline moves to
# another free low page; every CPU still starts.
if selected inject-module-on-trampoline; then
    run_case inject-module-on-trampoline tcg bios 4 "test=boot inject=module-on-trampoline" $ST_SUCCESS -- \
        'boot: module "injected-low" at 0x8000\.\.0x9000 \(4 KiB\)' \
        "smp: AP trampoline at 0x[0-9a-f]+" "NOT:AP trampoline at 0x8000" "NOT:rejected" \
        "smp: 4 of 4 CPUs online" "test: boot checks passed"
fi
# One calibration window ends late (as when the host deschedules the vCPU
# mid-window): the median window is used and the late one reported.
if selected inject-calibration-stall; then
    run_case inject-calibration-stall tcg bios 2 "test=boot inject=calibration-stall" $ST_SUCCESS -- \
        "timer: calibration window 1 of 3 counted [0-9]+ TSC ticks against the median's [0-9]+ \([1-9][0-9]*\.[0-9]+x\): the CPU was held up; window ignored" \
        "timer: periodic ticks on all 2 online CPUs" "test: boot checks passed"
fi
if selected inject-no-memory-map; then
    run_case inject-no-memory-map tcg bios 1 "test=boot inject=no-memory-map" $ST_FAILURE -- \
        "capOS: boot halted: the loader passed no memory map" "NOT:kernel ready"
fi
# The lock validator's own failure cases (kernel/src/sync/lockdep.rs,
# `inject`): the report must name the classes and acquisition sites, which
# are read here from the source lines marked `// inject: WHAT`.
ld_src=kernel/src/sync/lockdep.rs
ld_site() {
    local line
    line=$(grep -n -- "// inject: $1\$" "$root/$ld_src" | cut -d: -f1)
    [ -n "$line" ] || { echo "smoke: no '// inject: $1' line in $ld_src" >&2; echo "MISSING-SITE"; return; }
    echo "$ld_src:$line:[0-9]+"
}
if selected inject-lock-reentry; then
    run_case inject-lock-reentry tcg bios 2 "test=boot inject=lock-reentry" $ST_FAILURE -- \
        "inject: taking a lock this CPU already holds" \
        "!!! lockdep: re-entry of a held lock on cpu0" \
        "!!!   taking   lock made at $(ld_site 'reentry class') at $(ld_site 'reentry again')" \
        "!!!   already held since $(ld_site 'reentry first') \(same lock 0x[0-9a-f]+\)" \
        "!!!   #[0-9]+ lock made at $(ld_site 'reentry class') taken at $(ld_site 'reentry first')" \
        "lockdep: cpu0 halted" "NOT:test: boot checks passed"
fi
if selected inject-lock-inversion; then
    run_case inject-lock-inversion tcg bios 2 "test=boot inject=lock-inversion" $ST_FAILURE -- \
        "inject: taking two locks in one order, then in the other" \
        "!!! lockdep: lock-order inversion on cpu0" \
        "!!!   taking   lock made at $(ld_site 'inversion class A') at $(ld_site 'inversion A second')" \
        "!!!   while holding lock made at $(ld_site 'inversion class B') taken at $(ld_site 'inversion B first')" \
        "!!!     cpu0: held lock made at $(ld_site 'inversion class A') taken at $(ld_site 'inversion A first')" \
        "!!!           then took lock made at $(ld_site 'inversion class B') at $(ld_site 'inversion B second')" \
        "lockdep: cpu0 halted" "NOT:test: boot checks passed"
fi
if selected inject-lock-irq-unsafe; then
    run_case inject-lock-irq-unsafe tcg bios 1 "test=boot inject=lock-irq-unsafe" $ST_FAILURE -- \
        "inject: taking a lock with interrupts enabled, then in interrupt context" \
        "!!! lockdep: interrupt-unsafe lock" \
        "!!!   lock made at $(ld_site 'irq class') is taken in interrupt context at $(ld_site 'irq handler') \(cpu0\)" \
        "!!!   and with interrupts enabled at $(ld_site 'irq enabled') \(cpu0\)" \
        "lockdep: cpu0 halted" "NOT:test: boot checks passed"
fi
head -c 700 /dev/urandom > "$out/not-manifest.bin"
if selected bad-init-elf; then
    run_case bad-init-elf tcg bios 1 "test=boot" $ST_FAILURE --manifest smoke --override "init=$out/not-elf.bin" -- \
        'capOS: boot halted: manifest: init "init": invalid ELF: ' "NOT:init: capOS init started"
fi
# A test boot that was given modules but no manifest (or no init) ran no
# process: it must fail and say why, never pass having run nothing.
if selected no-manifest; then
    run_case no-manifest tcg bios 1 "test=boot" $ST_FAILURE --manifest smoke --omit manifest -- \
        "test: the loader passed [0-9]+ boot modules, so processes were expected, but no usable \"manifest\" module was among them.*; no process ran" \
        "NOT:test: all processes exited" "NOT:init: capOS init started"
fi
if selected no-init; then
    run_case no-init tcg bios 1 "test=boot" $ST_FAILURE --manifest smoke --omit init -- \
        'capOS: boot halted: manifest: .*no boot module named "init"' \
        "NOT:test: all processes exited" "NOT:init: capOS init started"
fi
if selected bad-manifest; then
    run_case bad-manifest tcg bios 1 "test=boot" $ST_FAILURE --manifest smoke --override "manifest=$out/not-manifest.bin" -- \
        "capOS: boot halted: manifest: " "NOT:init: capOS init started"
fi
# The default service graph (manifests/default.capnp), under BIOS and under
# UEFI, where GRUB's EFI loader puts the manifest and init below 1 MiB: the
# boot accepts them there and runs the whole graph to `init: done`.
default_case() {
    local name=$1 smp=$2 firmware=${3:-bios}
    selected "$name" || return 0
    run_case "$name" tcg "$firmware" "$smp" "test=boot" $ST_SUCCESS --manifest default -- \
        'boot: module "manifest" at 0x[0-9a-f]+\.\.0x[0-9a-f]+' 'boot: module "init" at 0x[0-9a-f]+' \
        "NOT:rejected" "init: done" \
        "init: started service echo-server \(pid [0-9]+\)" "init: started service echo-client \(pid [0-9]+\)" \
        "echo-server: echoing 11 bytes for pid [0-9]+" 'echo-client: reply "hello capOS"' \
        "echo-client: typed error: echo method 1 always fails" \
        "echo-client: RECV on the client facet refused: INTERFACE_MISMATCH" \
        "echo-client: call after the server exited: CANCELLED" \
        "echo-client: 20 calls on its own unserved endpoint: 16 queued, 4 refused \(QUOTA\); answered in order: true" \
        "echo-client: 16 calls on its own unserved endpoint: 16 queued, 0 refused \(QUOTA\); answered in order: true" \
        "echo-client: a queued call whose cap was released failed at delivery \(BAD_CAP\); the same RECV took the next call" \
        "echo-client: moved its endpoint away with a received call unanswered and a RECV waiting: both CANCELLED, its id BAD_CAP, the endpoint closed once the server released it" \
        "echo-server: received 1 cap\(s\) with interfaces \[0x9e8a4b887bf7d685\]" \
        "echo-client: copied its echo cap to the server; its own copy still works" \
        "echo-client: failed transfer refused \(BAD_CAP\); its table is unchanged" \
        "echo-server: the moved timer works here" \
        "echo-client: moved its timer to the server; its own id is now BAD_CAP" \
        "timer-demo: sleeps completed in order \[10, 20, 30\] ms" \
        "init: started service registry \(pid [0-9]+\)" \
        "registry: serving [0-9]+ interfaces and [0-9]+ schema nodes \([0-9]+ bytes\)" \
        "registry-check: [0-9]+ interfaces; services.capnp:Echo is 0x975f538cdc85f147" \
        "registry-check: Echo has echo@0 fail@1 quit@2 inspectCaps@3 useTimer@4" \
        'registry-check: services.capnp:Echo.echo\$Params has data :Data' \
        "registry-check: node\(0x123456789abcdef\) refused: no schema node has id 0x0123456789abcdef" \
        "registry-check: asked the registry to stop" "registry: stopped" \
        "init: service registry exited with code 0" \
        "init: started service shm-producer \(pid [0-9]+\)" "init: started service shm-consumer \(pid [0-9]+\)" \
        "shm-producer: wrote 23 bytes at 0x6[0-9a-f]{11}" \
        "shm-consumer: wrong-type adoption refused: result capability has an unexpected interface" \
        'shm-consumer: read "written by the producer" from the producer.s memory \(8192 bytes mapped at 0x6[0-9a-f]{11}\)' \
        'shm-producer: sees the consumer.s write "consumer was here" in its own mapping' \
        "shm-consumer: the producer saw the answer" \
        "shm-consumer: executable mapping refused: shared memory is never executable" \
        "shm-consumer: mapping past the end refused: 0x1000..0x3000 is outside the 8192-byte object" \
        "shm-consumer: partial unmap refused: .* is not a whole mapping of this memory object" \
        "shm-consumer: unmap of a foreign address refused: .* is not a whole mapping of this memory object" \
        "shm-producer: RETURN with a cap it does not hold refused \(BAD_CAP\)" \
        "shm-producer: RETURN of an exception with a cap refused \(INVALID_TRANSFER\)" \
        "shm-producer: moved its frame allocator to the consumer; its own id is now BAD_CAP" \
        "shm-consumer: the moved frame allocator works here \(4 contiguous pages\)" \
        'shm-consumer: after the refused RETURN: "answered after the refusal", no caps' \
        "shm-consumer: memory still readable after releasing the cap" \
        "shm-producer: done \(unmap: Ok\(\(\)\)\)" \
        "init: service shm-producer exited with code 0" "init: service shm-consumer exited with code 0" \
        "init: service echo-server exited with code 0" "init: service echo-client exited with code 0" \
        "init: service timer-demo exited with code 0" \
        "proc: all processes exited; frames held by processes 0;" "timers: 0 pending;" "test: all processes exited" \
        "NOT:FAIL|not started|could not start|EXCEPTION|PANIC"
}
# The terminal, typed into as a person would (scripts/terminal_run.py): the
# line discipline, hidden input, key reads, type-ahead and its scrubbing,
# cancellation, a 100 KB line, binary garbage; the dump key on the
# terminal's line. Then the whole system exits with nothing held.
terminal_case() {
    local name=$1 smp=$2
    selected "$name" || return 0
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest terminal --scenario terminal-test -- \
        "terminal: COM2 \(0x2f8\), input by interrupt \(ISA IRQ 3, vector 4[0-7]\)" \
        "init: started service terminal-test \(pid [0-9]+\)" \
        "terminal-test: refusals: maxBytes 5000 refused \(maxBytes 5000 is more than 4096\); a 40-byte result buffer for 64 bytes refused \(BUFFER_TOO_SMALL\)" \
        "dump [0-9]+: scheduler state" \
        "terminal-test: done" "init: service terminal-test exited with code 0" \
        "proc: all processes exited; frames held by processes 0;" "timers: 0 pending;" "test: all processes exited" \
        "NOT:FAIL|not started|could not start|EXCEPTION|PANIC"
}
terminal_case tcg-terminal-smp1 1
terminal_case tcg-terminal-smp4 4
# The shell as `make run` boots it (manifests/system.capnp), typed into as a
# person would: an anonymous session refused a launch, the first-boot
# `setup` of a volatile operator password, then help, caps, inspect, typed
# calls and their typed errors, history, Ctrl-C, editing keys, Tab
# completion, a 100 KB line; then the person stops the echo server and the
# registry and leaves, which ends the system, with nothing held.
shell_case() {
    local name=$1 smp=$2
    selected "$name" || return 0
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest system --scenario shell --timeout 240 -- \
        "init: started service shell \(pid [0-9]+\)" \
        "shell: started on the terminal; registry yes, launcher yes, session anonymous, [0-9]+ capabilities" \
        "shell: exited" "init: service shell exited with code 0" \
        "init: service echo-server exited with code 0" "init: service registry exited with code 0" \
        "init: shell ended the system: stopping 2 services" \
        "proc: all processes exited; frames held by processes 0;" "timers: 0 pending;" "test: all processes exited" \
        "NOT:FAIL|not started|could not start|EXCEPTION|PANIC"
}
shell_case tcg-shell-smp1 1
shell_case tcg-shell-smp4 4
# Login and sessions (manifests/login.capnp, docs/sessions.md), typed into
# as a person would: an anonymous shell with no bundle and a refused
# launch; two wrong passwords (the second answered later, neither echoed);
# the right one and the operator's bundle; a child holding exactly its
# grants in the operator's session; logout revoking the bundle in a child
# still running (a typed error); the audit log of every step with no
# secret in it; a guest with nothing; a 1 MB password line and non-UTF-8
# bytes refused. Then the system ends with nothing held.
login_case() {
    local name=$1 smp=$2
    selected "$name" || return 0
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest login --scenario login --timeout 400 -- \
        "entropy: (rdseed|rdrand|tsc jitter)" \
        "sessiond: serving 2 accounts, 3 profiles" \
        "init: started service shell \(pid [0-9]+\)" \
        "shell: started on the terminal; registry yes, launcher yes, session anonymous, [0-9]+ capabilities" \
        "probe: systemInfo works" \
        "probe: systemInfo stopped working: exception: disconnected: session ended" \
        "shell: exited" "init: service shell exited with code 0" \
        "init: shell ended the system: stopping 4 services" \
        "proc: all processes exited; frames held by processes 0;" "timers: 0 pending;" "test: all processes exited" \
        "NOT:FAIL|not started|could not start|EXCEPTION|PANIC|correct horse|guest pass|wrong one"
}
login_case tcg-login-smp1 1
login_case tcg-login-smp4 4
default_case tcg-default-smp1 1
default_case tcg-default-smp4 4
default_case tcg-uefi-default-smp1 1 uefi
default_case tcg-uefi-default-smp4 4 uefi
if selected services; then
    run_case services tcg bios 2 "test=boot" $ST_SUCCESS --manifest services -- \
        "init: started service clock \(pid [0-9]+\)" "init: started service cruncher \(pid [0-9]+\) pinned to CPU 1" \
        'proc: pid [0-9]+ \(cruncher\) spawned by pid 1, pinned to CPU 1' \
        'cpu1 info: proc: pid [0-9]+ \(cruncher\) exited with code 0' \
        "init: started service memory \(pid [0-9]+\)" 'proc: pid [0-9]+ \(clock\) spawned by pid 1' \
        "timer-demo: done" "worker [0-9]+: done" \
        "vm-demo: ok [0-9]+ rounds of protect and unmap across sleeps took effect" \
        "vm-demo: ok protected a page read-only" \
        'proc: pid [0-9]+ \(memory\) killed: page fault' \
        "init: service clock exited with code 0" "init: service cruncher exited with code 0" \
        "init: service memory exited with code 142" "init: done" \
        'proc: pid [0-9]+ \(echo-server\) spawned by pid 1, pinned to CPU 1' \
        'proc: pid [0-9]+ \(echo-client\) spawned by pid 1, pinned to CPU 0' \
        'echo-client: reply "hello capOS"' "echo-client: typed error: echo method 1 always fails" \
        "echo-server: the moved timer works here" "echo-client: call after the server exited: CANCELLED" \
        'cpu1 info: proc: pid [0-9]+ \(echo-server\) exited with code 0' \
        'cpu0 info: proc: pid [0-9]+ \(echo-client\) exited with code 0' \
        "init: service echo-server exited with code 0" "init: service echo-client exited with code 0" \
        "sched: wake-up IPIs sent [1-9][0-9]*, received [1-9][0-9]*" \
        "proc: all processes exited; frames held by processes 0;" "test: all processes exited" \
        "NOT:could not start|FAIL|EXCEPTION|PANIC"
fi
# Heap growth through VirtualMemory, and the readable allocation failures
# without it or past the frame quota (manifests/heap.capnp).
heap_case() {
    local name=$1 smp=$2
    selected "$name" || return 0
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest heap -- \
        "init: started service heap \(pid [0-9]+\)" "init: started service heap-novm \(pid [0-9]+\)" \
        "heap-demo: ok 5120 KiB in 17 vectors over a 512 KiB arena, patterns intact; heap grew [1-9][0-9]* times, [0-9]+ bytes mapped, 1 span\(s\)" \
        "heap-demo: ok freed and allocated 5120 KiB again without growing" \
        "heap-demo: ok unmapping heap memory refused: the range holds heap memory" \
        "heap-demo: mapped the rest of the frame quota \([1-9][0-9]* KiB\); allocating [0-9]+ KiB" \
        "panic: memory allocation of [0-9]+ bytes failed \(heap: 512 KiB arena, [1-9][0-9]* growths, [0-9]+ bytes mapped; cannot grow: VirtualMemory.map overloaded: frame quota" \
        "heap-demo: no VirtualMemory capability; allocating 1024 KiB over a 512 KiB arena" \
        "panic: memory allocation of 1048576 bytes failed \(heap: 512 KiB arena, 0 growths, 0 bytes mapped; cannot grow: no VirtualMemory capability\)" \
        "init: service heap exited with code 101" "init: service heap-novm exited with code 101" \
        "init: done" "proc: all processes exited; frames held by processes 0;" "test: all processes exited" \
        "NOT:FAIL|could not start|EXCEPTION|PANIC|killed"
}
heap_case tcg-heap-smp1 1
heap_case tcg-heap-smp4 4
# TLB shoot-downs (manifests/tlb.capnp): the VirtualMemory demo alone, its
# rounds across sleeps checked, and the kernel's counters: no shoot-down
# with one CPU; with four, the demo wakes on other CPUs while the one it
# left idles with its tables loaded, so shoot-downs interrupt other CPUs and
# every IPI is acknowledged.
tlb_case() {
    local name=$1 smp=$2 count=$3
    selected "$name" || return 0
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest tlb -- \
        "vm-demo: ok [0-9]+ rounds of protect and unmap across sleeps took effect" \
        "vm-demo: ok protected a page read-only" \
        'proc: pid [0-9]+ \(vm-demo\) killed: page fault \(vector 14\) at rip 0x[0-9a-f]+, address 0x[0-9a-f]+, error code 0x7' \
        "proc: all processes exited; frames held by processes 0;" "test: all processes exited" \
        "tlb: shoot-downs $count .*; IPIs sent ($count), acknowledged \1 " \
        "NOT:vm-demo: FAIL|EXCEPTION|PANIC"
}
# The serial dump key (Ctrl-\) typed while the VirtualMemory demo sleeps
# between rounds: CPU 0 prints the blocked threads, every CPU its own line,
# and the run goes on to its normal end.
if selected dump-key; then
    run_case dump-key tcg bios 4 "test=boot" $ST_SUCCESS --manifest tlb \
        --type "vm-demo: ok quota filled and released" '\x1c' -- \
        "dump 1: scheduler state at [0-9.]+ s \(dump key Ctrl-.\); [0-9]+ live threads, [0-9]+ frames held by processes, 4 CPUs" \
        "dump 1: [0-9]+ blocked threads" \
        "COUNT4:^dump 1: cpu[0-3] interrupted in (kernel|user) mode at rip 0x[0-9a-f]+, (idle loop|not idle); running .*; run queue" \
        "dump 1: end \(4 of 4 CPUs answered\)" "NOT:did not answer" \
        "vm-demo: ok protected a page read-only" "test: all processes exited" "NOT:EXCEPTION|PANIC"
fi
tlb_case tcg-tlb-smp1 1 0
tlb_case tcg-tlb-smp4 4 "[1-9][0-9]*"
if selected spawn-test; then
    run_case spawn-test tcg bios 2 "test=boot" $ST_SUCCESS --manifest spawn-test -- \
        "template: hello from a capOS service" \
        "spawn-test: ok child pid [0-9]+ exited with Ok\(0\), waited again: Ok\(0\)" \
        "spawn-test: ok boot-package-grant refused: grant \"boot\": BootPackage is only granted to init" \
        "spawn-test: ok spawner-grant refused: grant \"spawner\": ProcessSpawner is only granted to init" \
        "spawn-test: ok terminal-grant refused: grant \"term\": no terminal is configured" \
        "spawn-test: ok unknown-binary refused: no boot binary named \"no-such-binary\"" \
        "spawn-test: ok not-an-elf refused: cannot start \"not-elf\": invalid ELF" \
        'proc: pid [0-9]+ \(pinned\) spawned by pid 1, pinned to CPU 1' \
        'cpu1 info: proc: pid [0-9]+ \(pinned\) exited with code 0' \
        "spawn-test: ok child pinned to CPU 1 exited with Ok\(0\)" \
        "spawn-test: ok pin-to-missing-cpu refused: cannot pin \"bad\": CPU 2 is not online \(2 CPUs run threads" \
        "spawn-test: ok too-many-grants refused: cannot start \"template\": capability table: cap slots quota exceeded: 1 requested, 64 of 64 in use" \
        "spawn-test: ok child with a 16384-frame quota exited with Ok\(0\)" \
        "spawn-test: ok child with a 512-frame quota exited with Ok\(0\)" \
        "spawn-test: ok tiny-frame-quota refused: cannot start \"template\": its own quota: frames quota exceeded: [0-9]+ requested, 0 of 8 in use" \
        "spawn-test: ok frame-limit-too-high refused: frame limit 1048576 is above the most a process may have \(16384\)" \
        "spawn-test: ok quota-without-room-for-page-tables refused: cannot start \"template\": its own quota: frames quota exceeded: [0-9]+ requested, [0-9]+ of [0-9]+ in use" \
        "spawn-test: ok cap-slot-limit-too-high refused: cap-slot limit 4097 is above the most a process may have \(4096\)" \
        "COUNT11:spawner: refused a spawn by pid 1: .*; frames held [0-9]+ -> [0-9]+, caller ledger (\[[0-9, ]+\]) -> \1: nothing leaked" \
        "COUNT11:spawner: refused a spawn by pid 1: " "NOT:LEAKED" \
        "spawn-test: done" "NOT:spawn-test: FAIL" \
        "proc: all processes exited; frames held by processes 0;" "test: all processes exited"
fi
# init's Launcher (manifests/launcher.capnp): launcher-test lists its
# allowlist, launches template with a copy of its console, has each bad
# request refused by init before any spawn, repeats refused and good
# launches past init's 12 cap slots (a capability init kept would fill its
# table), and gives a copy of its launcher to a child, which init refuses
# since it knows holders by pid. Every process exits with nothing held.
if selected launcher; then
    run_case launcher tcg bios 2 "test=boot" $ST_SUCCESS --manifest launcher -- \
        "init: started service launcher-test \(pid [0-9]+\)" \
        "launcher-test: allowed: template launcher-test" \
        "launcher-test: ok launched template as pid [0-9]+ with its console; it exited with code 0" \
        "template: hello from a capOS service" \
        "launcher-test: ok not-allowlisted refused: exception: failed: binary \"hostile\" is not on this launcher's allowlist" \
        "launcher-test: ok unsent-index refused: exception: failed: grant \"console\": names transfer index 1, but 1 capabilities were sent" \
        "launcher-test: ok index-named-twice refused: exception: failed: grant \"log\": transfer index 0 is named by an earlier grant too" \
        "launcher-test: ok wrong-interface refused: exception: failed: grant \"console\": expects interface 0xa06e7a0d0d2e312e, but capability 0 is 0xdfa84506728bf29c" \
        "launcher-test: ok shared-kind refused: exception: failed: grant \"console\": a launcher mints only child-local kernel caps, not console" \
        "launcher-test: ok 40 of 40 launches sending 2 caps refused as expected; 12 of 12 launches exited with code 0" \
        "launcher-test child: pid [0-9]+ holds console launcher child" \
        "launcher-test child: ok allowed refused: exception: failed: pid [0-9]+ holds no launcher of init's" \
        "launcher-test child: ok launch refused: exception: failed: pid [0-9]+ holds no launcher of init's" \
        "launcher-test: the child it gave its launcher to exited with code 0" \
        "COUNT14:proc: pid [0-9]+ \((hello|again|launcher-child)\) spawned by pid 1" \
        "NOT:\(refused\) spawned|\(grandchild\) spawned|spawner: refused a spawn" \
        "launcher-test: done" "init: service launcher-test exited with code 0" "init: done" \
        "proc: all processes exited; frames held by processes 0;" "test: all processes exited" \
        "NOT:FAIL|not started|could not start|not answered|could not be received|EXCEPTION|PANIC"
fi
# The credential store (manifests/authd.capnp): init writes the manifest's
# accounts into a MemoryObject for authd and spawns it with a frame quota
# Argon2id's 19 MiB fits in; authd times one check; authd-test sees the
# right password verify, wrong ones denied with each answer held longer
# (500 ms, 1 s, 2 s after the previous), another terminal answered while
# one is held, a success clearing the count, every other refusal denied
# alike and setup refused; then it stops authd. Nothing is left held.
# authd's frameLimit (8192) needs the kernel's 16384-page frame-limit
# maximum; a kernel whose maximum is the 4096-page default refuses the spawn.
if selected authd; then
    run_case authd tcg bios 2 "test=boot" $ST_SUCCESS --manifest authd --timeout 240 -- \
        "init: started service authd \(pid [0-9]+\)" \
        "authd: 2 accounts; operator operator: password set" \
        "authd: second Argon2id check \(m=19456 KiB, t=2, p=1\) took [0-9]+ ms, [0-9]+ TSC cycles" \
        "authd-test: status: operator operator, password set true, volatile false" \
        "authd-test: ok right password: success as \"operator\"" \
        "authd-test: ok wrong password 1: denied" \
        "authd-test: ok wrong password 2: denied, held [0-9]+ ms, answered [0-9]+ ms after the previous answer \(owed 500 ms\)" \
        "authd-test: ok wrong password 3: denied, held [0-9]+ ms, answered [0-9]+ ms after the previous answer \(owed 1000 ms\)" \
        "authd-test: ok wrong password 4: denied, held [0-9]+ ms, answered [0-9]+ ms after the previous answer \(owed 2000 ms\)" \
        "authd-test: ok a held answer blocks no one: tty-b answered first" \
        "authd-test: ok a success waits for what the failures owed, and clears the failure count" \
        "authd-test: ok unknown account: denied" \
        "authd-test: ok non-UTF-8 account name: denied" \
        "authd-test: ok 2000-byte password: denied" \
        "authd-test: ok setup with a password set refused" \
        "authd: stopped" "authd-test: done" \
        "init: service authd exited with code 0" "init: service authd-test exited with code 0" "init: done" \
        "proc: all processes exited; frames held by processes 0;" "test: all processes exited" \
        "NOT:FAIL|not started|could not start|could not be sent|EXCEPTION|PANIC"
fi
# Nothing leaks over time (manifests/leak.capnp): leak-test, as init,
# spawns and reaps 10,000 children and creates and releases 100,000
# capabilities; then spawns and inserts still work, up to its cap-slot
# quota of 1000 from the manifest, and once every process has exited the
# free frames equal those before the first process. At least 9,900 of the
# 10,002 thread stacks sit on reused ranges, and fewer than 100 ranges were
# ever carved out of the stack window. Each run takes minutes under TCG
# (most of it QEMU translating each new child's code afresh).
leak_case() {
    local name=$1 smp=$2
    selected "$name" || return 0
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest leak --timeout "${LEAK_TIMEOUT:-600}" -- \
        "leak-test: spawned and reaped 10000 children, 0 failed" \
        "leak-test: created and released 100000 capabilities, 0 failed; " \
        "leak-test: a spawn after the loops works" \
        "leak-test: table filled to 1000 capabilities \(3 from the CapSet\), then QUOTA" \
        "leak-test: inserts work again after releasing them" "leak-test: done" \
        "COUNT10001:proc: pid [0-9]+ \(leak-child\) exited with code 7;" \
        "proc: pid 1 \(leak-test\) exited with code 0" \
        "proc: all processes exited; frames held by processes 0; free frames ([0-9]+) \(before the first process \1\)" \
        "kstack: [0-9]+ kernel stacks mapped, (99[0-9]{2}|1[0-9]{4}) of them on reused ranges; [0-9]{1,2} ranges made" \
        "test: all processes exited" "NOT:FAIL|LEAKED|EXCEPTION|PANIC|killed"
}
leak_case tcg-leak-smp1 1
leak_case tcg-leak-smp4 4
# Self-abuse (manifests/abuse.capnp): a process releases and moves the owner
# side of its own endpoints with its own CALLs and RECVs pending on them
# (each in one cap_enter), and more abuse of its own caps; a victim is
# killed with 8 long sleeps and 16 queued calls waiting, which the kernel
# cancels (and counts), giving the owner its quota back and leaving no
# timer behind.
abuse_case() {
    local name=$1 smp=$2
    selected "$name" || return 0
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest abuse -- \
        "init: started service keeper \(pid [0-9]+\)" "init: started service self-abuse \(pid [0-9]+\)" \
        "init: started service victim \(pid [0-9]+\)" \
        "self-abuse victim: 8 sleeps of an hour and 16 calls on the unserved sink are waiting" \
        "self-abuse victim: faulting with 24 operations waiting" \
        'proc: pid [0-9]+ \(victim\) killed: page fault \(vector 14\)' \
        'proc: pid [0-9]+ \(victim\) had 24 operations waiting; cancelled' \
        'COUNT1:operations waiting; cancelled' \
        "self-abuse: 2 the sink full of the victim's calls: one more QUOTA; the victim gone \(its notice call CANCELLED\); then 16 calls of its own on the sink: 16 queued, 0 refused \(QUOTA\), 16 answered in order" \
        "self-abuse: 1a released its endpoint owner in one cap_enter \(true\) behind its own RECV#1, CALL and RECV#2: RECV#1 ok, CALL CANCELLED, RECV#2 CANCELLED, RELEASE ok; CQ order .*; then a CALL on its facet: CANCELLED, a RECV on the released id: BAD_CAP" \
        "self-abuse keeper: holds the endpoint owner moved to it by pid [0-9]+" \
        "self-abuse keeper: served a call from pid [0-9]+ on the moved endpoint" \
        'self-abuse: 1b moved its endpoint owner to the keeper \(ok\) behind its own calls \(RECV#1 ok, CALL pending, RECV#2 pending\): the unanswered CALL CANCELLED, RECV#2 CANCELLED; its old id: RETURN BAD_CAP, RECV BAD_CAP; its next CALL answered "kept:after the move"' \
        "self-abuse: 1c released its endpoint owner in one cap_enter behind two of its own queued CALLs: CALL CANCELLED, CALL with a moved timer CANCELLED, RELEASE ok; the timer is still its own: true; a later CALL: CANCELLED" \
        "self-abuse: 1d released a facet twice in one cap_enter behind its own queued CALL: RELEASE ok, RELEASE BAD_CAP; the CALL was answered; released the owner twice in one cap_enter behind its own RECV: RECV CANCELLED, RELEASE ok, RELEASE BAD_CAP" \
        "self-abuse: 1d moved its endpoint owner to itself through its own endpoint: delivered with a new owner id \(true\); the old id: RECV BAD_CAP; the RECV made before the move took the next CALL: ok; RETURNs through the new id ok, ok; the CALLs got ok, ok; RELEASE of the new id ok, of the facet ok" \
        "self-abuse: 1d RETURN of its call id on another endpoint it owns: BAD_CALL_ID; the same call id RETURNed twice in one cap_enter: RETURN ok, RETURN BAD_CALL_ID; the caller got the first answer" \
        "self-abuse: 1d a CALL whose parameters are its own ring \([0-9]+ bytes\), received by its own RECV: RECV ok with [0-9]+ bytes of its ring \(magic intact: true\), RETURN ok, CALL ok; a CALL whose result buffer is its parameter buffer: refused by the runtime \(UnsafeBuffer\)" \
        "self-abuse: 1d a queued CALL whose parameters it unmapped before receiving it: BAD_ADDRESS; the same RECV took its next CALL, which completed ok" \
        "self-abuse: 1d a CALL across a page boundary delivered into its own parameters shifted by \+64: unmap while lent refused, RECV ok, parameters exact: true, RETURN ok, CALL ok; -64: unmap while lent refused, RECV ok, parameters exact: true, RETURN ok, CALL ok" \
        "self-abuse: 1e calls on another process: parameters unmapped BAD_ADDRESS; result buffer read-only BAD_ADDRESS" \
        "self-abuse: the keeper quit \(ok\); a CALL on the moved endpoint's facet: CANCELLED" \
        "self-abuse: done" "init: service keeper exited with code 0" "init: service self-abuse exited with code 0" \
        "init: service victim exited with code 142" "init: done" \
        "proc: all processes exited; frames held by processes 0;" "timers: 0 pending;" "test: all processes exited" \
        "NOT:FAIL|not started|could not start|EXCEPTION|PANIC"
}
abuse_case tcg-abuse-smp1 1
abuse_case tcg-abuse-smp4 4
# 1,000 sleeps across processes (manifests/sleepers.capnp): 63 children keep
# 1,008 sleeps pending at once, interleaved by deadline across processes;
# each child's complete in deadline order and none early, and the kernel's
# own check agrees.
sleepers_case() {
    local name=$1 smp=$2
    selected "$name" || return 0
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest sleepers -- \
        "sleepers: spawned 63 children in [0-9]+ ms; every one joined" \
        "COUNT63:sleepers: child [0-9]+ \(pid [0-9]+\): 16 sleeps, in deadline order: yes, early 0, late 0" \
        "sleepers: 63 children reported 1008 of 1008 sleeps completed; all in deadline order: yes, early 0, late 0" \
        "proc: all processes exited; frames held by processes 0;" \
        "timers: 0 pending; 1008 fired, at most (1[0-9]{3}|[2-9][0-9]{3}) pending at once, in deadline order: yes" \
        "test: all processes exited" \
        "NOT:FAIL|EXCEPTION|PANIC|in deadline order: no"
}
sleepers_case tcg-sleepers-smp1 1
sleepers_case tcg-sleepers-smp4 4
# ProcessHandle.kill (manifests/kill.capnp): kill-test, as init, kills a
# child spinning in user mode with no system calls (pinned to CPU 3 with 4
# CPUs: the kill interrupts that CPU), one blocked in an hour's sleep (then
# kills it again, and once more after it is gone), one blocked in a RECV
# with the parent's call delivered to it (the call completes CANCELLED)
# and a call of its own queued on the parent's endpoint (cancelled at its
# exit), one that had exited (ok, its code unchanged), one that kills
# itself through its own handle, and one killed right after its spawn
# (with one CPU, before it first runs). Every killed child exits with 2^32, each
# kill is logged once, and nothing is left behind.
kill_case() {
    local name=$1 smp=$2 spinner where
    selected "$name" || return 0
    if [ "$smp" -gt 1 ]; then
        spinner="pinned to CPU 3 killed"
        where="running on cpu 3, interrupted"
    else
        spinner="on the parent's CPU killed"
        where="ready, stopped before it runs"
    fi
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest kill -- \
        "kill-test spinner: pid [0-9]+ spinning in user mode with no system calls" \
        "kill-test: \(a\) a child spinning in user mode $spinner: exit code 4294967296 \(killed\); its call, answered after: CANCELLED" \
        "proc: pid [0-9]+ \(spinner\) killed by pid 1 \(its thread: $where\)" \
        "kill-test: \(b\) a child blocked in an hour's sleep killed: exit code 4294967296 \(killed\); its call, answered after: CANCELLED" \
        "proc: pid [0-9]+ \(sleeper\) killed by pid 1 \(its thread: blocked, woken\)" \
        "proc: pid [0-9]+ \(sleeper\) had 2 operations waiting; cancelled" \
        "kill-test: \(e\) the same child killed twice before it was gone: ok, ok; once more after: ok; waited again: 4294967296 \(killed\)" \
        "COUNT1:\(sleeper\) killed by" \
        "kill-test: \(c\) a child blocked in a RECV with the parent's call in flight to it killed: exit code 4294967296 \(killed\); the parent's call: CANCELLED; its delivered call, answered after: CANCELLED" \
        "proc: pid [0-9]+ \(server\) killed by pid 1 \(its thread: blocked, woken\)" \
        "proc: pid [0-9]+ \(server\) had 3 operations waiting; cancelled" \
        "kill-test: \(d\) a child that had exited with code 7 killed: ok; waited again: 7" \
        "COUNT0:\(quick\) killed by" \
        "kill-test self: pid ([0-9]+) kills itself through its own handle \(pid \1\)" \
        "proc: pid ([0-9]+) \(selfish\) killed by pid \1 \(its thread: running here, the killer itself\)" \
        "kill-test: \(f\) a child that killed itself through its own handle: exit code 4294967296 \(killed\); the call that carried the handle: CANCELLED" \
        "kill-test: \(g\) a child killed right after its spawn: exit code 4294967296 \(killed\)" \
        "COUNT5:proc: pid [0-9]+ \([a-z]+\) exited with code 4294967296;" \
        "kill-test: done" "proc: pid 1 \(kill-test\) exited with code 0;" \
        "proc: all processes exited; frames held by processes 0;" "timers: 0 pending;" "test: all processes exited" \
        "NOT:FAIL|EXCEPTION|PANIC|LEAKED"
}
kill_case tcg-kill-smp1 1
kill_case tcg-kill-smp4 4
# Sessions (manifests/sessions-kernel.capnp, docs/sessions.md): session-test,
# as init, reads entropy (two reads differ; read(0) and read(1000) refused)
# and SystemInfo (it lists itself), creates session S, starts a child of
# its own binary in S and checks that the child's calls carry the caller
# reference SessionAuthority.reference names (another at the second
# endpoint, another for the parent's own session, none without the RECV
# flag), scopes a Timer and a client facet to S and gives the child the
# Timer, ends S: both processes' scoped caps fail with disconnected "session
# ended", S takes no more children, and the child's later calls arrive with
# live = false. Malformed requests are refused; nothing is left behind.
sessions_case() {
    local name=$1 smp=$2
    selected "$name" || return 0
    run_case "$name" tcg bios "$smp" "test=boot" $ST_SUCCESS --manifest sessions-kernel -- \
        "entropy: (rdseed|rdrand|tsc-jitter)" \
        "session-test: ok entropy source (rdseed|rdrand|tsc-jitter): two 32-byte reads differ" \
        "session-test: ok read\(0\) refused: failed: read of 0 bytes: 1 to 256 allowed" \
        "session-test: ok read\(1000\) refused: failed: read of 1000 bytes: 1 to 256 allowed" \
        "session-test: ok systemInfo: $smp CPUs, [0-9]+ of [0-9]+ frames free, uptime [0-9]+ ms, processes \[1\]; lists pid 1 \(session-test\) with [0-9]+ caps and [0-9]+ frames" \
        "session-test: motd \"capOS sessions test.\"" \
        "session-test: ok created session alice/operator, live" \
        "session-test: ok reference of S at ep [0-9a-f]{32} is stable, at ep2 [0-9a-f]{32} differs" \
        "session-test: ok a call from our own \(system\) session carries another reference" \
        "session-test: ok reference absent without RECV_FLAG_CALLER_SESSION" \
        "session-test: ok a call through a client facet scoped to S carries S's reference" \
        "session-test: ok scope-without-transfers refused: failed: transfer 0: expected a UserSession, but only 0 capabilities were sent" \
        "session-test: ok scope-of-a-timer-as-session refused: failed: transfer 0: expected a UserSession, got interface 0xa06e7a0d0d2e312e" \
        "session-test: ok scope-without-target refused: failed: transfer 1: expected the capability to scope" \
        "session-test: ok reference-of-a-timer refused: failed: transfer 1: expected an Endpoint" \
        "session-test: ok end-of-a-timer refused: failed: transfer 0: expected a UserSession" \
        "session-test: ok create-with-1KiB-labels refused: failed: principal is 1024 bytes; at most 64 allowed" \
        "session-test: ok spawn-into-a-timer refused: failed: session: transfer 0: expected a UserSession" \
        'proc: pid 2 \(child\) spawned by pid 1' \
        "session-test: ok the child's call at ep carries S's reference [0-9a-f]{32} \(SessionAuthority.reference agrees\), live" \
        "session-test: ok the child's call at ep2 carries S's other reference" \
        "session-test: ok scoped Timer works while S is live" \
        "session-test child: ok scoped Timer works while S is live" \
        'session: ended \(principal "alice", profile "operator"\) by pid 1' "COUNT1:session: ended" \
        "session-test: ok scoped-timer-after-end refused: disconnected: session ended" \
        "session-test: ok scoped-client-facet-after-end refused: disconnected: session ended" \
        "session-test child: ok scoped Timer after end: disconnected: session ended" \
        "session-test: ok S reports live = false after end" \
        "session-test: ok spawn-into-ended-session refused: disconnected: session ended" \
        "session-test: ok after S ended the child's calls arrive with live = false \(no reference asked\)" \
        "session-test: ok after S ended the child's reference is unchanged, live = false" \
        "session-test: ok the child exited with 0" \
        "session-test: done" "proc: pid 1 \(session-test\) exited with code 0;" \
        "proc: all processes exited; frames held by processes 0;" "timers: 0 pending;" "test: all processes exited" \
        "NOT:FAIL|EXCEPTION|PANIC|LEAKED|killed"
}
sessions_case tcg-sessions-smp1 1
sessions_case tcg-sessions-smp4 4
if selected no-long-mode; then
    run_case no-long-mode tcg bios 1 "test=boot" stopped --cpu qemu32 \
        --stop-on "does not support 64-bit long mode" -- \
        "capOS: boot halted: this CPU does not support 64-bit long mode" "NOT:capOS [0-9.]+ booting"
fi

for pid in "${kvm_pids[@]}"; do wait "$pid"; done
for f in "$out"/kvm-*.result; do
    [ -f "$f" ] || continue
    cat "$f"
    grep -q '^PASS' "$f" && pass=$((pass + 1)) || fail=$((fail + 1))
    rm -f "$f"
done

echo "smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
