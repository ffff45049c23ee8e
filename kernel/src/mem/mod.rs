//! Kernel memory: the physical frame allocator, the kernel page tables with
//! their direct map, the heap and guarded kernel stacks.
//!
//! Kernel virtual layout (upper half only; the lower half is for processes):
//!
//! | range                         | what                                      |
//! |-------------------------------|-------------------------------------------|
//! | `0xffff_8000_0000_0000` ..    | direct map of physical memory (RW, NX)    |
//! | `0xffff_c000_0000_0000` ..    | kernel heap, grown page by page (RW, NX)  |
//! | `0xffff_d000_0000_0000` ..    | kernel stacks, each above an unmapped guard page |
//! | `0xffff_ffff_8000_0000` ..    | kernel image (text RX, rodata R, data RW) |

pub mod frame;
pub mod heap;
pub mod paging;
pub mod stack;

/// Start of the direct map: virtual = physical + `DIRECT_MAP_BASE`.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Start of the kernel heap window.
pub const HEAP_BASE: u64 = 0xffff_c000_0000_0000;
/// Largest the heap may grow.
pub const HEAP_MAX: u64 = 64 << 30;
/// Start of the kernel stack window.
pub const STACK_BASE: u64 = 0xffff_d000_0000_0000;
/// Size of the stack window.
pub const STACK_WINDOW: u64 = 64 << 30;
/// Page size.
pub const PAGE_SIZE: u64 = 4096;

/// The direct-map address of physical address `phys`.
///
/// Before the kernel's own tables are active only physical 0..4 GiB is
/// mapped there (by the boot assembly).
pub const fn phys_to_virt(phys: u64) -> u64 {
    phys + DIRECT_MAP_BASE
}
