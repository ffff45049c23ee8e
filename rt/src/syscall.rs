//! The raw system calls, and the only `syscall` instructions in userspace.
//!
//! The process ABI (`capos_ring::process`) defines two calls. The number
//! goes in `RAX`, arguments in `RDI` and `RSI`, the result comes back in
//! `RAX`; the CPU clobbers `RCX` (return address) and `R11` (saved
//! `RFLAGS`); the kernel preserves every other register.
//!
//! These wrappers are safe: the kernel only ever reads or writes memory that
//! submissions in the ring name, and the runtime only publishes submissions
//! whose buffers it owns (or that cannot point at writable process memory,
//! see `RingClient::submit_raw`).

use capos_ring::process::{SYS_CAP_ENTER, SYS_EXIT};
use core::arch::asm;

/// `cap_enter(min_complete, timeout_ns)`: the kernel drains the submission
/// queue, then waits until `min_complete` completions are available or
/// `timeout_ns` passes (`0` never waits, `TIMEOUT_FOREVER` never times out).
/// Returns the number of completions available, or a negative
/// `SyscallError` / `TransportError` code.
pub fn cap_enter(min_complete: u64, timeout_ns: u64) -> i64 {
    raw_syscall(SYS_CAP_ENTER, min_complete, timeout_ns)
}

/// `exit(code)`: ends the process. Queued releases are not flushed; return
/// from `main` for an orderly exit.
pub fn exit(code: i64) -> ! {
    // SAFETY: SYS_EXIT never returns to this process, so no register or
    // memory state after the instruction matters; the kernel reads only RAX
    // and RDI. No stack is used.
    unsafe {
        asm!(
            "syscall",
            in("rax") SYS_EXIT,
            in("rdi") code,
            options(noreturn, nostack),
        )
    }
}

/// Any system call number with two arguments, for tests of the kernel's
/// refusal of unknown numbers. Use [`cap_enter`] and [`exit`] otherwise.
pub fn raw_syscall(number: u64, arg0: u64, arg1: u64) -> i64 {
    let ret: u64;
    // SAFETY: `syscall` with the ABI's register convention: RAX in and out,
    // RDI and RSI in, RCX and R11 clobbered by the CPU, everything else
    // preserved by the kernel, no stack use. `cap_enter` lets the kernel
    // read and write the buffers named by published SQEs, which the ring
    // client keeps alive and untouched until their completions are reaped;
    // unknown numbers have no effect. So no Rust-visible memory changes
    // behind the compiler's back.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => ret,
            in("rdi") arg0,
            in("rsi") arg1,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        )
    }
    ret as i64
}
