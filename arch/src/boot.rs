//! The multiboot2 entry path (`asm/boot.S`) and the kernel image layout the
//! linker script (`kernel/linker.ld`) exports.
//!
//! The kernel is linked at `KERNEL_OFFSET + physical`: GRUB loads it at
//! physical 2 MiB and the boot assembly maps the window before jumping to
//! `kernel_entry`.

core::arch::global_asm!(include_str!("asm/boot.S"), options(att_syntax));

/// Virtual base of the kernel window: virtual = physical + `KERNEL_OFFSET`.
pub const KERNEL_OFFSET: u64 = 0xffff_ffff_8000_0000;

/// Value of EAX a multiboot2 loader passes to the entry point.
pub const MULTIBOOT2_BOOT_MAGIC: u32 = 0x36d7_6289;

extern "C" {
    static __kernel_phys_start: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    static __boot_stack_guard: u8;
    static __boot_stack_bottom: u8;
    static __boot_stack_top: u8;
    static __kernel_end: u8;
    static early_pml4: u8;
}

/// A half-open virtual address range inside the kernel image.
#[derive(Clone, Copy, Debug)]
pub struct Section {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Addresses of the kernel image's sections, as placed by the linker script.
#[derive(Clone, Copy, Debug)]
pub struct KernelLayout {
    /// Physical address of the first byte of the image (the boot sections).
    pub phys_start: u64,
    /// Physical address one past the last byte of the image.
    pub phys_end: u64,
    /// Code: mapped read + execute.
    pub text: Section,
    /// Constants: mapped read-only, no-execute.
    pub rodata: Section,
    /// Data and BSS: mapped read-write, no-execute.
    pub data: Section,
    /// The page below the boot stack: never mapped.
    pub boot_stack_guard: Section,
    /// The boot stack itself: read-write, no-execute.
    pub boot_stack: Section,
    /// Physical address of the early PML4 the AP trampoline uses.
    pub early_pml4_phys: u64,
}

fn addr(sym: &u8) -> u64 {
    sym as *const u8 as u64
}

/// Reads the section addresses the linker script exported.
pub fn kernel_layout() -> KernelLayout {
    // SAFETY: these are linker-defined symbols; only their addresses are
    // taken, their contents are never read.
    unsafe {
        KernelLayout {
            phys_start: addr(&__kernel_phys_start),
            phys_end: addr(&__kernel_end) - KERNEL_OFFSET,
            text: Section {
                start: addr(&__text_start),
                end: addr(&__text_end),
            },
            rodata: Section {
                start: addr(&__rodata_start),
                end: addr(&__rodata_end),
            },
            data: Section {
                start: addr(&__data_start),
                end: addr(&__data_end),
            },
            boot_stack_guard: Section {
                start: addr(&__boot_stack_guard),
                end: addr(&__boot_stack_bottom),
            },
            boot_stack: Section {
                start: addr(&__boot_stack_bottom),
                end: addr(&__boot_stack_top),
            },
            early_pml4_phys: addr(&early_pml4),
        }
    }
}
