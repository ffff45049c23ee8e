//! Per-CPU global descriptor table and task-state segment.
//!
//! Every CPU gets its own GDT and TSS so that the TSS's RSP0 and interrupt
//! stack table can point at that CPU's own stacks. The selector order is
//! fixed by SYSCALL/SYSRET: STAR takes the kernel CS with the kernel SS right
//! after it, and the user SS followed by the user CS (64-bit) at +8/+16 of
//! the SYSRET base.

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, GS, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slot (0-based, as the IDT entry wants it) for the double-fault handler.
pub const IST_DOUBLE_FAULT: u16 = 0;
/// IST slot for non-maskable interrupts.
pub const IST_NMI: u16 = 1;
/// IST slot for machine checks.
pub const IST_MACHINE_CHECK: u16 = 2;
/// Number of IST stacks each CPU needs.
pub const IST_COUNT: usize = 3;

/// The selectors of a loaded per-CPU GDT.
#[derive(Clone, Copy, Debug)]
pub struct Selectors {
    /// Ring-0 64-bit code (0x08).
    pub kernel_code: SegmentSelector,
    /// Ring-0 data (0x10).
    pub kernel_data: SegmentSelector,
    /// Ring-3 data (0x1b).
    pub user_data: SegmentSelector,
    /// Ring-3 64-bit code (0x23).
    pub user_code: SegmentSelector,
    /// This CPU's TSS (0x28).
    pub tss: SegmentSelector,
}

/// One CPU's descriptor tables. Must live for ever once loaded.
pub struct CpuTables {
    tss: TaskStateSegment,
    gdt: GlobalDescriptorTable,
}

impl CpuTables {
    /// Tables with an empty TSS; fill it with [`CpuTables::set_stacks`].
    pub const fn new() -> Self {
        Self {
            tss: TaskStateSegment::new(),
            gdt: GlobalDescriptorTable::new(),
        }
    }

    /// Records the ring-0 entry stack (RSP0) and the IST stack tops.
    pub fn set_stacks(&mut self, rsp0: u64, ist_tops: [u64; IST_COUNT]) {
        self.tss.privilege_stack_table[0] = VirtAddr::new(rsp0);
        for (slot, top) in ist_tops.into_iter().enumerate() {
            self.tss.interrupt_stack_table[slot] = VirtAddr::new(top);
        }
    }

    /// Builds the GDT around this CPU's TSS and loads GDT, segment registers
    /// and task register on the calling CPU. Returns the selectors and a
    /// handle for changing RSP0 later.
    pub fn load(&'static mut self) -> (Selectors, TssHandle) {
        let handle = TssHandle(&raw mut self.tss);
        // `self` is 'static, so both halves are 'static borrows: the TSS
        // address written into the descriptor stays valid for ever.
        let CpuTables { tss, gdt } = self;
        let tss: &'static TaskStateSegment = tss;
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(tss));
        let gdt: &'static GlobalDescriptorTable = gdt;
        gdt.load();
        // SAFETY: the selectors come from the GDT just loaded; the null
        // selector is valid for DS/ES/FS/GS in 64-bit mode; the TSS
        // descriptor is fresh (not busy) and describes a 'static TSS.
        unsafe {
            CS::set_reg(kernel_code);
            SS::set_reg(kernel_data);
            DS::set_reg(SegmentSelector(0));
            ES::set_reg(SegmentSelector(0));
            FS::set_reg(SegmentSelector(0));
            GS::set_reg(SegmentSelector(0));
            load_tss(tss_sel);
        }
        let sel = Selectors {
            kernel_code,
            kernel_data,
            user_data,
            user_code,
            tss: tss_sel,
        };
        (sel, handle)
    }
}

impl Default for CpuTables {
    fn default() -> Self {
        Self::new()
    }
}

/// Lets the owning CPU change its TSS's ring-0 stack (RSP0) on every
/// context switch.
#[derive(Clone, Copy, Debug)]
pub struct TssHandle(*mut TaskStateSegment);

// SAFETY: the handle is only used by the CPU that owns the TSS (the kernel
// keeps it in that CPU's scheduler state); Send/Sync only let it be stored
// in a static per-CPU table.
unsafe impl Send for TssHandle {}
// SAFETY: as above.
unsafe impl Sync for TssHandle {}

impl TssHandle {
    /// Sets RSP0, the stack the CPU switches to on a trap from ring 3.
    pub fn set_rsp0(&self, top: u64) {
        // SAFETY: the TSS is 'static; the CPU reads RSP0 only when it takes a
        // trap from ring 3, which cannot happen while this CPU runs this
        // kernel code; the volatile write keeps the store.
        unsafe {
            core::ptr::write_volatile(
                &raw mut (*self.0).privilege_stack_table[0],
                VirtAddr::new(top),
            )
        };
    }
}
