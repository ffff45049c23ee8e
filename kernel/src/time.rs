//! Clocks: the TSC as the monotonic nanosecond clock, and the local APIC
//! timer's rate, both calibrated against the PIT at boot.
//!
//! The TSC counts from CPU reset, so `tsc_to_ns(rdtsc())` is time since the
//! machine (or QEMU) started, which the kernel reports as its boot time.

use capos_arch::{cpu, pit};
use capos_kcore::clock::{self, Scale};
use spin::Once;

/// Rates measured at boot.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// Local APIC timer clocks (after the /16 divider) per second.
    pub apic_timer_hz: u64,
    /// What the rates were measured against.
    pub source: &'static str,
}

static TSC: Once<Scale> = Once::new();
static BOOT_TSC: Once<u64> = Once::new();

/// PIT interval used for calibration.
const CALIBRATION_NS: u64 = 20_000_000;
/// Bound on PIT status polls (each is an I/O port read, ~1 us or more).
const PIT_MAX_POLLS: u64 = 50_000_000;

/// Why calibration failed.
#[derive(Debug)]
pub enum CalibrationError {
    /// The PIT never signalled the end of the interval.
    PitTimeout,
    /// A counter did not advance.
    NoProgress,
}

/// Measures the TSC and this CPU's APIC timer against the PIT, with
/// interrupts off. `apic_start` starts the APIC count and `apic_read`
/// reads it.
pub fn calibrate(
    mut apic_start: impl FnMut(),
    apic_read: impl Fn() -> u32,
) -> Result<Calibration, CalibrationError> {
    let reload = clock::pit_reload_for_ns(CALIBRATION_NS).ok_or(CalibrationError::NoProgress)?;
    let ref_ns = clock::pit_ns_for_reload(reload);
    let mut samples = [(0u64, 0u32); 2];
    let mut n = 0;
    apic_start();
    pit::wait_clocks(reload, PIT_MAX_POLLS, || {
        if n < 2 {
            samples[n] = (cpu::rdtsc(), apic_read());
            n += 1;
        }
    })
    .map_err(|_| CalibrationError::PitTimeout)?;
    let tsc_ticks = samples[1].0.wrapping_sub(samples[0].0);
    let apic_ticks = u64::from(samples[0].1.wrapping_sub(samples[1].1));
    let tsc_hz = clock::hz_from_sample(tsc_ticks, ref_ns).ok_or(CalibrationError::NoProgress)?;
    let apic_timer_hz =
        clock::hz_from_sample(apic_ticks, ref_ns).ok_or(CalibrationError::NoProgress)?;
    Ok(Calibration {
        tsc_hz,
        apic_timer_hz,
        source: "PIT channel 2",
    })
}

/// Records the calibration; the nanosecond clock works from here on.
pub fn set_calibration(cal: Calibration) {
    TSC.call_once(|| Scale::from_hz(cal.tsc_hz));
}

/// Remembers the TSC at kernel entry.
pub fn mark_kernel_entry() {
    BOOT_TSC.call_once(cpu::rdtsc);
}

/// Nanoseconds since CPU reset (monotonic on each CPU; the TSCs of all CPUs
/// start together on QEMU and on invariant-TSC hardware).
pub fn now_ns() -> Option<u64> {
    TSC.get().map(|s| s.ticks_to_ns(cpu::rdtsc()))
}

/// Nanoseconds since reset, for log prefixes.
pub fn uptime_ns() -> Option<u64> {
    now_ns()
}

/// Nanoseconds since reset at which the kernel was entered.
pub fn kernel_entry_ns() -> Option<u64> {
    Some(TSC.get()?.ticks_to_ns(*BOOT_TSC.get()?))
}
