//! Application-processor start-up: the real-mode trampoline
//! (`asm/ap_trampoline.S`) and the words the BSP publishes for each AP.
//!
//! Protocol, one AP at a time: the BSP copies the trampoline to
//! [`TRAMPOLINE_PHYS`], stores the AP's CR3, stack top and CPU index in the
//! `AP_BOOT_*` words, sends INIT-SIPI-SIPI, and waits (with a timeout) for
//! the AP to report in. The AP reads the words in `ap_entry64` and calls the
//! kernel's `ap_rust_entry(cpu_index)`.

use core::sync::atomic::{AtomicU64, Ordering};

core::arch::global_asm!(include_str!("asm/ap_trampoline.S"), options(att_syntax));

/// Physical address the trampoline is copied to; must match the assembly.
pub const TRAMPOLINE_PHYS: u64 = 0x8000;
/// SIPI vector: the page number of [`TRAMPOLINE_PHYS`].
pub const TRAMPOLINE_SIPI_PAGE: u8 = (TRAMPOLINE_PHYS >> 12) as u8;

/// CR3 the AP loads in `ap_entry64` (the kernel's page tables).
#[unsafe(no_mangle)]
pub static AP_BOOT_CR3: AtomicU64 = AtomicU64::new(0);
/// Initial stack top of the AP being started.
#[unsafe(no_mangle)]
pub static AP_BOOT_STACK_TOP: AtomicU64 = AtomicU64::new(0);
/// Dense CPU index of the AP being started.
#[unsafe(no_mangle)]
pub static AP_BOOT_CPU_INDEX: AtomicU64 = AtomicU64::new(0);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

/// The trampoline's machine code, to be copied to [`TRAMPOLINE_PHYS`].
pub fn trampoline_code() -> &'static [u8] {
    // SAFETY: the two symbols delimit one contiguous read-only section
    // emitted by the assembly above, which lives as long as the kernel.
    unsafe {
        let start = &raw const ap_trampoline_start;
        let end = &raw const ap_trampoline_end;
        core::slice::from_raw_parts(start, end as usize - start as usize)
    }
}

/// Publishes the start-up words for the next AP. `Release` orders them
/// before the IPIs that start it (the ICR write is itself serialising).
pub fn publish_ap_boot(cr3: u64, stack_top: u64, cpu_index: u32) {
    AP_BOOT_CR3.store(cr3, Ordering::Release);
    AP_BOOT_STACK_TOP.store(stack_top, Ordering::Release);
    AP_BOOT_CPU_INDEX.store(u64::from(cpu_index), Ordering::Release);
}
