//! Deliberate CPU exceptions, for tests that the kernel contains a faulting
//! process (reports it, ends it, keeps everything else running).
//!
//! Services are `#![forbid(unsafe_code)]`, so the instructions live here.
//! Each helper executes one faulting instruction; if the kernel were to
//! resume the process after it, the helper returns and the caller can
//! report that as a failure.

use core::arch::asm;

/// The null address: in the first MiB, which is never mapped in a capOS
/// process, so the fault report shows the classic null dereference.
pub const UNMAPPED_ADDR: u64 = 0;

/// A non-canonical address: bits 63..47 are not all equal.
pub const NON_CANONICAL_ADDR: u64 = 0x8000_0000_0000_0000;

/// Reads from an unmapped user address: `#PF` (vector 14).
pub fn page_fault() {
    // SAFETY: a load into a scratch register from a page that is never
    // mapped; it changes no memory and, if it ever completed, only the
    // scratch register.
    unsafe {
        asm!(
            "mov {tmp}, qword ptr [{addr}]",
            addr = in(reg) UNMAPPED_ADDR,
            tmp = lateout(reg) _,
            options(nostack, readonly, preserves_flags),
        )
    }
}

/// Reads from a non-canonical address (not through RSP or RBP, which would
/// raise `#SS` instead): `#GP` (vector 13).
pub fn general_protection() {
    // SAFETY: as for `page_fault`: a load into a scratch register that
    // cannot succeed and writes no memory.
    unsafe {
        asm!(
            "mov {tmp}, qword ptr [{addr}]",
            addr = in(reg) NON_CANONICAL_ADDR,
            tmp = lateout(reg) _,
            options(nostack, readonly, preserves_flags),
        )
    }
}

/// Executes `ud2`: `#UD` (vector 6).
pub fn invalid_opcode() {
    // SAFETY: `ud2` touches no memory and no registers.
    unsafe { asm!("ud2", options(nostack, nomem, preserves_flags)) }
}

/// Divides by zero: `#DE` (vector 0).
pub fn divide_error() {
    // SAFETY: `div` reads RDX:RAX and the divisor register and writes RAX
    // and RDX (declared as clobbered) and the flags; no memory.
    unsafe {
        asm!(
            "div {divisor}",
            divisor = in(reg) 0u64,
            inout("rax") 1u64 => _,
            inout("rdx") 0u64 => _,
            options(nostack, nomem),
        )
    }
}

/// Executes an x87 instruction (`fninit`): #NM, since the kernel keeps the
/// FPU disabled (CR0.EM) while it switches no FPU state.
pub fn x87() {
    // SAFETY: only raises #NM; FNINIT would otherwise just reset x87 state.
    unsafe { asm!("fninit", options(nostack, nomem)) }
}

/// Sets RFLAGS.NT and RFLAGS.AC in this process. Neither may leak into the
/// kernel: SYSCALL masks both, and trap entry clears AC (a kernel IRETQ with
/// NT set would fault; kernel code running with AC set would bypass SMAP).
pub fn set_nt_and_ac() {
    // SAFETY: POPF in ring 3 may set NT and AC (IOPL 0 only keeps IF and
    // IOPL unchanged); no memory is touched beyond the pushed word.
    unsafe {
        asm!(
            "pushfq",
            "or qword ptr [rsp], {bits}",
            "popfq",
            bits = const (1u64 << 14) | (1u64 << 18),
        )
    }
}

/// Writes one byte at `addr` (for tests that expect the write to fault,
/// such as writing a page made read-only).
pub fn write_byte(addr: u64, value: u8) {
    // SAFETY: deliberately writes wherever the caller says; the kernel
    // decides whether the page allows it (and kills the process if not).
    unsafe { core::ptr::write_volatile(addr as *mut u8, value) }
}
