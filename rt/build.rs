//! Build script: relink every service when `link.ld` changes.
//!
//! Cargo does not track files passed to the linker through RUSTFLAGS.
//! Declaring the script here makes capos-rt rebuild when it changes, and
//! with it every service binary that depends on it.

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
