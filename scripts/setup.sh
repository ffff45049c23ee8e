#!/usr/bin/env bash
# Installs what capOS needs to build, boot and test, on Debian or Ubuntu:
# Debian packages (QEMU, GRUB for BIOS and UEFI, xorriso, mtools, capnp,
# OVMF, binutils, Python with pexpect for the terminal smoke) and the pinned Rust toolchain with the bare-metal target.
# Fast when everything is present; prints what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(qemu-system-x86 grub-pc-bin grub-efi-amd64-bin grub-common xorriso mtools capnproto ovmf binutils python3 python3-pexpect)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v rustup >/dev/null 2>&1; then
    echo "setup: rustup is required (https://rustup.rs); it installs the toolchain pinned in rust-toolchain.toml" >&2
    exit 1
fi
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1 \
    || ! rustup target list --installed --toolchain "$toolchain" 2>/dev/null | grep -qx x86_64-unknown-none; then
    echo "setup: installing Rust $toolchain with x86_64-unknown-none"
    rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy --target x86_64-unknown-none
fi
