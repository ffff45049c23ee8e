#![cfg(loom)]
//! Loom models of a thread's scheduling state (`capos_kcore::runstate`),
//! the lock-free word the scheduler blocks, wakes and switches threads
//! with.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p capos-verify --release --test runstate_loom`.
//!
//! The models run the kernel's own transitions over a loom byte. The event
//! a thread waits for is a loom flag its waker sets before waking it (a
//! posted completion, a fired timer). The properties, in every
//! interleaving:
//!
//! * a wake-up racing a thread that is blocking is never lost: the thread
//!   either sees the event and keeps running, or ends up queued;
//! * it is queued exactly once: by the switch that saves it (woken while
//!   still on its CPU) or by the waker (woken once off it), never by both;
//! * with two wakers (a completion and its deadline), still exactly once;
//! * a deadline armed while blocking that fires at once, on another CPU,
//!   still wakes the thread (it is armed only once the thread is marked
//!   blocked);
//! * a kill (`capos_kcore::fate`) racing a thread that blocks is never
//!   lost either: the killer marks the process and then wakes the thread,
//!   the blocker asks whether it was killed after marking itself blocked,
//!   so the thread either keeps running (and ends on its way to user mode)
//!   or is queued exactly once;
//! * a kill racing the process's own exit: exactly one of the two decides,
//!   and the exit code is the kill's if and only if the kill counted.

use capos_kcore::fate;
use capos_kcore::runstate::{self as rs, Run, Word8, ON_CPU};
use loom::sync::atomic::{fence, AtomicBool, AtomicU8};
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering::{Acquire, Release, SeqCst};

/// A loom byte as the state word.
struct W(AtomicU8);

impl Word8 for W {
    fn load(&self) -> u8 {
        self.0.load(SeqCst)
    }
    fn swap(&self, value: u8) -> u8 {
        self.0.swap(value, SeqCst)
    }
    fn compare_exchange(&self, current: u8, new: u8) -> Result<u8, u8> {
        self.0.compare_exchange(current, new, SeqCst, SeqCst)
    }
    fn fence(&self) {
        fence(SeqCst)
    }
}

/// The thread running on its CPU blocks until `event` is set, as
/// `sched::block_current` does (through [`rs::block`], arming `arm` as its
/// deadline): returns whether it kept running and, if it did not, whether
/// the switch that saved it queued it.
fn block_until(state: &W, event: &AtomicBool, arm: impl FnOnce()) -> (bool, bool) {
    if !rs::block(state, arm, || !event.load(Acquire)) {
        return (true, false);
    }
    // Context saved: off the CPU.
    let queued = matches!(rs::switched_out(state), Run::Running | Run::Ready);
    (false, queued)
}

/// A waker: makes the event visible (a release store, like posting a
/// completion), then wakes; whether it must queue.
fn waker(state: Arc<W>, event: Arc<AtomicBool>) -> thread::JoinHandle<bool> {
    thread::spawn(move || {
        event.store(true, Release);
        rs::wake(&*state) == Some(true)
    })
}

#[test]
fn a_wake_racing_a_block_is_neither_lost_nor_doubled() {
    loom::model(|| {
        let state = Arc::new(W(AtomicU8::new(Run::Running as u8 | ON_CPU)));
        let event = Arc::new(AtomicBool::new(false));
        let w = waker(state.clone(), event.clone());
        let (kept_running, switch_queued) = block_until(&state, &event, || {});
        let waker_queued = w.join().unwrap();
        let outcomes = [kept_running, switch_queued, waker_queued];
        assert_eq!(
            outcomes.iter().filter(|&&b| b).count(),
            1,
            "kept running / queued by the switch / queued by the waker: {outcomes:?}"
        );
        let word = state.load();
        if kept_running {
            assert_eq!(word, Run::Running as u8 | ON_CPU);
        } else {
            assert_eq!(word, Run::Ready as u8, "queued, so ready and off the CPU");
        }
    });
}

#[test]
fn two_wakers_queue_a_blocked_thread_once() {
    loom::model(|| {
        let state = Arc::new(W(AtomicU8::new(Run::Running as u8 | ON_CPU)));
        let event = Arc::new(AtomicBool::new(false));
        let first = waker(state.clone(), event.clone());
        let second = waker(state.clone(), event.clone());
        let (kept_running, switch_queued) = block_until(&state, &event, || {});
        let queued_by_wakers =
            usize::from(first.join().unwrap()) + usize::from(second.join().unwrap());
        assert_eq!(
            usize::from(kept_running) + usize::from(switch_queued) + queued_by_wakers,
            1
        );
    });
}

#[test]
fn a_deadline_that_fires_at_once_is_not_lost() {
    loom::model(|| {
        let state = Arc::new(W(AtomicU8::new(Run::Running as u8 | ON_CPU)));
        // No completion ever comes: only the deadline can end the wait.
        let event = AtomicBool::new(false);
        let armed = Arc::new(AtomicBool::new(false));
        // Another CPU's tick: finds the deadline in the heap (if armed yet)
        // and wakes its thread.
        let tick = {
            let (state, armed) = (state.clone(), armed.clone());
            thread::spawn(move || armed.load(Acquire).then(|| rs::wake(&*state) == Some(true)))
        };
        let (kept_running, switch_queued) =
            block_until(&state, &event, || armed.store(true, Release));
        match tick.join().unwrap() {
            // It fired: the thread is queued exactly once.
            Some(tick_queued) => {
                assert!(!kept_running);
                assert_eq!(usize::from(switch_queued) + usize::from(tick_queued), 1);
            }
            // Not yet: the thread waits, blocked, for a later tick.
            None => {
                assert!(!kept_running && !switch_queued);
                assert_eq!(state.load(), Run::Blocked as u8);
            }
        }
    });
}

#[test]
fn a_kill_racing_a_block_is_never_lost() {
    loom::model(|| {
        let state = Arc::new(W(AtomicU8::new(Run::Running as u8 | ON_CPU)));
        let process = Arc::new(W(AtomicU8::new(fate::LIVE)));
        // The event it waits for never comes: only the kill ends the wait.
        let event = AtomicBool::new(false);
        // The killer (`ProcessHandle.kill`, then `sched::kick`).
        let killer = {
            let (state, process) = (state.clone(), process.clone());
            thread::spawn(move || {
                assert!(fate::kill(&*process));
                rs::wake(&*state) == Some(true)
            })
        };
        // `sched::block_current` with `cap_enter`'s check.
        let (kept_running, switch_queued) = match rs::block(
            &*state,
            || {},
            || !fate::killed(&*process) && !event.load(Acquire),
        ) {
            false => (true, false),
            true => (
                false,
                matches!(rs::switched_out(&*state), Run::Running | Run::Ready),
            ),
        };
        let killer_queued = killer.join().unwrap();
        assert_eq!(
            usize::from(kept_running) + usize::from(switch_queued) + usize::from(killer_queued),
            1,
            "kept running / queued by the switch / queued by the killer"
        );
        // Whichever way it runs again, it sees the kill.
        assert!(fate::killed(&*process));
    });
}

#[test]
fn a_kill_racing_an_exit_is_decided_once() {
    loom::model(|| {
        let process = Arc::new(W(AtomicU8::new(fate::LIVE)));
        let killer = {
            let process = process.clone();
            thread::spawn(move || fate::kill(&*process))
        };
        let own_code = fate::exit(&*process);
        let kill_counted = killer.join().unwrap();
        assert_ne!(own_code, kill_counted, "exactly one of the two decides");
        assert_eq!(fate::killed(&*process), kill_counted);
    });
}
