//! x86_64 specifics for capOS: boot and AP trampoline assembly, descriptor
//! tables, trap entry stubs, local APIC, PIT, serial port and per-CPU data.
//!
//! Everything here is a thin, documented shell around the machine. Policy
//! (what to do on a trap, which CPU runs what) lives in the kernel crate.
#![no_std]

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod fault;
pub mod gdt;
pub mod ioapic;
pub mod percpu;
pub mod pic;
pub mod pit;
pub mod qemu;
pub mod rng;
pub mod serial;
pub mod smp;
pub mod syscall;
pub mod trap;
