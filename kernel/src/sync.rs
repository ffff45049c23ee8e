//! Locks that are safe to take from both thread and interrupt context.
//!
//! [`IrqLock`] disables interrupts on the local CPU for as long as the guard
//! lives, so an interrupt handler on the same CPU can never spin on a lock
//! its own CPU already holds.
//!
//! Every lock here services TLB shoot-down requests while it spins
//! ([`crate::tlb::poll`]): a CPU waiting for a lock with interrupts masked
//! still acknowledges a shoot-down, so a CPU that shoots while holding a
//! lock can never wait for a CPU that waits for that lock.
//!
//! Built with the `lockdep` feature (every smoke-test kernel), every lock
//! here is checked by the lock-order validator in [`lockdep`]: its class is
//! the place it was constructed, and each acquisition is recorded with its
//! own source location (`#[track_caller]`) before the CPU spins. Without
//! the feature the locks carry nothing extra.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
#[cfg(feature = "lockdep")]
use core::panic::Location;
use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::instructions::interrupts;

#[cfg(feature = "lockdep")]
pub mod lockdep;

/// Stand-ins for the validator's hooks in kernels built without it: each
/// does nothing (or says the validator is absent).
#[cfg(not(feature = "lockdep"))]
pub mod lockdep {
    /// Interrupt-context marker (nothing to mark without the validator).
    pub struct IrqContext;

    /// Marks the start of an interrupt handler.
    #[inline(always)]
    pub fn irq_enter() -> IrqContext {
        IrqContext
    }

    /// Called before a thread switch; returns what [`switch_in`] restores.
    #[inline(always)]
    pub fn switch_out() -> u32 {
        0
    }

    /// Called when a switched-out thread runs again.
    #[inline(always)]
    pub fn switch_in(_depth: u32) {}

    /// Prints the boot line saying whether the validator is on.
    pub fn announce() {}

    /// Prints the end-of-test summary (nothing without the validator).
    pub fn summary() {}

    /// `inject=lock-*`: only a kernel built with the validator can survive
    /// these (it halts with a report); this one would spin for ever, so it
    /// refuses.
    pub fn inject(reentry: bool, inversion: bool, irq_unsafe: bool) {
        if reentry || inversion || irq_unsafe {
            crate::warn!(
                "inject: lock errors need a kernel built with the lockdep feature; not injected"
            );
        }
    }
}

/// The lock word every lock here is built on: one atomic flag, taken with
/// a single compare-exchange when free (inlined), spinning out of line
/// (servicing shoot-down requests) when held.
struct RawSpin(AtomicBool);

impl RawSpin {
    const fn new() -> Self {
        RawSpin(AtomicBool::new(false))
    }

    /// Takes the flag, spinning until it is free.
    #[inline(always)]
    fn acquire(&self) {
        if !self.try_acquire() {
            self.acquire_contended();
        }
    }

    #[cold]
    #[inline(never)]
    fn acquire_contended(&self) {
        loop {
            while self.0.load(Ordering::Relaxed) {
                crate::tlb::poll();
                core::hint::spin_loop();
            }
            if self.try_acquire() {
                return;
            }
        }
    }

    /// Takes the flag if it is free.
    #[inline(always)]
    fn try_acquire(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Frees the flag (its holder only).
    #[inline(always)]
    fn release(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A spin lock that masks local interrupts while held.
pub struct IrqLock<T> {
    #[cfg(feature = "lockdep")]
    class: lockdep::LockClass,
    locked: RawSpin,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and a guard exists
// only while its holder owns `locked` (one holder at a time), so sharing
// the lock across CPUs shares `T` by exclusive hand-over: `T: Send` is
// enough.
unsafe impl<T: Send> Sync for IrqLock<T> {}
// SAFETY: as above; the lock owns its value.
unsafe impl<T: Send> Send for IrqLock<T> {}

/// Guard of an [`IrqLock`]; unlocks, then restores the interrupt flag,
/// when dropped.
pub struct IrqLockGuard<'a, T> {
    lock: &'a IrqLock<T>,
    were_enabled: bool,
    #[cfg(feature = "lockdep")]
    held: lockdep::Held<'a>,
}

impl<T> IrqLock<T> {
    /// A lock around `value`.
    #[cfg_attr(any(feature = "lockdep", feature = "irqoff"), track_caller)]
    pub const fn new(value: T) -> Self {
        Self {
            #[cfg(feature = "lockdep")]
            class: lockdep::LockClass::new(Location::caller()),
            locked: RawSpin::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, through exclusive access to the lock itself (no locking:
    /// nobody else can hold it).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Masks interrupts, then spins until the lock is free (servicing
    /// shoot-down requests meanwhile).
    #[cfg_attr(any(feature = "lockdep", feature = "irqoff"), track_caller)]
    #[inline]
    pub fn lock(&self) -> IrqLockGuard<'_, T> {
        self.lock_keyed(None)
    }

    /// Like [`lock`](Self::lock), for code that holds several locks of
    /// this class at once (two address spaces' tables): it must take them
    /// in increasing `key` order (the validator checks that it does).
    #[cfg_attr(any(feature = "lockdep", feature = "irqoff"), track_caller)]
    #[allow(
        dead_code,
        reason = "kept beside SpinLock::lock_ordered for the same use"
    )]
    pub fn lock_ordered(&self, key: u64) -> IrqLockGuard<'_, T> {
        self.lock_keyed(Some(key))
    }

    // Inlined so `lock` compiles to what it was before the validator
    // existed when it is left out.
    #[cfg_attr(any(feature = "lockdep", feature = "irqoff"), track_caller)]
    #[inline(always)]
    fn lock_keyed(&self, _key: Option<u64>) -> IrqLockGuard<'_, T> {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        if were_enabled {
            crate::irqoff::begin();
        }
        #[cfg(feature = "lockdep")]
        let pending = lockdep::check(
            &self.class,
            self.instance(),
            Location::caller(),
            _key,
            were_enabled,
            true,
        );
        self.locked.acquire();
        IrqLockGuard {
            lock: self,
            were_enabled,
            #[cfg(feature = "lockdep")]
            held: lockdep::Held::push(&self.class, self.instance(), pending),
        }
    }

    /// Masks interrupts and tries to take the lock up to `spins` times.
    #[cfg_attr(any(feature = "lockdep", feature = "irqoff"), track_caller)]
    pub fn try_lock_for(&self, spins: u32) -> Option<IrqLockGuard<'_, T>> {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        if were_enabled {
            crate::irqoff::begin();
        }
        for _ in 0..spins {
            if self.locked.try_acquire() {
                return Some(IrqLockGuard {
                    lock: self,
                    were_enabled,
                    #[cfg(feature = "lockdep")]
                    held: lockdep::Held::taken(&self.class, self.instance(), Location::caller()),
                });
            }
            crate::tlb::poll();
            core::hint::spin_loop();
        }
        if were_enabled {
            crate::irqoff::end();
            interrupts::enable();
        }
        None
    }
}

#[cfg(feature = "lockdep")]
impl<T> IrqLock<T> {
    /// The lock's identity for the validator.
    fn instance(&self) -> usize {
        &self.locked as *const RawSpin as usize
    }
}

/// A spin lock that leaves the interrupt flag alone (for state only thread
/// context touches, such as capability tables) but, like every lock here,
/// services shoot-down requests while it spins: it is often taken with
/// interrupts already masked.
pub struct SpinLock<T> {
    #[cfg(feature = "lockdep")]
    class: lockdep::LockClass,
    locked: RawSpin,
    value: UnsafeCell<T>,
}

// SAFETY: as for `IrqLock`: the value is reached only through a guard held
// by the one owner of `locked`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SpinLock<T> {}

/// Guard of a [`SpinLock`]; unlocks when dropped.
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    #[cfg(feature = "lockdep")]
    held: lockdep::Held<'a>,
}

impl<T> SpinLock<T> {
    /// A lock around `value`.
    #[cfg_attr(any(feature = "lockdep", feature = "irqoff"), track_caller)]
    pub const fn new(value: T) -> Self {
        Self {
            #[cfg(feature = "lockdep")]
            class: lockdep::LockClass::new(Location::caller()),
            locked: RawSpin::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// Spins until the lock is free.
    #[cfg_attr(any(feature = "lockdep", feature = "irqoff"), track_caller)]
    #[inline]
    pub fn lock(&self) -> SpinGuard<'_, T> {
        self.lock_keyed(None)
    }

    /// Like [`lock`](Self::lock), for code that holds several locks of
    /// this class at once (two processes' capability tables): it must take
    /// them in increasing `key` order (the validator checks that it does).
    #[cfg_attr(any(feature = "lockdep", feature = "irqoff"), track_caller)]
    pub fn lock_ordered(&self, key: u64) -> SpinGuard<'_, T> {
        self.lock_keyed(Some(key))
    }

    // Inlined so `lock` compiles to what it was before the validator
    // existed when it is left out.
    #[cfg_attr(any(feature = "lockdep", feature = "irqoff"), track_caller)]
    #[inline(always)]
    fn lock_keyed(&self, _key: Option<u64>) -> SpinGuard<'_, T> {
        #[cfg(feature = "lockdep")]
        let pending = lockdep::check(
            &self.class,
            self.instance(),
            Location::caller(),
            _key,
            interrupts::are_enabled(),
            false,
        );
        self.locked.acquire();
        SpinGuard {
            lock: self,
            #[cfg(feature = "lockdep")]
            held: lockdep::Held::push(&self.class, self.instance(), pending),
        }
    }

    /// The lock's identity for the validator.
    #[cfg(feature = "lockdep")]
    fn instance(&self) -> usize {
        &self.locked as *const RawSpin as usize
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard's holder owns the lock until the guard drops.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // Forgotten before it is unlocked: an interrupt between the two
        // must not see it free yet listed as held.
        #[cfg(feature = "lockdep")]
        self.held.release();
        self.lock.locked.release();
    }
}

impl<T> Deref for IrqLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard's holder owns the lock until the guard drops.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for IrqLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for IrqLockGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(feature = "lockdep")]
        self.held.release();
        // Release the lock before interrupts can come back.
        self.lock.locked.release();
        if self.were_enabled {
            crate::irqoff::end();
            interrupts::enable();
        }
    }
}

/// A raw spin lock that masks local interrupts while held, for `lock_api`
/// users (the kernel heap): any allocation, from thread or interrupt
/// context, can never spin on a lock its own CPU holds.
pub struct IrqRawSpin {
    locked: core::sync::atomic::AtomicBool,
    /// Interrupt flag of the holder before it locked (restored on unlock).
    holder_had_interrupts: core::sync::atomic::AtomicBool,
    /// Whether the validator tracks the holder's acquisition (for unlock).
    #[cfg(feature = "lockdep")]
    tracked: core::sync::atomic::AtomicBool,
}

/// The class of every [`IrqRawSpin`] (only the kernel heap's lock is one).
/// `lock_api` gives no caller location, so its acquisitions are named by
/// this line too.
#[cfg(feature = "lockdep")]
static HEAP_CLASS: lockdep::LockClass = lockdep::LockClass::new(Location::caller());

#[cfg(feature = "lockdep")]
impl IrqRawSpin {
    fn instance(&self) -> usize {
        self as *const Self as usize
    }
}

// SAFETY: `lock` returns only once this CPU owns `locked` (a successful
// Acquire compare-exchange from false), and `unlock` (called only by the
// owner, per the lock_api contract) releases it with a Release store, so at
// most one holder exists at a time and its critical section is ordered.
unsafe impl talc::lock_api::RawMutex for IrqRawSpin {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self {
        locked: core::sync::atomic::AtomicBool::new(false),
        holder_had_interrupts: core::sync::atomic::AtomicBool::new(false),
        #[cfg(feature = "lockdep")]
        tracked: core::sync::atomic::AtomicBool::new(false),
    };
    type GuardMarker = talc::lock_api::GuardNoSend;

    fn lock(&self) {
        use core::sync::atomic::Ordering::{Acquire, Relaxed};
        let had = interrupts::are_enabled();
        #[cfg(feature = "lockdep")]
        let pending = lockdep::check(
            &HEAP_CLASS,
            self.instance(),
            HEAP_CLASS.site(),
            None,
            had,
            true,
        );
        loop {
            interrupts::disable();
            if self
                .locked
                .compare_exchange_weak(false, true, Acquire, Relaxed)
                .is_ok()
            {
                self.holder_had_interrupts.store(had, Relaxed);
                #[cfg(feature = "lockdep")]
                self.tracked.store(lockdep::push(pending), Relaxed);
                if had {
                    crate::irqoff::begin();
                }
                return;
            }
            if had {
                interrupts::enable();
            }
            while self.locked.load(Relaxed) {
                crate::tlb::poll();
                core::hint::spin_loop();
            }
        }
    }

    fn try_lock(&self) -> bool {
        use core::sync::atomic::Ordering::{Acquire, Relaxed};
        let had = interrupts::are_enabled();
        interrupts::disable();
        if self
            .locked
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
        {
            self.holder_had_interrupts.store(had, Relaxed);
            #[cfg(feature = "lockdep")]
            self.tracked.store(
                lockdep::taken(&HEAP_CLASS, self.instance(), HEAP_CLASS.site()),
                Relaxed,
            );
            if had {
                crate::irqoff::begin();
            }
            true
        } else {
            if had {
                interrupts::enable();
            }
            false
        }
    }

    unsafe fn unlock(&self) {
        use core::sync::atomic::Ordering::{Relaxed, Release};
        #[cfg(feature = "lockdep")]
        lockdep::release(&HEAP_CLASS, self.instance(), self.tracked.load(Relaxed));
        let had = self.holder_had_interrupts.load(Relaxed);
        self.locked.store(false, Release);
        if had {
            crate::irqoff::end();
            interrupts::enable();
        }
    }
}
