//! The kernel's per-CPU blocks and the table of CPUs.
//!
//! Each CPU's [`Cpu`] starts with the architecture block
//! (`capos_arch::percpu::PerCpu`), so the GS base points at both. A CPU only
//! touches its own local APIC, through [`with_lapic`] with interrupts off.

use alloc::boxed::Box;
use capos_arch::apic::Lapic;
use capos_arch::percpu::{self, PerCpu};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use x86_64::instructions::interrupts;

/// Most CPUs the kernel will bring up (the manifest's limit for CPU pins).
pub const MAX_CPUS: usize = capos_caps::manifest::MAX_CPUS as usize;

/// One CPU's kernel state.
#[repr(C)]
pub struct Cpu {
    /// Architecture block; must stay the first field.
    pub arch: PerCpu,
    /// Set once the CPU has finished its own initialisation.
    pub online: AtomicBool,
    lapic: UnsafeCell<Option<Lapic>>,
}

// SAFETY: `lapic` is only reached through `with_lapic` on the owning CPU
// with interrupts off; everything else is atomic or immutable after setup.
unsafe impl Sync for Cpu {}

static CPUS: [AtomicPtr<Cpu>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
static CPU_COUNT: AtomicU32 = AtomicU32::new(0);

/// Creates the block for CPU `index` and records it in the CPU table.
pub fn register(index: u32, apic_id: u32) -> &'static Cpu {
    let cpu: &'static mut Cpu = Box::leak(Box::new(Cpu {
        arch: PerCpu::new(index, apic_id),
        online: AtomicBool::new(false),
        lapic: UnsafeCell::new(None),
    }));
    CPUS[index as usize].store(cpu, Ordering::Release);
    CPU_COUNT.fetch_max(index + 1, Ordering::AcqRel);
    cpu
}

/// Makes `cpu` the calling CPU's block (GS base).
///
/// # Safety
/// Must run on the CPU `cpu` was registered for, once, after its GDT is loaded.
pub unsafe fn install(cpu: &'static Cpu) {
    // SAFETY: forwarded from the caller; `Cpu` is repr(C) with `arch` first,
    // so the pointer is also a valid `PerCpu` pointer.
    unsafe { percpu::install(cpu as *const Cpu as *mut PerCpu) };
}

/// The calling CPU's block, once installed.
pub fn current() -> Option<&'static Cpu> {
    // SAFETY: the GS base only ever holds a leaked, registered `Cpu`.
    percpu::current_ptr().map(|p| unsafe { &*(p as *const Cpu) })
}

/// The block of CPU `index`, if it was registered.
pub fn get(index: u32) -> Option<&'static Cpu> {
    let p = CPUS.get(index as usize)?.load(Ordering::Acquire);
    // SAFETY: non-null entries are leaked `Cpu`s that live for ever.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Number of registered CPU slots (online or not).
pub fn registered() -> u32 {
    CPU_COUNT.load(Ordering::Acquire)
}

/// Stores this CPU's local APIC driver.
pub fn set_lapic(lapic: Lapic) {
    interrupts::without_interrupts(|| {
        let cpu = current().expect("per-CPU block installed before the APIC");
        // SAFETY: only the owning CPU touches its slot, with interrupts off.
        unsafe { *cpu.lapic.get() = Some(lapic) };
    });
}

/// Runs `f` on this CPU's local APIC with interrupts off; `None` if this
/// CPU has none yet.
pub fn with_lapic<R>(f: impl FnOnce(&mut Lapic) -> R) -> Option<R> {
    interrupts::without_interrupts(|| {
        let cpu = current()?;
        // SAFETY: as in `set_lapic`; interrupts are off so no handler on this
        // CPU can re-enter and alias the driver.
        unsafe { (*cpu.lapic.get()).as_mut().map(f) }
    })
}
