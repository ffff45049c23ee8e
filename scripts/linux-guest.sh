#!/usr/bin/env bash
# Prepares the Linux guest `make bench` measures beside capOS:
#
#   build/linux-guest/vmlinuz          Debian's cloud kernel (linux-image-cloud-amd64)
#   build/linux-guest/initramfs.cpio   /init = scripts/linux-baseline, static
#   build/linux-guest/version          the kernel package and version
#
# The kernel comes from Debian's archive with `apt-get download` (the
# metapackage names the versioned package that holds the vmlinuz) and is
# unpacked with `dpkg-deb -x`, never installed. The download is cached:
# delete build/linux-guest/ (or `make clean`) to fetch the current one.
# The initramfs is a newc cpio written here (no cpio tool needed) with
# /dev/console, so the kernel gives /init the serial console, and /init.
#
#   scripts/linux-guest.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${LINUX_GUEST_DIR:-$root/build/linux-guest}
mkdir -p "$out"

# The kernel image, once.
if [ ! -s "$out/vmlinuz" ]; then
    meta=linux-image-cloud-amd64
    pkg=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
    if [ -z "$pkg" ]; then
        # No package lists yet (a fresh machine): fetch them once.
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        echo "linux-guest: apt-get update (no package lists for $meta)"
        $sudo apt-get update -qq
        pkg=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
    fi
    [ -n "$pkg" ] || { echo "linux-guest: cannot resolve $meta to a kernel package" >&2; exit 1; }
    dl=$(mktemp -d)
    trap 'rm -rf "$dl"' EXIT
    echo "linux-guest: downloading $pkg (Debian's cloud kernel, unpacked, not installed)"
    # apt-get download writes to the current directory; as root it warns
    # that the _apt user cannot write there, which is harmless.
    (cd "$dl" && apt-get download -q "$pkg" 2>&1 | grep -v -e unsandboxed -e '^Get:' -e '^Fetched' >&2 || true)
    deb=$(ls "$dl"/*.deb 2>/dev/null | head -n1 || true)
    [ -n "$deb" ] || { echo "linux-guest: apt-get download $pkg produced no package" >&2; exit 1; }
    dpkg-deb -x "$deb" "$dl/x"
    image=$(ls "$dl"/x/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
    [ -n "$image" ] || { echo "linux-guest: $pkg holds no boot/vmlinuz-*" >&2; exit 1; }
    cp "$image" "$out/vmlinuz.tmp"
    echo "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)" > "$out/version"
    mv "$out/vmlinuz.tmp" "$out/vmlinuz"
fi

# /init: the Linux baseline, linked statically (glibc's static libc; no
# extra Rust target needed), in its own target dir so the host build of
# the same crate is not rebuilt with these flags.
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$root/target/linux-guest" \
    cargo build -q --release -p capos-linux-baseline --target x86_64-unknown-linux-gnu
init_elf="$root/target/linux-guest/x86_64-unknown-linux-gnu/release/capos-linux-baseline"
objcopy --strip-all "$init_elf" "$out/init"

python3 - "$out/init" "$out/initramfs.cpio" <<'PY'
# A newc ("070701") cpio: /dev, /dev/console (char 5:1), /init, trailer.
import os, stat, sys
init_path, out_path = sys.argv[1:3]
init = open(init_path, "rb").read()
ino = [100]

def entry(name, mode, data=b"", rdev=(0, 0)):
    ino[0] += 1
    nb = name.encode() + b"\0"
    fields = [ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
    rec = hdr + nb
    rec += b"\0" * (-len(rec) % 4)
    rec += data + b"\0" * (-len(data) % 4)
    return rec

blob = entry("dev", stat.S_IFDIR | 0o755)
blob += entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
blob += entry("init", stat.S_IFREG | 0o755, init)
blob += entry("TRAILER!!!", 0)
blob += b"\0" * (-len(blob) % 512)
with open(out_path + ".tmp", "wb") as f:
    f.write(blob)
os.replace(out_path + ".tmp", out_path)
PY
echo "linux-guest: $(cat "$out/version"), initramfs ${out#"$root"/}/initramfs.cpio ($(du -h "$out/initramfs.cpio" | cut -f1))"
