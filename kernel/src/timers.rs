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
//! `HEAP` is a leaf lock: nothing is posted or woken with it held.
//!
//! The heap keeps a check on itself ([`FiringOrder`]): events fired, the
//! most pending at once, and whether they fired in deadline order; the
//! end-of-boot report prints them ([`stats`]).

use crate::objects::Completion;
use crate::sched::{self, Thread};
use crate::sync::IrqLock;
use alloc::sync::Weak;
use capos_caps::ledger::Reservation;
use capos_kcore::firing::FiringOrder;
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

/// The heap, and its check on itself.
struct Timers {
    /// Events, each with the floor [`FiringOrder::added`] gave it.
    heap: TimerHeap<(u64, Event)>,
    order: FiringOrder,
}

static HEAP: IrqLock<Timers> = IrqLock::new(Timers {
    heap: TimerHeap::new(),
    order: FiringOrder::new(),
});
static EXPIRING: AtomicBool = AtomicBool::new(false);

/// Adds `event` at `deadline` (ns on the monotonic clock).
pub fn add(deadline: u64, event: Event) -> TimerKey {
    let mut guard = HEAP.lock();
    let t = &mut *guard;
    t.heap.reserve(1);
    let floor = t.order.added(t.heap.len() + 1);
    t.heap.insert(deadline, (floor, event))
}

/// Removes the event `key` names, if it has not fired. The event is
/// dropped after the lock is released (dropping a sleep completes it as
/// `CANCELLED`).
pub fn remove(key: TimerKey) -> Option<Event> {
    HEAP.lock().heap.remove(key).map(|(_, e)| e)
}

/// Takes the earliest event due at `now`, noting it as fired.
fn pop_due(now: u64) -> Option<Event> {
    let mut guard = HEAP.lock();
    let t = &mut *guard;
    let (deadline, (floor, event)) = t.heap.pop_due(now)?;
    t.order.fired(deadline, floor);
    Some(event)
}

/// The timers' counters at one moment.
pub struct Stats {
    /// Events pending now.
    pub pending: usize,
    /// Events fired since boot.
    pub fired: u64,
    /// The most events pending at once.
    pub peak: usize,
    /// Whether every event fired in deadline order.
    pub in_order: bool,
}

/// The timers' counters (for the end-of-boot report).
pub fn stats() -> Stats {
    let t = HEAP.lock();
    Stats {
        pending: t.heap.len(),
        fired: t.order.fired_count(),
        peak: t.order.peak(),
        in_order: t.order.in_order(),
    }
}

/// Fires every event due at `now` (from the timer tick).
pub fn expire(now: u64) {
    if HEAP.lock().heap.next_deadline().is_none_or(|d| d > now) {
        return;
    }
    if EXPIRING.swap(true, Ordering::Acquire) {
        return;
    }
    loop {
        match pop_due(now) {
            None => break,
            Some(Event::Complete {
                completion,
                result,
                charge,
            }) => {
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
            Some(Event::Wake(thread)) => {
                if let Some(t) = thread.upgrade() {
                    sched::wake(&t);
                    sched::release_thread(t);
                }
            }
        }
    }
    EXPIRING.store(false, Ordering::Release);
}

/// For the serial dump key: the deadline of the event `key` names, or
/// `None` if it fired or the heap stayed locked for `spins` tries.
pub fn deadline_of(key: TimerKey, spins: u32) -> Option<u64> {
    HEAP.try_lock_for(spins)?.heap.deadline_of(key)
}

/// For the serial dump key: how many calls of `thread` complete at a
/// deadline (sleeps, `echoLater`) and the earliest of those deadlines, or
/// `None` if the heap stayed locked for `spins` tries.
pub fn pending_for(thread: &Thread, spins: u32) -> Option<(usize, Option<u64>)> {
    let t = HEAP.try_lock_for(spins)?;
    let mine = t
        .heap
        .iter()
        .filter_map(|(deadline, (_, event))| match event {
            Event::Complete { completion, .. } if completion.is_for(thread) => Some(deadline),
            _ => None,
        });
    let (count, first) = mine.fold((0, None), |(n, first): (usize, Option<u64>), d| {
        (n + 1, Some(first.map_or(d, |f: u64| f.min(d))))
    });
    Some((count, first))
}
