//! The time-stamp counter, for measurements.

/// Reads the TSC (allowed in ring 3: the kernel never sets CR4.TSD).
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Instructions that [`counted_loop`]`(iterations)` executes from its first
/// RDTSC (exclusive) to its second (inclusive): three moves, `iterations`
/// times `dec` and `jnz`, and the second RDTSC. Where the TSC counts guest
/// instructions (QEMU TCG with `-icount shift=0`), that is exactly the
/// delta [`counted_loop`] returns.
pub const fn counted_loop_instructions(iterations: u32) -> u64 {
    2 * (if iterations == 0 { 1 } else { iterations } as u64) + 4
}

/// The TSC delta around a loop of exactly
/// [`counted_loop_instructions`]`(iterations)` instructions (an
/// `iterations` of 0 runs once). `make bench` checks with it that the TSC
/// counts instructions before it reports path lengths (docs/bench.md).
#[inline(never)]
pub fn counted_loop(iterations: u32) -> u64 {
    let n = iterations.max(1);
    let (lo, hi, lo2, hi2): (u32, u32, u32, u32);
    // SAFETY: reads the TSC twice around a register-only loop; touches no
    // memory and no stack. `lo`/`hi` are `out` registers, so they never
    // share a register with the input `n`.
    unsafe {
        core::arch::asm!(
            // First read; from here to the second read (inclusive) the
            // instructions are counted by `counted_loop_instructions`.
            "rdtsc",
            "mov {lo:e}, eax",
            "mov {hi:e}, edx",
            "mov ecx, {n:e}",
            // `n` iterations of two instructions.
            "2:",
            "dec ecx",
            "jnz 2b",
            "rdtsc",
            lo = out(reg) lo,
            hi = out(reg) hi,
            n = in(reg) n,
            out("eax") lo2,
            out("edx") hi2,
            out("ecx") _,
            options(nomem, nostack),
        );
    }
    let start = u64::from(hi) << 32 | u64::from(lo);
    let end = u64::from(hi2) << 32 | u64::from(lo2);
    end.wrapping_sub(start)
}
