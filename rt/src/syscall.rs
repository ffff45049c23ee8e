//! The raw system calls, and the only `syscall` instructions in userspace.
//!
//! The process ABI (`capos_ring::process`) defines two calls, with the
//! register use of a C function call: the number goes in `RAX`, arguments
//! in `RDI` and `RSI`, the result comes back in `RAX`; the CPU clobbers
//! `RCX` (return address) and `R11` (saved `RFLAGS`); `RDI`, `RSI`, `RDX`
//! and `R8`-`R10` come back zero; `RBX`, `RBP`, `RSP` and `R12`-`R15` are
//! preserved.
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
    // RDI and RSI in, RCX and R11 clobbered by the CPU, RDI, RSI, RDX and
    // R8-R10 clobbered by the kernel (zeroed), everything else preserved,
    // no stack use. `cap_enter` lets the kernel
    // read and write the buffers named by published SQEs, which the ring
    // client keeps alive and untouched until their completions are reaped;
    // unknown numbers have no effect. So no Rust-visible memory changes
    // behind the compiler's back.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => ret,
            inlateout("rdi") arg0 => _,
            inlateout("rsi") arg1 => _,
            lateout("rdx") _,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        )
    }
    ret as i64
}

/// What a register probe found after an empty `cap_enter` (see
/// [`probe_registers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterProbe {
    /// `RDI`, `RSI`, `RDX`, `R8`, `R9`, `R10` after the call (the ABI says
    /// zero; they held [`PROBE_PATTERNS`] or the arguments before).
    pub cleared: [u64; 6],
    /// `RBX`, `RBP`, `R12`, `R13`, `R14`, `R15` after the call (the ABI says
    /// preserved: [`PROBE_PATTERNS`]).
    pub preserved: [u64; 6],
    /// `RAX`: the call's result.
    pub result: u64,
}

/// The values [`probe_registers`] loads into `RBX`, `RBP`, `R12`-`R15`
/// (and into `RDX`, `R8`-`R10`) before the call.
pub const PROBE_PATTERNS: [u64; 6] = [
    0x1111_2222_3333_4444,
    0x5555_6666_7777_8888,
    0x9999_aaaa_bbbb_cccc,
    0xdddd_eeee_ffff_0001,
    0x0123_4567_89ab_cdef,
    0xfedc_ba98_7654_3210,
];

/// For tests of the system-call ABI: fills every general register the
/// caller can set with [`PROBE_PATTERNS`], makes an empty
/// `cap_enter(0, 0)`, and reports what each register held afterwards.
pub fn probe_registers() -> RegisterProbe {
    let mut out = [0u64; 13];
    let p = &PROBE_PATTERNS;
    // SAFETY: the block saves RBX and RBP (which cannot be named as
    // operands) on the stack and restores them, declares every other
    // register it writes as clobbered, and writes only `out` (13 words,
    // through a pointer kept on the stack across the call, so a kernel that
    // broke the ABI could not redirect the stores). `cap_enter(0, 0)` with
    // nothing submitted changes no memory.
    unsafe {
        asm!(
            // Keep the caller's RBX and RBP, and the result pointer.
            "push rbx",
            "push rbp",
            "push {out}",
            // RBX, RBP, R12-R15 and RDX, R8-R10 hold the patterns (loaded
            // from the pattern table in RCX); RAX = cap_enter, RDI =
            // min_complete 0, RSI = timeout 0.
            "mov rbx, [rcx]",
            "mov rbp, [rcx + 8]",
            "mov r12, [rcx + 16]",
            "mov r13, [rcx + 24]",
            "mov r14, [rcx + 32]",
            "mov r15, [rcx + 40]",
            "mov rdx, [rcx]",
            "mov r8, [rcx + 8]",
            "mov r9, [rcx + 16]",
            "mov r10, [rcx + 24]",
            "xor eax, eax",
            "xor edi, edi",
            "xor esi, esi",
            "syscall",
            // RCX and R11 are the CPU's; use RCX for the result pointer.
            "pop rcx",
            "mov [rcx], rdi",
            "mov [rcx + 8], rsi",
            "mov [rcx + 16], rdx",
            "mov [rcx + 24], r8",
            "mov [rcx + 32], r9",
            "mov [rcx + 40], r10",
            "mov [rcx + 48], rbx",
            "mov [rcx + 56], rbp",
            "mov [rcx + 64], r12",
            "mov [rcx + 72], r13",
            "mov [rcx + 80], r14",
            "mov [rcx + 88], r15",
            "mov [rcx + 96], rax",
            "pop rbp",
            "pop rbx",
            out = in(reg) out.as_mut_ptr(),
            inout("rcx") p.as_ptr() => _,
            out("rax") _,
            out("rdi") _,
            out("rsi") _,
            out("rdx") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
        )
    }
    RegisterProbe {
        cleared: [out[0], out[1], out[2], out[3], out[4], out[5]],
        preserved: [out[6], out[7], out[8], out[9], out[10], out[11]],
        result: out[12],
    }
}
