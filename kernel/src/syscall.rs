//! The two system calls: `cap_enter(min_complete, timeout_ns)` and
//! `exit(code)`. Every other number returns `SyscallError::BadSyscall`.

use crate::dispatch;
use crate::sched::{self, Thread};
use alloc::sync::Arc;
use capos_ring::process::{SyscallError, SYS_CAP_ENTER, SYS_EXIT, TIMEOUT_FOREVER};
use capos_ring::TransportError;

/// Called by `syscall_entry` (arch/src/asm/syscall.S) with interrupts on:
/// the user's RAX, RDI and RSI; returns what goes back in RAX.
#[unsafe(no_mangle)]
extern "C" fn syscall_dispatch(number: u64, arg0: u64, arg1: u64) -> u64 {
    match number {
        SYS_CAP_ENTER => {
            let n = cap_enter(arg0, arg1);
            sched::note_return_to_user();
            n as u64
        }
        SYS_EXIT => crate::proc::exit_current(arg0 as i64),
        _ => {
            crate::proc::exit_if_killed();
            SyscallError::BadSyscall.code() as u64
        }
    }
}

fn cap_enter(min_complete: u64, timeout_ns: u64) -> i64 {
    let Some(thread) = sched::current_arc() else {
        return SyscallError::BadSyscall.code();
    };
    // The process, through the thread object itself: `thread` refers to
    // this CPU's current slot, which another thread owns once this one has
    // blocked and moved to another CPU.
    let process: &crate::proc::Process = &thread.process;
    let n = enter_as(thread, min_complete, timeout_ns);
    // A process killed while this thread was in the kernel (or blocked in
    // `cap_enter`) ends here instead of going back: the last thing before
    // the return to user.
    if process.killed() {
        crate::proc::exit_current(crate::proc::KILLED_EXIT_CODE)
    }
    n
}

/// `cap_enter` for `thread`.
#[inline(always)]
fn enter_as(thread: &Arc<Thread>, min_complete: u64, timeout_ns: u64) -> i64 {
    let ring = &thread.process.ring;
    if min_complete > u64::from(capos_ring::DEFAULT_LAYOUT.cq_entries()) {
        return SyscallError::MinCompleteTooLarge.code();
    }
    // Nothing submitted and nothing to wait for: no lock, no call.
    if !ring.has_submissions() {
        match ring.available() {
            Err(_) => return i64::from(TransportError::RingCorrupted.code()),
            Ok(n) if u64::from(n) >= min_complete || timeout_ns == 0 => return i64::from(n),
            Ok(_) => {}
        }
    }
    drain_and_wait(thread, min_complete, timeout_ns)
}

/// The rest of `cap_enter`: drains the submissions, then waits for
/// `min_complete` completions or the timeout. Kept out of line so the
/// empty entry above stays short.
#[inline(never)]
fn drain_and_wait(thread: &Arc<Thread>, min_complete: u64, timeout_ns: u64) -> i64 {
    let ring = &thread.process.ring;
    let available = || ring.available();
    match dispatch::enter(thread) {
        Err(_) => return i64::from(TransportError::RingCorrupted.code()),
        Ok(n) if u64::from(n) >= min_complete || timeout_ns == 0 => return i64::from(n),
        Ok(_) => {}
    }
    let deadline = match timeout_ns {
        TIMEOUT_FOREVER => None,
        t => crate::time::now_ns().map(|now| now.saturating_add(t)),
    };
    loop {
        sched::block_current(deadline, || {
            available().is_ok_and(|n| u64::from(n) < min_complete)
        });
        // Killed: woken to leave (the caller does not return to user mode).
        if thread.process.killed() {
            return 0;
        }
        match available() {
            Err(_) => return i64::from(TransportError::RingCorrupted.code()),
            Ok(n) if u64::from(n) >= min_complete => return i64::from(n),
            Ok(n) => {
                if deadline.is_some_and(|d| crate::time::now_ns().is_some_and(|now| now >= d)) {
                    return i64::from(n);
                }
            }
        }
    }
}
