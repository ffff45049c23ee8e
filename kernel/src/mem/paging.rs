//! The kernel's page tables: a direct map of physical memory, the kernel
//! image mapped section by section with its own permissions, and helpers
//! to map single kernel pages (heap, stacks) afterwards and to unlink the
//! stack window's page tables once they map nothing.
//!
//! Page-table frames are reached through the direct map. The tables are
//! built while the boot tables are still active; their direct map covers
//! 0..4 GiB, and early frames come from the bottom of RAM, which the build
//! checks.

use super::{frame, phys_to_virt, DIRECT_MAP_BASE, HEAP_BASE, STACK_BASE, STACK_WINDOW};
use crate::sync::IrqLock;
use capos_arch::boot::{KernelLayout, Section, KERNEL_OFFSET};
use capos_arch::cpu::Features;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::{MapToError, UnmapError};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageSize, PageTable, PageTableFlags as F,
    PhysFrame, Size1GiB, Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

/// Physical address of the kernel PML4 once built.
static KERNEL_PML4: AtomicU64 = AtomicU64::new(0);
/// Serialises changes to the kernel half of the page tables.
static KERNEL_MAP_LOCK: IrqLock<()> = IrqLock::new(());
/// PGE is used for kernel mappings only when the CPU has it.
static GLOBAL_FLAG: AtomicU64 = AtomicU64::new(0);

/// Physical memory below this is uncached in the direct map when it is not
/// RAM (the 3-4 GiB window holds the local APIC, IO APIC and PCI holes).
const MMIO_WINDOW: (u64, u64) = (3 << 30, 4 << 30);

/// Hands page-table frames from the global frame allocator to the
/// `x86_64` mapper.
struct TableFrames;

// SAFETY: every frame returned comes from the global allocator, which never
// hands the same frame out twice while it is held.
unsafe impl FrameAllocator<Size4KiB> for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let phys = frame::alloc()?;
        Some(PhysFrame::containing_address(PhysAddr::new(phys)))
    }
}

/// Why the kernel tables could not be built.
#[derive(Debug)]
pub enum PagingError {
    /// The frame allocator ran dry.
    OutOfFrames,
    /// A mapping collided with an existing one (a layout bug).
    AlreadyMapped(u64),
}

impl core::fmt::Display for PagingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PagingError::OutOfFrames => f.write_str("out of physical frames for page tables"),
            PagingError::AlreadyMapped(va) => write!(f, "address {va:#x} is already mapped"),
        }
    }
}

impl<S: PageSize> From<MapToError<S>> for PagingError {
    fn from(e: MapToError<S>) -> Self {
        match e {
            MapToError::FrameAllocationFailed => PagingError::OutOfFrames,
            MapToError::ParentEntryHugePage => PagingError::AlreadyMapped(0),
            MapToError::PageAlreadyMapped(frame) => {
                PagingError::AlreadyMapped(frame.start_address().as_u64())
            }
        }
    }
}

/// # Safety
/// `pml4_phys` must be a page-table root the caller owns exclusively (or
/// guards with `KERNEL_MAP_LOCK`), reachable through the direct map.
unsafe fn mapper_for(pml4_phys: u64) -> OffsetPageTable<'static> {
    let table = phys_to_virt(pml4_phys) as *mut PageTable;
    // SAFETY: per the function contract the table is mapped, valid and not
    // aliased mutably elsewhere; the direct map offset is correct for every
    // page-table frame the kernel allocates.
    unsafe { OffsetPageTable::new(&mut *table, VirtAddr::new(DIRECT_MAP_BASE)) }
}

fn global() -> F {
    F::from_bits_truncate(GLOBAL_FLAG.load(Ordering::Relaxed))
}

/// Builds the kernel page tables: the direct map of `0..direct_map_end`
/// (1 GiB pages where the CPU has them, else 2 MiB), the kernel sections with
/// their permissions, and PML4 entries for the heap and stack windows (so
/// every future address space can share them). Returns the PML4 address.
pub fn build_kernel_tables(
    layout: &KernelLayout,
    direct_map_end: u64,
    ram: &[capos_kcore::range::PhysRange],
    features: &Features,
) -> Result<u64, PagingError> {
    if features.pge {
        GLOBAL_FLAG.store(F::GLOBAL.bits(), Ordering::Relaxed);
    }
    let pml4 = frame::alloc_zeroed().ok_or(PagingError::OutOfFrames)?;
    assert!(
        pml4 < (4 << 30),
        "early page-table frame above the boot direct map"
    );
    // SAFETY: the new root is ours alone until it is loaded.
    let mut mapper = unsafe { mapper_for(pml4) };
    let mut alloc = TableFrames;

    // Direct map: RW, NX, never user-accessible.
    let base = F::PRESENT | F::WRITABLE | F::NO_EXECUTE | global();
    let is_ram = |start: u64, len: u64| ram.iter().any(|r| r.start < start + len && start < r.end);
    if features.page1g {
        let mut p = 0;
        while p < direct_map_end {
            let flags = mmio_flags(base, p, Size1GiB::SIZE, &is_ram);
            let page = Page::<Size1GiB>::containing_address(VirtAddr::new(phys_to_virt(p)));
            let fr = PhysFrame::<Size1GiB>::containing_address(PhysAddr::new(p));
            // SAFETY: the direct map aliases physical memory only for kernel
            // use; nothing else is mapped in this window.
            unsafe { mapper.map_to(page, fr, flags, &mut alloc)?.ignore() };
            p += Size1GiB::SIZE;
        }
    } else {
        let mut p = 0;
        while p < direct_map_end {
            let flags = mmio_flags(base, p, Size2MiB::SIZE, &is_ram);
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(phys_to_virt(p)));
            let fr = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(p));
            // SAFETY: as above.
            unsafe { mapper.map_to(page, fr, flags, &mut alloc)?.ignore() };
            p += Size2MiB::SIZE;
        }
    }

    // Kernel image, one 4 KiB page at a time, each section with its rights.
    let g = global();
    map_section(&mut mapper, &layout.text, F::PRESENT | g)?;
    map_section(&mut mapper, &layout.rodata, F::PRESENT | F::NO_EXECUTE | g)?;
    map_section(
        &mut mapper,
        &layout.data,
        F::PRESENT | F::WRITABLE | F::NO_EXECUTE | g,
    )?;
    map_section(
        &mut mapper,
        &layout.boot_stack,
        F::PRESENT | F::WRITABLE | F::NO_EXECUTE | g,
    )?;
    // layout.boot_stack_guard is deliberately left unmapped.

    // Heap and stack windows: create their PDPTs now so the PML4 entries
    // never change after the first address space copies them.
    for window in [HEAP_BASE, STACK_BASE] {
        let pdpt = frame::alloc_zeroed().ok_or(PagingError::OutOfFrames)?;
        let idx = (window >> 39) & 0x1ff;
        // SAFETY: `pml4` is our exclusive, zeroed-then-filled root table.
        let root = unsafe { &mut *(phys_to_virt(pml4) as *mut PageTable) };
        root[idx as usize].set_addr(PhysAddr::new(pdpt), F::PRESENT | F::WRITABLE);
    }

    KERNEL_PML4.store(pml4, Ordering::Release);
    Ok(pml4)
}

fn mmio_flags(base: F, start: u64, len: u64, is_ram: &impl Fn(u64, u64) -> bool) -> F {
    let in_window = start < MMIO_WINDOW.1 && start + len > MMIO_WINDOW.0;
    if in_window && !is_ram(start, len) {
        base | F::NO_CACHE | F::WRITE_THROUGH
    } else {
        base
    }
}

fn map_section(mapper: &mut OffsetPageTable<'_>, s: &Section, flags: F) -> Result<(), PagingError> {
    let mut va = s.start;
    while va < s.end {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
        let fr = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(va - KERNEL_OFFSET));
        // SAFETY: each kernel-image page maps to its own load address; the
        // sections do not overlap (the linker script page-aligns them).
        unsafe { mapper.map_to(page, fr, flags, &mut TableFrames)?.ignore() };
        va += Size4KiB::SIZE;
    }
    Ok(())
}

/// Loads the kernel tables on the calling CPU.
///
/// # Safety
/// `build_kernel_tables` must have succeeded, and the caller's stack and
/// code must be mapped in them (true for the kernel image and kernel stacks).
pub unsafe fn activate() {
    let pml4 = KERNEL_PML4.load(Ordering::Acquire);
    let fr = PhysFrame::containing_address(PhysAddr::new(pml4));
    // SAFETY: per the contract, everything the CPU touches next is mapped.
    unsafe { Cr3::write(fr, Cr3Flags::empty()) };
}

/// Physical address of the kernel PML4 (0 before it is built).
pub fn kernel_pml4() -> u64 {
    KERNEL_PML4.load(Ordering::Acquire)
}

/// Maps one fresh frame at kernel virtual address `va` (heap or stack
/// window), read-write and no-execute. Returns the frame.
pub fn map_kernel_page(va: u64) -> Result<u64, PagingError> {
    let phys = frame::alloc_zeroed().ok_or(PagingError::OutOfFrames)?;
    let _guard = KERNEL_MAP_LOCK.lock();
    // SAFETY: the kernel root is only changed under KERNEL_MAP_LOCK.
    let mut mapper = unsafe { mapper_for(kernel_pml4()) };
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
    let fr = PhysFrame::containing_address(PhysAddr::new(phys));
    let flags = F::PRESENT | F::WRITABLE | F::NO_EXECUTE | global();
    // SAFETY: `va` lies in a window only this module hands out, and `fr`
    // is a fresh frame nobody else maps.
    match unsafe { mapper.map_to(page, fr, flags, &mut TableFrames) } {
        Ok(flush) => {
            flush.flush();
            Ok(phys)
        }
        Err(e) => {
            let _ = frame::free(phys);
            Err(match e {
                MapToError::FrameAllocationFailed => PagingError::OutOfFrames,
                _ => PagingError::AlreadyMapped(va),
            })
        }
    }
}

/// True if `va` is mapped in the kernel tables (for fault reports). Walks
/// under the map lock when it can be had; a fault taken while this CPU
/// holds it walks without, where a racing unlink can make the answer
/// wrong but not make the walk leave the direct map for long (tables are
/// reached through it).
pub fn is_mapped(va: u64) -> bool {
    use x86_64::structures::paging::Translate;
    if kernel_pml4() == 0 {
        return false;
    }
    let _guard = KERNEL_MAP_LOCK.try_lock_for(10_000);
    // SAFETY: a read-only walk of tables reached through the direct map;
    // with the lock held no table is unlinked meanwhile.
    let mapper = unsafe { mapper_for(kernel_pml4()) };
    mapper.translate_addr(VirtAddr::new(va)).is_some()
}

/// Unlinks the page tables of the stack window that map nothing any more:
/// each page table (level 1) covering a 2 MiB region that `regions` names
/// (by any address in it) whose 512 entries are all unused, then each page
/// directory (level 2) left with no table. Their frames go to `out` (which
/// must have room for two per region: nothing is allocated here), and the
/// caller frees them only after every CPU has dropped its cached links to
/// them (`tlb::flush_kernel_everywhere`). The window's PDPT, linked from
/// every address space, always stays.
pub fn unlink_empty_stack_tables(regions: &[u64], out: &mut alloc::vec::Vec<u64>) {
    let _guard = KERNEL_MAP_LOCK.lock();
    let root = kernel_pml4();
    if root == 0 {
        return;
    }
    let index = |va: u64, level: u32| ((va >> (12 + 9 * level)) & 0x1ff) as usize;
    // SAFETY: the kernel root is only changed under KERNEL_MAP_LOCK (held).
    let pml4 = unsafe { table_at(root) };
    let Ok(pdpt_frame) = pml4[index(STACK_BASE, 3)].frame() else {
        return;
    };
    // SAFETY: as above, for the stack window's PDPT.
    let pdpt = unsafe { table_at(pdpt_frame.start_address().as_u64()) };
    for &va in regions {
        if !(STACK_BASE..STACK_BASE + STACK_WINDOW).contains(&va) {
            continue;
        }
        let Ok(pd_frame) = pdpt[index(va, 2)].frame() else {
            continue;
        };
        // SAFETY: as above, for a page directory linked from that PDPT.
        let pd = unsafe { table_at(pd_frame.start_address().as_u64()) };
        if let Ok(pt_frame) = pd[index(va, 1)].frame() {
            // SAFETY: as above, for a page table linked from that directory.
            let pt = unsafe { table_at(pt_frame.start_address().as_u64()) };
            if pt.iter().all(|e| e.is_unused()) && out.len() < out.capacity() {
                pd[index(va, 1)].set_unused();
                out.push(pt_frame.start_address().as_u64());
            }
        }
        if pd.iter().all(|e| e.is_unused()) && out.len() < out.capacity() {
            pdpt[index(va, 2)].set_unused();
            out.push(pd_frame.start_address().as_u64());
        }
    }
}

/// The page table in frame `phys`, through the direct map.
///
/// # Safety
/// `phys` must be a page-table frame of the kernel tables, and the caller
/// must hold `KERNEL_MAP_LOCK` for as long as it uses the reference (no
/// other reference to the table is live meanwhile).
unsafe fn table_at(phys: u64) -> &'static mut PageTable {
    // SAFETY: per the contract the frame holds a page table, the direct map
    // covers it, and the lock makes this the only reference in use.
    unsafe { &mut *(phys_to_virt(phys) as *mut PageTable) }
}

/// Returns page-table frames unlinked by [`unlink_empty_stack_tables`] to
/// the frame allocator. Call only after every CPU has flushed.
pub fn free_table_frames(frames: &[u64]) {
    for &phys in frames {
        let _ = frame::free(phys);
    }
}

/// Unmaps the kernel page at `va` and frees its frame (local TLB flush only:
/// callers unmap pages no other CPU can be using).
pub fn unmap_kernel_page(va: u64) -> Result<(), UnmapError> {
    let _guard = KERNEL_MAP_LOCK.lock();
    // SAFETY: as in `map_kernel_page`.
    let mut mapper = unsafe { mapper_for(kernel_pml4()) };
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
    let (fr, flush) = mapper.unmap(page)?;
    flush.flush();
    let _ = frame::free(fr.start_address().as_u64());
    Ok(())
}
