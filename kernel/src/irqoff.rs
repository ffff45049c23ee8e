//! The longest stretch each CPU spends with interrupts masked, in TSC
//! cycles: from masking to unmasking in the kernel's own code (the
//! outermost interrupt-masking lock, the scheduler's masked sections) and
//! from an interrupt's entry to its return when it interrupted code that
//! had them on. Printed at the end of every boot and read by the benchmark
//! (`Null.counters`).
//!
//! Only the CPU itself writes its two words; a stretch that begins on one
//! thread's stack and ends on another's (a switch in between) is one
//! stretch of the CPU, which is what is measured.
//!
//! Measuring reads the TSC at every outermost interrupt-masking lock, so it
//! is built only with the `irqoff` feature (the smoke kernel, and the
//! second kernel `make bench` boots to report it); without it `begin` and
//! `end` are empty and the stretches read as 0 ("not measured").

use crate::percpu::MAX_CPUS;
use core::panic::Location;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering::Relaxed};

/// TSC when interrupts went off on each CPU (0: they are on).
static OFF_SINCE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// The longest stretch seen on each CPU.
static LONGEST: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Where the current stretch began on each CPU (the masking lock's or
/// section's caller).
static OFF_AT: [AtomicPtr<Location<'static>>; MAX_CPUS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CPUS];
/// Where the longest stretch began on each CPU.
static LONGEST_AT: [AtomicPtr<Location<'static>>; MAX_CPUS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CPUS];

fn cpu() -> usize {
    capos_arch::percpu::this_cpu_index() as usize % MAX_CPUS
}

/// Interrupts just went off on this CPU (they were on). The caller's
/// location (through `#[track_caller]` callers: the lock's user) is kept
/// as the stretch's start.
#[inline]
#[cfg_attr(feature = "irqoff", track_caller)]
pub fn begin() {
    if cfg!(feature = "irqoff") {
        let c = cpu();
        OFF_AT[c].store(ptr::from_ref(Location::caller()).cast_mut(), Relaxed);
        OFF_SINCE[c].store(capos_arch::cpu::rdtsc(), Relaxed);
    }
}

/// Interrupts are about to come back on this CPU.
#[inline]
pub fn end() {
    if !cfg!(feature = "irqoff") {
        return;
    }
    let c = cpu();
    let since = OFF_SINCE[c].swap(0, Relaxed);
    if since != 0 {
        let took = capos_arch::cpu::rdtsc().saturating_sub(since);
        if took > LONGEST[c].load(Relaxed) {
            LONGEST[c].store(took, Relaxed);
            LONGEST_AT[c].store(OFF_AT[c].load(Relaxed), Relaxed);
        }
    }
}

/// Whether this kernel measures the stretches.
pub const MEASURED: bool = cfg!(feature = "irqoff");

/// The longest stretch on CPU `cpu` so far (0 if not measured).
pub fn longest(cpu: usize) -> u64 {
    LONGEST.get(cpu).map_or(0, |l| l.load(Relaxed))
}

/// Where the longest stretch on CPU `cpu` began, if one was measured.
pub fn longest_site(cpu: usize) -> Option<&'static Location<'static>> {
    let at = LONGEST_AT.get(cpu)?.load(Relaxed);
    // SAFETY: only `Location::caller()` references, which are 'static, are
    // ever stored here.
    unsafe { at.cast_const().as_ref() }
}

/// The longest stretch on any CPU so far, and that CPU.
pub fn longest_any() -> (u64, usize) {
    (0..MAX_CPUS)
        .map(|c| (longest(c), c))
        .max()
        .unwrap_or((0, 0))
}

/// Masks interrupts, starting a stretch if they were on; returns whether
/// they were.
#[inline]
#[cfg_attr(feature = "irqoff", track_caller)]
pub fn disable() -> bool {
    let were_on = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::disable();
    if were_on {
        begin();
    }
    were_on
}

/// Runs `f` with interrupts masked, measured like a lock's hold.
#[inline]
#[cfg_attr(feature = "irqoff", track_caller)]
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let were_on = disable();
    let r = f();
    if were_on {
        end();
        x86_64::instructions::interrupts::enable();
    }
    r
}

/// Ends the stretch, unmasks interrupts and halts until one arrives.
#[inline]
pub fn enable_and_hlt() {
    end();
    x86_64::instructions::interrupts::enable_and_hlt();
}
