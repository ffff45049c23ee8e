//! Trap vectors, the saved-register frame the entry stubs (`asm/trap.S`)
//! build, and IDT construction.
//!
//! The stubs call the kernel's `trap_dispatch(&mut TrapFrame)`; what happens
//! on each vector is kernel policy.

use crate::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::VirtAddr;

core::arch::global_asm!(include_str!("asm/trap.S"), options(att_syntax));

/// Interrupt vectors the kernel assigns.
pub mod vector {
    /// Local APIC timer.
    pub const TIMER: u8 = 32;
    /// Wake-up / reschedule IPI.
    pub const IPI_WAKE: u8 = 33;
    /// TLB shoot-down IPI.
    pub const IPI_TLB: u8 = 34;
    /// Stop IPI: the receiving CPU halts (panic on another CPU).
    pub const IPI_STOP: u8 = 35;
    /// Local APIC error interrupt.
    pub const APIC_ERROR: u8 = 39;
    /// Local APIC spurious interrupt.
    pub const SPURIOUS: u8 = 255;
    /// Remapped legacy PIC lines (masked; only spurious IRQs arrive).
    pub const LEGACY_PIC: core::ops::RangeInclusive<u8> =
        crate::pic::PIC_VECTOR_BASE..=crate::pic::PIC_VECTOR_BASE + 15;
}

/// Vectors that have an entry stub, in the order of `trap_stub_table`.
pub const STUB_VECTORS: [u8; STUB_COUNT] = {
    let mut v = [0u8; STUB_COUNT];
    let mut i = 0;
    while i < STUB_COUNT - 1 {
        v[i] = i as u8;
        i += 1;
    }
    v[STUB_COUNT - 1] = 255;
    v
};

/// Number of entry stubs: vectors 0-63 (exceptions, APIC, remapped PIC) and 255.
pub const STUB_COUNT: usize = 65;

extern "C" {
    static trap_stub_table: [u64; STUB_COUNT];
}

/// Registers saved on trap entry, lowest address first. Layout is fixed by
/// `trap_common` in `asm/trap.S`.
#[repr(C)]
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Vector number pushed by the stub.
    pub vector: u64,
    /// CPU error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);
const _: () = assert!(core::mem::offset_of!(TrapFrame, vector) == 15 * 8);

impl TrapFrame {
    /// True if the trap interrupted ring 3.
    pub fn from_user(&self) -> bool {
        self.cs & 3 != 0
    }
}

/// Exception names by vector, for reports.
pub fn exception_name(vector: u64) -> &'static str {
    const NAMES: [&str; 32] = [
        "divide error",
        "debug",
        "non-maskable interrupt",
        "breakpoint",
        "overflow",
        "bound range exceeded",
        "invalid opcode",
        "device not available",
        "double fault",
        "coprocessor segment overrun",
        "invalid TSS",
        "segment not present",
        "stack-segment fault",
        "general protection fault",
        "page fault",
        "reserved",
        "x87 floating-point error",
        "alignment check",
        "machine check",
        "SIMD floating-point error",
        "virtualization exception",
        "control protection exception",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "hypervisor injection exception",
        "VMM communication exception",
        "security exception",
        "reserved",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

/// Points every stubbed vector of `idt` at its entry stub. Double fault,
/// NMI and machine check run on their own IST stacks so they work even when
/// the current stack is gone.
pub fn fill_idt(idt: &mut InterruptDescriptorTable) {
    // SAFETY: trap_stub_table is a read-only table emitted by trap.S.
    let stubs: &[u64; STUB_COUNT] = unsafe { &trap_stub_table };
    for (i, &vec) in STUB_VECTORS.iter().enumerate() {
        let addr = VirtAddr::new(stubs[i]);
        // SAFETY: each stub follows the interrupt-gate calling convention
        // (handles the optional error code, returns with IRETQ), and the IST
        // indices name stacks every CPU installs in its TSS before loading
        // this IDT.
        unsafe {
            match vec {
                0 => drop(idt.divide_error.set_handler_addr(addr)),
                1 => drop(idt.debug.set_handler_addr(addr)),
                2 => drop(
                    idt.non_maskable_interrupt
                        .set_handler_addr(addr)
                        .set_stack_index(IST_NMI),
                ),
                3 => drop(idt.breakpoint.set_handler_addr(addr)),
                4 => drop(idt.overflow.set_handler_addr(addr)),
                5 => drop(idt.bound_range_exceeded.set_handler_addr(addr)),
                6 => drop(idt.invalid_opcode.set_handler_addr(addr)),
                7 => drop(idt.device_not_available.set_handler_addr(addr)),
                8 => drop(
                    idt.double_fault
                        .set_handler_addr(addr)
                        .set_stack_index(IST_DOUBLE_FAULT),
                ),
                10 => drop(idt.invalid_tss.set_handler_addr(addr)),
                11 => drop(idt.segment_not_present.set_handler_addr(addr)),
                12 => drop(idt.stack_segment_fault.set_handler_addr(addr)),
                13 => drop(idt.general_protection_fault.set_handler_addr(addr)),
                14 => drop(idt.page_fault.set_handler_addr(addr)),
                16 => drop(idt.x87_floating_point.set_handler_addr(addr)),
                17 => drop(idt.alignment_check.set_handler_addr(addr)),
                18 => drop(
                    idt.machine_check
                        .set_handler_addr(addr)
                        .set_stack_index(IST_MACHINE_CHECK),
                ),
                19 => drop(idt.simd_floating_point.set_handler_addr(addr)),
                20 => drop(idt.virtualization.set_handler_addr(addr)),
                21 => drop(idt.cp_protection_exception.set_handler_addr(addr)),
                28 => drop(idt.hv_injection_exception.set_handler_addr(addr)),
                29 => drop(idt.vmm_communication_exception.set_handler_addr(addr)),
                30 => drop(idt.security_exception.set_handler_addr(addr)),
                // Reserved exception vectors have no typed field; the CPU
                // never raises them.
                9 | 15 | 22..=27 | 31 => {}
                v => drop(idt[v].set_handler_addr(addr)),
            }
        }
    }
}
