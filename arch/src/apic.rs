//! The local APIC: x2APIC (MSR access) when CPUID advertises it, xAPIC
//! (memory-mapped registers) otherwise, both through the `x2apic` crate,
//! which picks the mode from CPUID.
//!
//! A [`Lapic`] talks to the local APIC of the CPU it runs on, so each CPU
//! builds its own and keeps it in its per-CPU data.

use crate::trap::vector;
use x2apic::lapic::{LocalApic, LocalApicBuilder, LocalApicMode};
pub use x2apic::lapic::{TimerDivide, TimerMode};

/// Physical base of the xAPIC register page as `IA32_APIC_BASE` reports it.
pub fn xapic_phys_base() -> u64 {
    // SAFETY: reading IA32_APIC_BASE is architecturally defined on every
    // CPU with an APIC, which long mode implies.
    unsafe { x2apic::lapic::xapic_base() }
}

/// Which register interface the local APIC is driven through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicMode {
    /// MSR-based x2APIC.
    X2Apic,
    /// Memory-mapped xAPIC.
    XApic,
}

impl ApicMode {
    /// Lower-case name for logs.
    pub fn name(self) -> &'static str {
        match self {
            ApicMode::X2Apic => "x2apic",
            ApicMode::XApic => "xapic",
        }
    }
}

/// This CPU's local APIC.
pub struct Lapic {
    inner: LocalApic,
    mode: ApicMode,
}

/// Divider used for the timer, both while calibrating and when ticking.
pub const TIMER_DIVIDE: TimerDivide = TimerDivide::Div16;

impl Lapic {
    /// Enables the local APIC of the calling CPU with the kernel's timer,
    /// error and spurious vectors, timer stopped (initial count 0).
    ///
    /// # Safety
    /// `xapic_virt_base` must map the xAPIC register page uncached when the
    /// CPU lacks x2APIC; the trap vectors must have IDT entries.
    pub unsafe fn enable(xapic_virt_base: u64) -> Result<Self, &'static str> {
        let mut inner = LocalApicBuilder::new()
            .timer_vector(vector::TIMER as usize)
            .error_vector(vector::APIC_ERROR as usize)
            .spurious_vector(vector::SPURIOUS as usize)
            .timer_mode(TimerMode::OneShot)
            .timer_divide(TIMER_DIVIDE)
            .timer_initial(0)
            .set_xapic_base(xapic_virt_base)
            .build()?;
        // SAFETY: the caller guarantees the register window and vectors.
        unsafe { inner.enable() };
        let mode = match inner_mode(&inner) {
            LocalApicMode::X2Apic => ApicMode::X2Apic,
            LocalApicMode::XApic { .. } => ApicMode::XApic,
        };
        Ok(Self { inner, mode })
    }

    /// The register interface in use.
    pub fn mode(&self) -> ApicMode {
        self.mode
    }

    /// This CPU's local APIC id.
    pub fn id(&self) -> u32 {
        // SAFETY: reading the ID register has no side effects.
        let raw = unsafe { self.inner.id() };
        match self.mode {
            ApicMode::X2Apic => raw,
            // The xAPIC ID register keeps the id in bits 31:24.
            ApicMode::XApic => raw >> 24,
        }
    }

    /// Signals end of interrupt.
    pub fn eoi(&mut self) {
        // SAFETY: writing EOI only retires the in-service interrupt.
        unsafe { self.inner.end_of_interrupt() };
    }

    /// Starts a one-shot count down from `u32::MAX` (for calibration).
    pub fn start_calibration_count(&mut self) {
        // SAFETY: timer registers only affect this CPU's timer interrupt,
        // which is masked-in only once the IDT has the timer vector.
        unsafe {
            self.inner.disable_timer();
            self.inner.set_timer_mode(TimerMode::OneShot);
            self.inner.set_timer_divide(TIMER_DIVIDE);
            self.inner.set_timer_initial(u32::MAX);
        }
    }

    /// The timer's current count.
    pub fn timer_current(&self) -> u32 {
        // SAFETY: reading the current-count register has no side effects.
        unsafe { self.inner.timer_current() }
    }

    /// Starts periodic interrupts on the timer vector every `initial` timer
    /// clocks (bus clock / 16).
    pub fn start_periodic(&mut self, initial: u32) {
        // SAFETY: as in `start_calibration_count`.
        unsafe {
            self.inner.set_timer_mode(TimerMode::Periodic);
            self.inner.set_timer_divide(TIMER_DIVIDE);
            self.inner.set_timer_initial(initial);
            self.inner.enable_timer();
        }
    }

    /// Stops the timer.
    pub fn stop_timer(&mut self) {
        // SAFETY: masking the timer has no other effect.
        unsafe { self.inner.disable_timer() };
    }

    /// Sends INIT to the CPU with APIC id `dest`.
    ///
    /// # Safety
    /// Resets the target CPU: it must not be running anything.
    pub unsafe fn send_init(&mut self, dest: u32) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.send_init_ipi(self.dest(dest)) };
    }

    /// Sends a startup IPI: the target starts in real mode at `page << 12`.
    ///
    /// # Safety
    /// The target must be waiting for SIPI after INIT, and page `page` must
    /// hold the trampoline.
    pub unsafe fn send_startup(&mut self, page: u8, dest: u32) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.send_sipi(page, self.dest(dest)) };
    }

    /// Sends a fixed interrupt on `vector` to APIC id `dest`. Every store
    /// this CPU made before the call is visible to the target before the
    /// interrupt arrives (its handler reads what the sender posted).
    pub fn send_ipi(&mut self, vector: u8, dest: u32) {
        // A WRMSR to the x2APIC ICR is not serializing and may pass earlier
        // stores; MFENCE drains them and LFENCE keeps the WRMSR behind it.
        // (xAPIC ICR writes are uncached stores, already ordered; the fence
        // costs little there.)
        // SAFETY: fences touch no memory and no register.
        unsafe { core::arch::asm!("mfence", "lfence", options(nostack, preserves_flags)) };
        // SAFETY: a fixed IPI on a vector the kernel handles has no effect
        // beyond running that handler on the target.
        unsafe { self.inner.send_ipi(vector, self.dest(dest)) };
    }

    /// The crate expects the destination in the ICR's layout: x2APIC takes
    /// the 32-bit id; xAPIC takes the 8-bit id in bits 31:24 of the high word.
    fn dest(&self, apic_id: u32) -> u32 {
        match self.mode {
            ApicMode::X2Apic => apic_id,
            ApicMode::XApic => apic_id << 24,
        }
    }
}

fn inner_mode(apic: &LocalApic) -> LocalApicMode {
    // The crate does not expose the chosen mode; it chose x2APIC iff CPUID
    // advertises it, so ask CPUID the same question.
    let _ = apic;
    if crate::cpu::features().x2apic {
        LocalApicMode::X2Apic
    } else {
        LocalApicMode::XApic { xapic_base: 0 }
    }
}
