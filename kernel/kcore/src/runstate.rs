//! A thread's scheduling state in one atomic byte, and every transition
//! the scheduler makes on it.
//!
//! The byte holds a [`Run`] value in bits 0-1 and [`ON_CPU`] while the
//! thread still executes on a CPU (its context is not saved yet). Nothing
//! locks it: the transitions that race are
//!
//! * a wake-up against the thread blocking: the blocker marks itself
//!   [`Run::Blocked`] and then (after a full fence) checks whether it still
//!   has to wait; a waker makes its event visible and then (after a full
//!   fence) turns `Blocked` into `Ready`. One of the two always sees the
//!   other, so a wake-up is never lost;
//! * a wake-up against the switch that saves the blocked thread: the waker
//!   keeps `ON_CPU` as it found it, the switch clears it, and whichever of
//!   the two sees the other's change queues the thread, exactly once.
//!
//! The transitions are generic over the byte ([`Word8`]) so that the loom
//! models in `verify/tests/runstate_loom.rs` run this very code.

use core::sync::atomic::{AtomicU8, Ordering::SeqCst};

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// On a run queue (or handed to a CPU), or about to be.
    Ready = 0,
    /// Running on a CPU.
    Running = 1,
    /// Waiting for a wake-up.
    Blocked = 2,
    /// Finished; reaped once switched out.
    Exited = 3,
}

/// State bit: the thread still executes on a CPU.
pub const ON_CPU: u8 = 1 << 2;

/// The [`Run`] value of a state byte.
pub fn run(word: u8) -> Run {
    match word & 3 {
        0 => Run::Ready,
        1 => Run::Running,
        2 => Run::Blocked,
        _ => Run::Exited,
    }
}

/// An atomic byte with sequentially consistent accesses: `AtomicU8` in the
/// kernel, loom's in the models.
pub trait Word8 {
    /// Atomic load.
    fn load(&self) -> u8;
    /// Atomic swap (every write is a read-modify-write: on x86 a
    /// sequentially consistent store is the same `XCHG`, and loom orders
    /// read-modify-writes against each other reliably).
    fn swap(&self, value: u8) -> u8;
    /// Compare-exchange; the value found on failure.
    fn compare_exchange(&self, current: u8, new: u8) -> Result<u8, u8>;
    /// A full fence.
    fn fence(&self);
}

impl Word8 for AtomicU8 {
    fn load(&self) -> u8 {
        AtomicU8::load(self, SeqCst)
    }
    fn swap(&self, value: u8) -> u8 {
        AtomicU8::swap(self, value, SeqCst)
    }
    fn compare_exchange(&self, current: u8, new: u8) -> Result<u8, u8> {
        AtomicU8::compare_exchange(self, current, new, SeqCst, SeqCst)
    }
    fn fence(&self) {
        core::sync::atomic::fence(SeqCst)
    }
}

/// A new thread: ready, on no CPU.
pub const NEW: u8 = Run::Ready as u8;

/// A queued thread starts running on this CPU (only the CPU that took it
/// off a queue changes a queued thread).
pub fn start_running<W: Word8>(w: &W) {
    w.swap(Run::Running as u8 | ON_CPU);
}

/// The running thread is about to block. The caller checks afterwards
/// whether it still has to wait, and calls [`keep_running`] if not.
pub fn mark_blocked<W: Word8>(w: &W) {
    w.swap(Run::Blocked as u8 | ON_CPU);
    w.fence();
}

/// The running thread blocks: marks itself blocked, then `arm`s its
/// deadline (so a deadline that fires at once, on another CPU, finds it
/// blocked and wakes it), then asks `still_needed` (whether the event it
/// waits for has not come yet). Returns `true` if the caller must switch
/// away; `false` if it keeps running (marked running again).
pub fn block<W: Word8>(w: &W, arm: impl FnOnce(), still_needed: impl FnOnce() -> bool) -> bool {
    mark_blocked(w);
    arm();
    if still_needed() {
        return true;
    }
    keep_running(w);
    false
}

/// The thread marked blocked does not wait after all. A waker that made it
/// `Ready` meanwhile saw `ON_CPU` and left it to this CPU.
pub fn keep_running<W: Word8>(w: &W) {
    w.swap(Run::Running as u8 | ON_CPU);
}

/// The running thread has finished.
pub fn mark_exited<W: Word8>(w: &W) {
    w.swap(Run::Exited as u8 | ON_CPU);
}

/// A waker, after making its event visible: `Blocked` becomes `Ready`.
/// `None` if the thread was not blocked; `Some(true)` if it is off every
/// CPU and the waker must queue it; `Some(false)` if its CPU still runs it
/// (that CPU's switch queues it, or it keeps running).
pub fn wake<W: Word8>(w: &W) -> Option<bool> {
    w.fence();
    let mut word = w.load();
    loop {
        if run(word) != Run::Blocked {
            return None;
        }
        match w.compare_exchange(word, Run::Ready as u8 | (word & ON_CPU)) {
            Ok(_) => return Some(word & ON_CPU == 0),
            Err(found) => word = found,
        }
    }
}

/// The switch has saved the thread's context: it is off the CPU. Returns
/// what it was: `Running` or `Ready` (now `Ready`: the switch queues it),
/// `Blocked` (its waker queues it) or `Exited` (the switch reaps it).
pub fn switched_out<W: Word8>(w: &W) -> Run {
    let mut word = w.load();
    loop {
        let was = run(word);
        let new = match was {
            Run::Running | Run::Ready => Run::Ready as u8,
            other => other as u8,
        };
        match w.compare_exchange(word, new) {
            Ok(_) => return was,
            Err(found) => word = found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_through_every_transition() {
        let w = AtomicU8::new(NEW);
        start_running(&w);
        assert_eq!(run(w.load(SeqCst)), Run::Running);
        // Blocks, is switched out, then woken: the waker queues it.
        mark_blocked(&w);
        assert_eq!(switched_out(&w), Run::Blocked);
        assert_eq!(wake(&w), Some(true));
        assert_eq!(w.load(SeqCst), Run::Ready as u8);
        // A second wake finds nothing to do.
        assert_eq!(wake(&w), None);
        // Woken while still on its CPU: the switch queues it.
        start_running(&w);
        mark_blocked(&w);
        assert_eq!(wake(&w), Some(false));
        assert_eq!(switched_out(&w), Run::Ready);
        // Not needed after all: keeps running whatever a waker did.
        start_running(&w);
        mark_blocked(&w);
        assert_eq!(wake(&w), Some(false));
        keep_running(&w);
        assert_eq!(wake(&w), None);
        assert_eq!(switched_out(&w), Run::Running);
        // Exits: switched out for reaping, never woken.
        start_running(&w);
        mark_exited(&w);
        assert_eq!(wake(&w), None);
        assert_eq!(switched_out(&w), Run::Exited);
    }
}
