//! Clocks: the TSC as the monotonic nanosecond clock, and the local APIC
//! timer's rate, both calibrated against the PIT at boot.
//!
//! Calibration measures the same PIT interval in several windows and keeps
//! the median one (`capos_kcore::clock::median_window`): a CPU held up while
//! it polls the PIT (a host descheduling a virtual CPU, an SMI) sees the
//! interval end late and would otherwise calibrate every clock too fast by
//! that factor (seen once in 1,068 stressed TCG boots: 60 times too fast).
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
    /// TSC ticks each window counted, and the one the rates come from.
    pub windows: [u64; CALIBRATION_WINDOWS],
    /// Index of the median window in `windows`.
    pub used: usize,
}

static TSC: Once<Scale> = Once::new();
static BOOT_TSC: Once<u64> = Once::new();

/// PIT interval used for calibration.
const CALIBRATION_NS: u64 = 20_000_000;
/// Calibration windows measured; the median one is used.
pub const CALIBRATION_WINDOWS: usize = 3;
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
/// interrupts off, in [`CALIBRATION_WINDOWS`] windows, and keeps the median.
/// `apic_start` starts the APIC count and `apic_read` reads it.
/// `stall_window` holds the CPU up at the end of that window (an injected
/// fault proving the median).
pub fn calibrate(
    mut apic_start: impl FnMut(),
    apic_read: impl Fn() -> u32,
    stall_window: Option<usize>,
) -> Result<Calibration, CalibrationError> {
    let reload = clock::pit_reload_for_ns(CALIBRATION_NS).ok_or(CalibrationError::NoProgress)?;
    let ref_ns = clock::pit_ns_for_reload(reload);
    let mut measured = [(0u64, 0u64); CALIBRATION_WINDOWS];
    for (window, out) in measured.iter_mut().enumerate() {
        let mut samples = [(0u64, 0u32); 2];
        let mut n = 0;
        apic_start();
        pit::wait_clocks(reload, PIT_MAX_POLLS, || {
            if n == 1 && stall_window == Some(window) {
                hold_up(&apic_read, samples[0].1);
            }
            if n < 2 {
                samples[n] = (cpu::rdtsc(), apic_read());
                n += 1;
            }
        })
        .map_err(|_| CalibrationError::PitTimeout)?;
        *out = (
            samples[1].0.wrapping_sub(samples[0].0),
            u64::from(samples[0].1.wrapping_sub(samples[1].1)),
        );
    }
    let windows = measured.map(|(tsc, _)| tsc);
    let used = clock::median_window(&windows).ok_or(CalibrationError::NoProgress)?;
    let (tsc_ticks, apic_ticks) = measured[used];
    let tsc_hz = clock::hz_from_sample(tsc_ticks, ref_ns).ok_or(CalibrationError::NoProgress)?;
    let apic_timer_hz =
        clock::hz_from_sample(apic_ticks, ref_ns).ok_or(CalibrationError::NoProgress)?;
    Ok(Calibration {
        tsc_hz,
        apic_timer_hz,
        source: "PIT channel 2",
        windows,
        used,
    })
}

/// Spins until the APIC count (started at `start`) has run four times as
/// long again as it has so far: the window then ends about five times too
/// late, as if the CPU had been held up.
fn hold_up(apic_read: &impl Fn() -> u32, start: u32) {
    let so_far = start.wrapping_sub(apic_read());
    let until = so_far.saturating_mul(5);
    while start.wrapping_sub(apic_read()) < until {
        core::hint::spin_loop();
    }
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
