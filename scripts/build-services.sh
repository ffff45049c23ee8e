#!/usr/bin/env bash
# Builds every userspace service for x86_64-unknown-none and copies the
# binaries, debug info stripped, to build/services/<bin>.
#
# Services are static, non-PIE ELF files linked at 0x400000 by rt/link.ld
# with one PT_LOAD per permission (R X, R, R W). The Makefile calls this;
# it also runs on its own: scripts/build-services.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

target=x86_64-unknown-none
out_dir="$root/build/services"
# Each crate under services/ and the binaries it produces.
packages=(init hostile worker fault template bench timer-demo vm-demo heap-demo spawn-test echo-server echo-client shm-producer shm-consumer leak-test self-abuse sleepers terminal-test registry launcher-test shell hello kill-test sessiond session-probe authd session-test)
binaries=(init hostile worker fault-pf fault-gp fault-ud fault-de fault-nm template bench timer-demo vm-demo heap-demo spawn-test echo-server echo-client shm-producer shm-consumer leak-test self-abuse sleepers terminal-test registry launcher-test shell hello kill-test sessiond session-probe authd authd-test session-test)

pkg_args=()
for p in "${packages[@]}"; do
    pkg_args+=(-p "$p")
done

RUSTFLAGS="-C relocation-model=static -C link-arg=-T$root/rt/link.ld -C link-arg=--no-pie -C link-arg=-zmax-page-size=4096" \
CARGO_TARGET_DIR=target/services \
    cargo build --release --target "$target" "${pkg_args[@]}"

mkdir -p "$out_dir"
for b in "${binaries[@]}"; do
    objcopy --strip-debug "target/services/$target/release/$b" "$out_dir/$b"
done
echo "services: ${binaries[*]} -> ${out_dir#"$root"/}"
