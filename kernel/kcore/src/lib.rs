//! Host-testable kernel core logic: frame allocator, ACPI/MADT parsing, boot
//! checks, TLB shoot-down bookkeeping, the timer heap and its firing-order
//! check, the lock-order validator, the terminal's key decoder and line
//! discipline, the entropy pool's mixing and the caller references of
//! sessions.
//!
//! Everything here is pure logic over plain data: it builds for the host (so
//! `cargo test` exercises it directly) and for `x86_64-unknown-none` (where the
//! kernel links it). The kernel supplies the machine-facing pieces, such as
//! physical memory access for the ACPI parser through [`acpi::PhysMemory`].
//!
//! Allocation: [`frame`], [`lockdep`] and [`shootdown`] never allocate; [`acpi`], [`bootcheck`],
//! [`cmdline`] and [`memmap`] use `alloc` and are meant to run once the kernel
//! heap exists.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod acpi;
pub mod bootcheck;
pub mod clock;
pub mod cmdline;
pub mod elf;
pub mod entropy;
pub mod fate;
pub mod firing;
pub mod frame;
pub mod lockdep;
pub mod memmap;
pub mod range;
pub mod runstate;
pub mod session;
pub mod shootdown;
pub mod term;
pub mod timerheap;
pub mod window;
