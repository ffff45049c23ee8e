//! The per-CPU block reached through the GS base.
//!
//! While a CPU runs kernel code, `IA32_GS_BASE` holds the address of its
//! [`PerCpu`] and `IA32_KERNEL_GS_BASE` holds the user value; `swapgs` on
//! every ring-3 to ring-0 transition (trap stubs, and later SYSCALL) keeps
//! that true. The first word of the block points at itself so the block can
//! be found with one `mov %gs:0`.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use x86_64::registers::model_specific::{GsBase, KernelGsBase};
use x86_64::VirtAddr;

/// Architecture part of a CPU's per-CPU block. The kernel embeds it as the
/// first field of its own per-CPU structure, so the GS base points at both.
#[repr(C)]
pub struct PerCpu {
    /// Address of this block (read with `mov %gs:0`).
    pub self_ptr: u64,
    /// Top of the stack the kernel switches to on SYSCALL entry.
    pub kernel_rsp: u64,
    /// Scratch slot for the user RSP during SYSCALL entry.
    pub user_rsp: u64,
    /// Dense CPU index, 0 for the bootstrap processor.
    pub cpu_index: u32,
    /// Local APIC id (read back from the APIC once it is enabled).
    pub apic_id: AtomicU32,
    /// Local APIC timer interrupts taken on this CPU.
    pub timer_ticks: AtomicU64,
}

const _: () = {
    assert!(core::mem::offset_of!(PerCpu, self_ptr) == 0);
    assert!(core::mem::offset_of!(PerCpu, kernel_rsp) == 8);
    assert!(core::mem::offset_of!(PerCpu, user_rsp) == 16);
    assert!(core::mem::offset_of!(PerCpu, cpu_index) == 24);
    assert!(core::mem::offset_of!(PerCpu, apic_id) == 28);
};

impl PerCpu {
    /// A block for CPU `cpu_index` with APIC id `apic_id`; `self_ptr` is set
    /// by [`install`].
    pub const fn new(cpu_index: u32, apic_id: u32) -> Self {
        Self {
            self_ptr: 0,
            kernel_rsp: 0,
            user_rsp: 0,
            cpu_index,
            apic_id: AtomicU32::new(apic_id),
            timer_ticks: AtomicU64::new(0),
        }
    }
}

/// Makes `block` this CPU's per-CPU block.
///
/// # Safety
/// `block` must stay valid and pinned for as long as this CPU runs, must not
/// be installed on any other CPU, and the GDT must already be loaded
/// (loading segment registers afterwards could clobber the GS base).
pub unsafe fn install(block: *mut PerCpu) {
    // SAFETY: the caller guarantees `block` is valid and exclusively ours.
    unsafe { (*block).self_ptr = block as u64 };
    GsBase::write(VirtAddr::new(block as u64));
    KernelGsBase::write(VirtAddr::new(0));
}

/// The address of this CPU's block, or `None` before [`install`] ran.
pub fn current_ptr() -> Option<*mut PerCpu> {
    let base = GsBase::read().as_u64();
    (base != 0).then_some(base as *mut PerCpu)
}

/// This CPU's index through `%gs` (one load; no MSR read).
///
/// Only valid once [`install`] has run on this CPU, which the kernel does
/// before enabling interrupts or running anything that calls this.
#[inline]
pub fn this_cpu_index() -> u32 {
    let index: u32;
    // SAFETY: GS base points at this CPU's `PerCpu` (installed at bring-up
    // and kept by swapgs on every ring transition); offset 24 is
    // `cpu_index` (checked by the offset assertions above).
    unsafe {
        core::arch::asm!("mov {0:e}, gs:[24]", out(reg) index, options(nostack, readonly, preserves_flags))
    };
    index
}

/// This CPU's index, or `None` before the block is installed.
pub fn cpu_index() -> Option<u32> {
    // SAFETY: a non-zero GS base was set by `install` to a live block.
    current_ptr().map(|p| unsafe { (*p).cpu_index })
}

/// Sets the stack SYSCALL switches to on this CPU (`PerCpu.kernel_rsp`).
pub fn set_kernel_rsp(top: u64) {
    if let Some(p) = current_ptr() {
        // SAFETY: the block belongs to this CPU; SYSCALL entry reads the
        // field only on this CPU, never concurrently with this store.
        unsafe { core::ptr::write_volatile(&raw mut (*p).kernel_rsp, top) };
    }
}

/// Counts one timer tick on this CPU and returns the new count.
pub fn count_timer_tick() -> u64 {
    match current_ptr() {
        // SAFETY: as in `cpu_index`; the counter is atomic.
        Some(p) => unsafe { (*p).timer_ticks.fetch_add(1, Ordering::Relaxed) + 1 },
        None => 0,
    }
}
