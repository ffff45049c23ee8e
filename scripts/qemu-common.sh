# Shared QEMU settings for capOS scripts (sourced, not run).

# True if KVM can run a guest here. Probing with a real QEMU start catches
# hosts where /dev/kvm exists but a CPU model cannot be used.
kvm_usable() {
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
    # Create the machine paused, then quit through QMP: exit 0 iff the vCPUs
    # could be created.
    printf '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n' |
        timeout 30 qemu-system-x86_64 -machine q35,accel=kvm -cpu host,-arch-capabilities \
            -display none -nodefaults -S -qmp stdio -m 64M >/dev/null 2>&1
}

# qemu_args ACCEL FIRMWARE SMP: machine, CPU, memory and devices.
# KVM uses the host CPU (minus arch-capabilities, which QEMU 7.2 cannot set
# on some hosts), so x2APIC, SMEP, SMAP and UMIP are exercised; TCG uses
# QEMU's own model (xAPIC only in QEMU 7.2).
qemu_args() {
    local accel=$1 firmware=$2 smp=$3
    local args="-machine q35 -m 512M -smp $smp -display none -no-reboot"
    args+=" -device isa-debug-exit,iobase=0xf4,iosize=0x04"
    if [ "$accel" = kvm ]; then
        args+=" -accel kvm -cpu host,-arch-capabilities"
    else
        args+=" -accel tcg -cpu max"
    fi
    if [ "$firmware" = uefi ]; then
        args+=" -bios $(ovmf_path)"
    fi
    echo "$args"
}

ovmf_path() {
    for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF.fd /usr/share/qemu/OVMF.fd; do
        [ -f "$f" ] && { echo "$f"; return; }
    done
    echo "/usr/share/ovmf/OVMF.fd"
}

# choose_accel: sets ACCEL (kvm or tcg) and ACCEL_WHY (one line saying
# why) for a capOS boot that runs userspace. KVM is chosen only where it is
# hardware-assisted: a PVM /dev/kvm (this project's build machines) boots
# the kernel but cannot run ring-3 SYSCALL, and a host CPU without VMX/SVM
# has no hardware assistance to offer.
choose_accel() {
    if [ ! -e /dev/kvm ]; then
        ACCEL=tcg ACCEL_WHY="no /dev/kvm on this host"
    elif kvm_is_pvm; then
        ACCEL=tcg ACCEL_WHY="this host's /dev/kvm is PVM (kvm_pvm), which cannot run capOS userspace (ring-3 SYSCALL is not virtualised like hardware)"
    elif ! grep -qwE 'vmx|svm' /proc/cpuinfo 2>/dev/null; then
        ACCEL=tcg ACCEL_WHY="the host CPU shows no VMX/SVM, so /dev/kvm is not hardware-assisted and cannot be trusted to run capOS userspace"
    elif ! kvm_usable; then
        ACCEL=tcg ACCEL_WHY="/dev/kvm is not usable here (no access, or QEMU cannot create a host CPU)"
    else
        ACCEL=kvm ACCEL_WHY="hardware-assisted KVM"
    fi
}

# pick_accel: prints the accelerator choose_accel picks.
pick_accel() {
    choose_accel
    echo "$ACCEL"
}

# True if the host's KVM is PVM (pagetable-based virtualisation): it boots
# the kernel, but does not implement ring-3 SYSCALL like hardware (CS/SS are
# not switched), so userspace cannot run under it.
kvm_is_pvm() {
    [ -d /sys/module/kvm_pvm ]
}
