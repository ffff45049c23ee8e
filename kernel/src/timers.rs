//! Deadlines: `Timer` sleeps and `cap_enter` timeouts, in one indexed heap
//! (`capos_kcore::timerheap`): O(log n) insert and removal by key, an O(1)
//! look at the earliest deadline from every tick, and no heap allocation
//! inside the timer interrupt (capacity is reserved at insert, in thread
//! context). Threads blocked without a deadline are not here at all, so the
//! tick never scans them.
//!
//! Expiry runs on whichever CPU's tick gets there first, one CPU at a time
//! (a flag, not a lock: a tick that finds another CPU expiring skips), so
//! sleeps complete in deadline order (ties in the order they were made).
//! Lock order: a thread's state lock → `HEAP`; nothing is posted or woken
//! with `HEAP` held.

use crate::objects::Completion;
use crate::sched::{self, Thread};
use crate::sync::IrqLock;
use alloc::sync::Weak;
use capos_caps::ledger::Reservation;
use capos_kcore::timerheap::{TimerHeap, TimerKey};
use capos_ring::Cqe;
use core::sync::atomic::{AtomicBool, Ordering};

/// What happens at a deadline.
pub enum Event {
    /// A call that completes at the deadline (`Timer.sleep`,
    /// `Null.echoLater`): its completion, the result bytes it completes with
    /// (empty for a sleep), and the caller's timer-waiter charge (released
    /// when the event is dropped).
    Complete {
        /// Fired with `result`.
        completion: Completion,
        /// The serialized result (empty: every field at its default).
        result: alloc::vec::Vec<u8>,
        /// The caller's charge.
        charge: Reservation,
    },
    /// A `cap_enter` timeout: wake the thread.
    Wake(Weak<Thread>),
}

static HEAP: IrqLock<TimerHeap<Event>> = IrqLock::new(TimerHeap::new());
static EXPIRING: AtomicBool = AtomicBool::new(false);

/// Adds `event` at `deadline` (ns on the monotonic clock).
pub fn add(deadline: u64, event: Event) -> TimerKey {
    let mut heap = HEAP.lock();
    heap.reserve(1);
    heap.insert(deadline, event)
}

/// Removes the event `key` names, if it has not fired. The event is
/// dropped after the lock is released (dropping a sleep completes it as
/// `CANCELLED`).
pub fn remove(key: TimerKey) -> Option<Event> {
    HEAP.lock().remove(key)
}

/// Fires every event due at `now` (from the timer tick).
pub fn expire(now: u64) {
    if HEAP.lock().next_deadline().is_none_or(|d| d > now) {
        return;
    }
    if EXPIRING.swap(true, Ordering::Acquire) {
        return;
    }
    loop {
        let due = HEAP.lock().pop_due(now);
        match due {
            None => break,
            Some((
                _,
                Event::Complete {
                    completion,
                    result,
                    charge,
                },
            )) => {
                completion.finish(false, |thread, user_data, buf| {
                    if result.is_empty() {
                        return Cqe::success(user_data, 0);
                    }
                    match thread.process.aspace.write(buf, 0, &[&result]) {
                        Ok(()) => Cqe::success(user_data, result.len() as u32),
                        Err(_) => Cqe::error(user_data, capos_ring::TransportError::BadAddress),
                    }
                });
                drop(charge);
            }
            Some((_, Event::Wake(thread))) => {
                if let Some(t) = thread.upgrade() {
                    sched::wake(&t);
                    sched::release_thread(t);
                }
            }
        }
    }
    EXPIRING.store(false, Ordering::Release);
}
