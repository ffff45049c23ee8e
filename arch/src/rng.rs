//! The CPU's random number instructions: feature checks and one attempt
//! each. Retrying and conditioning are the kernel's (`capos_kcore::entropy`).
//!
//! RDRAND and RDSEED write a 64-bit value to a general-purpose register
//! and report success in CF (CF = 1: the register holds a value; CF = 0: the
//! generator had none ready and the register is zero). They touch no
//! memory and no other register; the other arithmetic flags are cleared.

use core::arch::asm;
use raw_cpuid::CpuId;

/// Whether the CPU has RDRAND (CPUID leaf 1, ECX bit 30).
pub fn has_rdrand() -> bool {
    CpuId::new()
        .get_feature_info()
        .is_some_and(|f| f.has_rdrand())
}

/// Whether the CPU has RDSEED (CPUID leaf 7 subleaf 0, EBX bit 18).
pub fn has_rdseed() -> bool {
    CpuId::new()
        .get_extended_feature_info()
        .is_some_and(|f| f.has_rdseed())
}

/// One RDRAND: a value, or `None` if the generator had none (CF = 0).
/// Call only where [`has_rdrand`] said yes (else it raises #UD).
#[inline]
pub fn rdrand64() -> Option<u64> {
    let value: u64;
    let ok: u8;
    // SAFETY: RDRAND writes only `value` and the flags (declared clobbered
    // by default); SETC writes only `ok`. No memory or stack is touched.
    // The caller checked CPUID, so the instruction exists.
    unsafe {
        asm!(
            "rdrand {value}",
            "setc {ok}",
            value = out(reg) value,
            ok = out(reg_byte) ok,
            options(nomem, nostack),
        );
    }
    (ok != 0).then_some(value)
}

/// One RDSEED: a value, or `None` if the source had none (CF = 0). Call
/// only where [`has_rdseed`] said yes (else it raises #UD).
#[inline]
pub fn rdseed64() -> Option<u64> {
    let value: u64;
    let ok: u8;
    // SAFETY: as in `rdrand64`: RDSEED writes only `value` and the flags,
    // SETC only `ok`; no memory; CPUID was checked by the caller.
    unsafe {
        asm!(
            "rdseed {value}",
            "setc {ok}",
            value = out(reg) value,
            ok = out(reg_byte) ok,
            options(nomem, nostack),
        );
    }
    (ok != 0).then_some(value)
}

/// RDRAND if the CPU has it, else `None` (for a CPU with RDSEED whose
/// source ran dry: some have RDSEED and RDRAND, none RDSEED alone, but the
/// check costs little).
pub fn rdrand64_if_present() -> Option<u64> {
    if has_rdrand() {
        rdrand64()
    } else {
        None
    }
}
