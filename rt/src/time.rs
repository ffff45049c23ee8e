//! The time-stamp counter, for measurements.

/// Reads the TSC (allowed in ring 3: the kernel never sets CR4.TSD).
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}
