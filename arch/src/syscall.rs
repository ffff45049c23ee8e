//! SYSCALL/SYSRET set-up, the entry stub in `asm/syscall.S`, and the
//! context-switch primitives the scheduler uses.

use crate::gdt::Selectors;
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::VirtAddr;

core::arch::global_asm!(include_str!("asm/syscall.S"), options(att_syntax));

extern "C" {
    fn syscall_entry();
    /// First instruction of every new thread (see `asm/syscall.S`).
    pub fn thread_first_entry();
    /// Saves callee-saved registers and RSP to `*save`, switches to `load`.
    ///
    /// # Safety
    /// `load` must be a stack pointer saved by `context_switch` (or prepared
    /// like one for `thread_first_entry`), whose stack stays alive; interrupts
    /// must be off.
    pub fn context_switch(save: *mut u64, load: u64);
}

/// Address of the SYSCALL entry stub (what LSTAR holds).
pub fn entry_address() -> u64 {
    syscall_entry as *const () as u64
}

/// Enables SYSCALL on this CPU: EFER.SCE, STAR selectors, LSTAR entry, and
/// SFMASK clearing IF, DF, TF, AC and NT on entry (AC so SMAP stays
/// enforced; NT because ring 3 can set it with POPF, SYSCALL does not clear
/// it, and a kernel IRETQ with NT set raises #GP: the flag would otherwise
/// reach the syscall's IRETQ exit, or any trap frame a context switch
/// resumes from this stack, and halt the CPU).
pub fn init(sel: &Selectors) {
    // SAFETY: the selectors come from this CPU's loaded GDT in the order
    // STAR requires (checked by Star::write); the entry point is the stub
    // above; enabling SCE only makes SYSCALL legal.
    unsafe {
        Star::write(
            sel.user_code,
            sel.user_data,
            sel.kernel_code,
            sel.kernel_data,
        )
        .expect("GDT selector order fits SYSCALL/SYSRET");
        LStar::write(VirtAddr::new(entry_address()));
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::ALIGNMENT_CHECK
                | RFlags::NESTED_TASK,
        );
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
    }
}
