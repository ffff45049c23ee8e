//! `_start`, the process entry point, in assembly.
//!
//! Machine state on entry, as the process ABI (`capos_ring::process`)
//! promises: ring 3, 64-bit mode, `RDI` = `RING_ADDR`, `RSI` = pid,
//! `RDX` = `CAPSET_ADDR`, `RSP` = `STACK_TOP` (16-byte aligned, nothing
//! pushed), every other general register zero, `RFLAGS.IF` set. Nothing has
//! been called, so there is no return address: `_start` must never return.
//!
//! `_start` turns that into an ordinary call of the Rust function
//! `start::rt_start(ring_addr, pid, capset_addr)` under the System V ABI.
//! The three values are already in the first three argument registers;
//! `rt_start` never returns (it ends in the `exit` system call).

core::arch::global_asm!(
    ".pushsection .text._start, \"ax\", @progbits",
    ".global _start",
    ".type _start, @function",
    "_start:",
    // No caller frame: a zero RBP ends the frame-pointer chain for
    // backtraces and debuggers.
    "    xor ebp, ebp",
    // The System V ABI requires RSP to be 16-byte aligned at a `call` and
    // the direction flag clear. The kernel promises both; enforce them
    // anyway, since a misaligned stack only shows up much later as a fault
    // in an SSE instruction.
    "    and rsp, -16",
    "    cld",
    // RDI, RSI and RDX pass straight through as the three arguments.
    "    call {rt_start}",
    // rt_start does not return; if it ever did, fault rather than run off
    // the end of the text.
    "    ud2",
    ".size _start, . - _start",
    ".popsection",
    rt_start = sym crate::start::rt_start,
);
