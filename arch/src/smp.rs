//! Application-processor start-up: the real-mode trampoline
//! (`asm/ap_trampoline.S`) and the words the BSP publishes for each AP.
//!
//! Protocol, one AP at a time: the BSP copies the trampoline to a free page
//! below 1 MiB chosen at boot (the code runs at any such page), stores the
//! AP's CR3, stack top and CPU index in the `AP_BOOT_*` words, sends
//! INIT-SIPI-SIPI with that page's [`sipi_vector`], and waits (with a
//! timeout) for the AP to report in. The AP reads the words in `ap_entry64`
//! and calls the kernel's `ap_rust_entry(cpu_index)`.

use core::sync::atomic::{AtomicU64, Ordering};

core::arch::global_asm!(include_str!("asm/ap_trampoline.S"), options(att_syntax));

/// The startup-IPI vector that starts an AP at physical `page`: its page
/// number. `None` unless `page` is page-aligned, above page 0 and below
/// 1 MiB (a real-mode CS can name nothing else).
pub fn sipi_vector(page: u64) -> Option<u8> {
    (page.is_multiple_of(0x1000) && page != 0)
        .then(|| u8::try_from(page >> 12).ok())
        .flatten()
}

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

/// The trampoline's machine code (position-independent: it may be copied to
/// any page [`sipi_vector`] accepts). Shorter than a page.
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
