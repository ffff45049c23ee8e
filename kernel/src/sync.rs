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

use core::ops::{Deref, DerefMut};
use x86_64::instructions::interrupts;

/// A spin lock that masks local interrupts while held.
pub struct IrqLock<T> {
    inner: spin::Mutex<T>,
}

/// Guard of an [`IrqLock`]; restores the interrupt flag when dropped.
pub struct IrqLockGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    were_enabled: bool,
}

impl<T> IrqLock<T> {
    /// A lock around `value`.
    pub const fn new(value: T) -> Self {
        Self {
            inner: spin::Mutex::new(value),
        }
    }

    /// Masks interrupts, then spins until the lock is free (servicing
    /// shoot-down requests meanwhile).
    pub fn lock(&self) -> IrqLockGuard<'_, T> {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        IrqLockGuard {
            guard: Some(spin_lock(&self.inner)),
            were_enabled,
        }
    }

    /// Masks interrupts and tries to take the lock up to `spins` times.
    pub fn try_lock_for(&self, spins: u32) -> Option<IrqLockGuard<'_, T>> {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        for _ in 0..spins {
            if let Some(g) = self.inner.try_lock() {
                return Some(IrqLockGuard {
                    guard: Some(g),
                    were_enabled,
                });
            }
            crate::tlb::poll();
            core::hint::spin_loop();
        }
        if were_enabled {
            interrupts::enable();
        }
        None
    }
}

/// Takes `m`, servicing shoot-down requests while it is held elsewhere.
fn spin_lock<T>(m: &spin::Mutex<T>) -> spin::MutexGuard<'_, T> {
    loop {
        if let Some(g) = m.try_lock() {
            return g;
        }
        while m.is_locked() {
            crate::tlb::poll();
            core::hint::spin_loop();
        }
    }
}

/// Guard of a [`SpinLock`].
pub type SpinGuard<'a, T> = spin::MutexGuard<'a, T>;

/// A spin lock that leaves the interrupt flag alone (for state only thread
/// context touches, such as capability tables) but, like every lock here,
/// services shoot-down requests while it spins: it is often taken with
/// interrupts already masked.
pub struct SpinLock<T> {
    inner: spin::Mutex<T>,
}

impl<T> SpinLock<T> {
    /// A lock around `value`.
    pub const fn new(value: T) -> Self {
        Self {
            inner: spin::Mutex::new(value),
        }
    }

    /// Spins until the lock is free.
    pub fn lock(&self) -> spin::MutexGuard<'_, T> {
        spin_lock(&self.inner)
    }
}

impl<T> Deref for IrqLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> DerefMut for IrqLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard present until drop")
    }
}

impl<T> Drop for IrqLockGuard<'_, T> {
    fn drop(&mut self) {
        // Release the lock before interrupts can come back.
        self.guard = None;
        if self.were_enabled {
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
    };
    type GuardMarker = talc::lock_api::GuardNoSend;

    fn lock(&self) {
        use core::sync::atomic::Ordering::{Acquire, Relaxed};
        let had = interrupts::are_enabled();
        loop {
            interrupts::disable();
            if self
                .locked
                .compare_exchange_weak(false, true, Acquire, Relaxed)
                .is_ok()
            {
                self.holder_had_interrupts.store(had, Relaxed);
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
        let had = self.holder_had_interrupts.load(Relaxed);
        self.locked.store(false, Release);
        if had {
            interrupts::enable();
        }
    }
}
