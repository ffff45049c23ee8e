//! Deliberate CPU exceptions, for the kernel's fault test modes. Each
//! function raises exactly one exception kind from kernel mode; if the trap
//! handler returns, so does the function (it never does for these kinds).

/// Address used for the page-fault test: canonical, in the lower half,
/// never mapped in the kernel tables.
pub const UNMAPPED_ADDRESS: u64 = 0x0000_0000_dead_b000;
/// Address used for the general-protection test: non-canonical.
pub const NON_CANONICAL_ADDRESS: u64 = 0xdead_beef_0000_0000;

/// Reads [`UNMAPPED_ADDRESS`]: #PF with CR2 = that address.
pub fn page_fault() {
    // SAFETY: deliberately faults; the read has no other effect. RAX is
    // declared clobbered.
    unsafe {
        core::arch::asm!("mov rax, [{a}]", a = in(reg) UNMAPPED_ADDRESS, out("rax") _, options(nostack));
    }
}

/// Reads [`NON_CANONICAL_ADDRESS`]: #GP(0).
pub fn general_protection() {
    // SAFETY: as above.
    unsafe {
        core::arch::asm!("mov rax, [{a}]", a = in(reg) NON_CANONICAL_ADDRESS, out("rax") _, options(nostack));
    }
}

/// Executes UD2: #UD.
pub fn invalid_opcode() {
    // SAFETY: UD2 only raises #UD.
    unsafe { core::arch::asm!("ud2", options(nostack)) };
}

/// Divides by zero with DIV: #DE.
pub fn divide_error() {
    // SAFETY: DIV with a zero divisor only raises #DE; RAX/RDX are clobbered.
    unsafe {
        core::arch::asm!(
            "xor edx, edx",
            "div {d}",
            d = in(reg) 0u64,
            inout("rax") 1u64 => _,
            out("rdx") _,
            options(nostack),
        );
    }
}

/// Executes INT3: #BP.
pub fn breakpoint() {
    // SAFETY: INT3 only raises #BP.
    unsafe { core::arch::asm!("int3", options(nostack)) };
}
