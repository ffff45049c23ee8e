//! How a process ends, in one atomic byte: it is live, or a kill has been
//! asked for it (`ProcessHandle.kill`), or it has started exiting on its
//! own (`exit`, a fault).
//!
//! The byte decides, without a lock, the two things that race when a
//! process is killed while it exits:
//!
//! * which exit code it reports: a kill that came first makes it exit as
//!   killed, whatever code its own `exit` or fault would have given; a
//!   process that started exiting first keeps its own code;
//! * whether a kill did anything: only the first kill of a live process
//!   does (it is logged and the threads are stopped); a second kill, or a
//!   kill of a process already exiting, changes nothing.
//!
//! The kernel's threads look at the byte on every return to user mode
//! ([`killed`]); the killer, after marking it, wakes the threads that block
//! and interrupts the CPUs that run them. The loom model in
//! `verify/tests/runstate_loom.rs` runs these transitions against a
//! blocking thread (a kill is never lost) and against an exit (exactly one
//! of the two decides).

use crate::runstate::Word8;

/// Running (no kill asked, not exiting).
pub const LIVE: u8 = 0;
/// Killed: every thread leaves at its next return to user mode.
pub const KILLED: u8 = 1;
/// Exiting on its own (its own code stands).
pub const EXITING: u8 = 2;

/// A kill: `true` if it was the first kill of a live process (the caller
/// then stops its threads); `false` if the process was killed already or
/// is exiting.
pub fn kill<W: Word8>(w: &W) -> bool {
    w.compare_exchange(LIVE, KILLED).is_ok()
}

/// The process starts exiting on its own: `true` if its own exit code
/// stands, `false` if a kill came first (it exits as killed).
pub fn exit<W: Word8>(w: &W) -> bool {
    match w.compare_exchange(LIVE, EXITING) {
        Ok(_) => true,
        Err(found) => found != KILLED,
    }
}

/// Whether a kill was asked (checked on every return to user mode).
pub fn killed<W: Word8>(w: &W) -> bool {
    w.load() == KILLED
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU8;

    #[test]
    fn the_first_kill_counts_and_beats_a_later_exit() {
        let w = AtomicU8::new(LIVE);
        assert!(!killed(&w));
        assert!(kill(&w));
        assert!(killed(&w));
        assert!(!kill(&w), "a second kill changes nothing");
        assert!(!exit(&w), "exits as killed");
        assert!(killed(&w));
    }

    #[test]
    fn an_exit_first_keeps_its_code_and_a_later_kill_does_nothing() {
        let w = AtomicU8::new(LIVE);
        assert!(exit(&w));
        assert!(!kill(&w));
        assert!(!killed(&w));
        assert!(exit(&w), "exiting again keeps its own code");
    }
}
