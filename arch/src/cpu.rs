//! CPU feature discovery (CPUID through `raw-cpuid`), control-register
//! protections, the time-stamp counter and halting.

use raw_cpuid::CpuId;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

/// The CPU features the kernel cares about, read once per CPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// x2APIC mode is available (MSR-based local APIC).
    pub x2apic: bool,
    /// Supervisor-mode execution prevention.
    pub smep: bool,
    /// Supervisor-mode access prevention.
    pub smap: bool,
    /// User-mode instruction prevention (SGDT/SIDT/... fault in ring 3).
    pub umip: bool,
    /// Global pages.
    pub pge: bool,
    /// 1 GiB pages.
    pub page1g: bool,
    /// The TSC runs at a constant rate in all power states.
    pub invariant_tsc: bool,
    /// TSC frequency in Hz from CPUID leaf 0x15/0x16, when the CPU reports it.
    pub tsc_hz_cpuid: Option<u64>,
}

/// Reads the features of the CPU this runs on.
pub fn features() -> Features {
    let cpuid = CpuId::new();
    let mut f = Features::default();
    if let Some(info) = cpuid.get_feature_info() {
        f.x2apic = info.has_x2apic();
        f.pge = info.has_pge();
    }
    if let Some(ext) = cpuid.get_extended_feature_info() {
        f.smep = ext.has_smep();
        f.smap = ext.has_smap();
        f.umip = ext.has_umip();
    }
    if let Some(ext) = cpuid.get_extended_processor_and_feature_identifiers() {
        f.page1g = ext.has_1gib_pages();
    }
    if let Some(apm) = cpuid.get_advanced_power_mgmt_info() {
        f.invariant_tsc = apm.has_invariant_tsc();
    }
    if let Some(tsc) = cpuid.get_tsc_info() {
        f.tsc_hz_cpuid = tsc.tsc_frequency().filter(|&hz| hz != 0);
    }
    f
}

/// Which protections [`enable_protections`] switched on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Protections {
    /// CR4.SMEP set.
    pub smep: bool,
    /// CR4.SMAP set.
    pub smap: bool,
    /// CR4.UMIP set.
    pub umip: bool,
    /// CR4.PGE set.
    pub pge: bool,
}

/// Sets CR4.SMEP, SMAP, UMIP and PGE where the CPU advertises them, and
/// CR0.EM|MP so x87 instructions fault (#NM): nothing in capOS uses the FPU
/// yet (everything is built soft-float) and no FPU state is switched, so an
/// x87 register file shared between processes would be a covert channel.
///
/// # Safety
/// The kernel must not rely on touching user pages without STAC (SMAP) or on
/// executing user pages (SMEP), and its own mappings must not be marked user.
pub unsafe fn enable_protections(f: &Features) -> Protections {
    let mut flags = Cr4::read();
    let p = Protections {
        smep: f.smep,
        smap: f.smap,
        umip: f.umip,
        pge: f.pge,
    };
    flags.set(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION, p.smep);
    flags.set(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION, p.smap);
    flags.set(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION, p.umip);
    flags.set(Cr4Flags::PAGE_GLOBAL, p.pge);
    // SAFETY: the caller guarantees the kernel honours the new restrictions;
    // every bit set here was advertised by CPUID.
    unsafe { Cr4::write(flags) };
    // SAFETY: the kernel and every service are soft-float and execute no x87
    // or SSE instruction; making x87 fault only affects code that would.
    unsafe {
        Cr0::update(|cr0| {
            cr0.insert(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::MONITOR_COPROCESSOR);
            cr0.remove(Cr0Flags::TASK_SWITCHED);
        })
    };
    p
}

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects; CR4.TSD is never set, so it is
    // allowed at every privilege level the kernel runs at.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Stops this CPU for good: interrupts off, then HLT forever (an NMI or SMI
/// that wakes it only finds another HLT).
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
