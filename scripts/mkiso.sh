#!/usr/bin/env bash
# Builds a hybrid (BIOS + UEFI) capOS ISO with grub-mkrescue.
#
#   scripts/mkiso.sh OUT.iso KERNEL [--cmdline "WORDS"] [--module FILE NAME]...
#
# Without --cmdline the ISO carries grub/grub.cfg (the interactive menu).
# With --cmdline it carries a one-entry menu that boots at once with those
# kernel words (used by the smoke tests).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 OUT.iso KERNEL [--cmdline WORDS] [--module FILE NAME]..." >&2; exit 2; }
out=$1 kernel=$2; shift 2
cmdline="" use_cmdline=0
modules=()
while [ $# -gt 0 ]; do
    case $1 in
        --cmdline) cmdline=$2; use_cmdline=1; shift 2 ;;
        --module) modules+=("$2" "$3"); shift 3 ;;
        *) echo "mkiso: unknown argument $1" >&2; exit 2 ;;
    esac
done

# GRUB reads every module it loads through firmware disk calls, which are
# slow under nested virtualisation (real-mode BIOS calls). Preload the few
# modules the menu needs into the core image and ship nothing else.
grub_mods="normal multiboot2 serial terminal iso9660 part_msdos part_gpt configfile echo test"
grub_opts=(--install-modules="$grub_mods" --modules="$grub_mods" --fonts= --locales= --themes=)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/boot/grub" "$stage/boot/modules"
cp "$kernel" "$stage/boot/capos-kernel"
module_lines=""
for ((i = 0; i < ${#modules[@]}; i += 2)); do
    file=${modules[i]} name=${modules[i+1]}
    cp "$file" "$stage/boot/modules/$name"
    module_lines+="    module2 /boot/modules/$name $name"$'\n'
done

if [ $use_cmdline -eq 1 ]; then
    cat > "$stage/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input serial
terminal_output serial
set timeout=0
menuentry "capOS test" {
    multiboot2 /boot/capos-kernel $cmdline
${module_lines}    boot
}
CFG
else
    # Insert the module lines before every "boot" of the menu.
    awk -v mods="$module_lines" '/^[[:space:]]*boot[[:space:]]*$/ { printf "%s", mods } { print }' \
        "$here/grub/grub.cfg" > "$stage/boot/grub/grub.cfg"
fi

grub-mkrescue "${grub_opts[@]}" -o "$out" "$stage" >/dev/null 2>"$stage.log" || { cat "$stage.log" >&2; rm -f "$stage.log"; exit 1; }
rm -f "$stage.log"
