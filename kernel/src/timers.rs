//! Pending `Timer.sleep` calls: each holds the caller's reserved completion
//! slot (so its completion can never be dropped) and a timer-waiter
//! reservation on the caller's ledger. The timer tick posts the completion
//! of every sleep whose deadline has passed, straight into the caller's
//! ring, and wakes the caller if it is blocked in `cap_enter`.

use crate::sched::{self, Thread};
use crate::sync::IrqLock;
use alloc::sync::Weak;
use alloc::vec::Vec;
use capos_caps::ledger::Reservation;
use capos_ring::{CqCredit, Cqe};

/// One sleep waiting for its deadline.
pub struct PendingSleep {
    /// The calling thread (weak: a sleep does not keep a dead process alive).
    pub thread: Weak<Thread>,
    /// The CALL's `user_data`.
    pub user_data: u64,
    /// The completion slot reserved when the SQE was consumed.
    pub credit: CqCredit,
    /// Deadline, ns on the kernel's monotonic clock.
    pub deadline: u64,
    /// The caller's timer-waiter charge, released when this is dropped.
    pub _charge: Reservation,
}

static PENDING: IrqLock<Vec<PendingSleep>> = IrqLock::new(Vec::new());

/// Held by the CPU completing due sleeps, from taking them off the list to
/// posting the last one: every CPU's tick expires sleeps, and without it a
/// later deadline taken by one CPU could be posted before an earlier one
/// another CPU took first. Lock order: `EXPIRING` → `PENDING`, and
/// `EXPIRING` → ring; `add` runs under a ring lock and takes only `PENDING`.
static EXPIRING: IrqLock<()> = IrqLock::new(());

/// Queues a sleep.
pub fn add(sleep: PendingSleep) {
    PENDING.lock().push(sleep);
}

/// Completes every sleep due at `now` (called from the timer tick).
pub fn expire(now: u64) {
    let _order = EXPIRING.lock();
    let due: Vec<PendingSleep> = {
        let mut pending = PENDING.lock();
        let live = |s: &PendingSleep| s.thread.strong_count() > 0;
        if pending.iter().all(|s| s.deadline > now && live(s)) {
            return;
        }
        // Due sleeps, and sleeps of exited threads (dropped here so a far
        // deadline cannot keep them queued), leave the list.
        let (due, keep) = core::mem::take(&mut *pending)
            .into_iter()
            .partition(|s| s.deadline <= now || !live(s));
        *pending = keep;
        due
    };
    // Earliest deadline first, so completions arrive in deadline order.
    let mut due = due;
    due.sort_by_key(|s| s.deadline);
    for s in due {
        let Some(thread) = s.thread.upgrade() else {
            continue;
        };
        {
            let mut ring = thread.process.ring.lock();
            ring.poster.post(s.credit, &Cqe::success(s.user_data, 0));
        }
        sched::wake(&thread);
    }
}

/// For the serial dump key: how many sleeps `thread` has pending and the
/// earliest deadline among them, or `None` if the list stays locked.
pub fn pending_for(thread: &Thread) -> Option<(usize, Option<u64>)> {
    let pending = PENDING.try_lock_for(100_000)?;
    let mine = pending
        .iter()
        .filter(|s| core::ptr::eq(s.thread.as_ptr(), thread));
    let count = mine.clone().count();
    Some((count, mine.map(|s| s.deadline).min()))
}
