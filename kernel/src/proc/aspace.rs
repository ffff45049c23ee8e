//! A process address space: its own PML4 whose user half (entries 0-255)
//! belongs to the process and whose kernel half is copied from the kernel
//! tables (shared, never user-accessible). User memory is reached by the
//! kernel only through the direct map, after a permission check against
//! these tables: the kernel never dereferences a user pointer.
//!
//! TLBs: each space keeps the set of CPUs that may hold its entries (see
//! `crate::tlb`); every change that removes or alters a mapping is flushed
//! on all of them before it returns, and frames are freed only after that.

use crate::mem::{frame, paging, phys_to_virt, PAGE_SIZE};
use crate::sync::IrqLock;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::structures::paging::{PageTable, PageTableFlags as F};

/// First address past the user half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;

/// Frames currently held by all address spaces (pages and page tables);
/// returns to its earlier value when every process has exited.
static FRAMES_HELD: AtomicU64 = AtomicU64::new(0);

/// Frames all address spaces hold right now.
pub fn frames_held() -> u64 {
    FRAMES_HELD.load(Ordering::Relaxed)
}

/// Page permissions for a user mapping (W^X: never both write and execute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserPerm {
    /// Read-only, no execute.
    Read,
    /// Read-write, no execute.
    ReadWrite,
    /// Read and execute.
    ReadExec,
}

/// Why a user mapping or access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmError {
    /// The frame allocator ran dry.
    OutOfMemory,
    /// The address is not in the user half or not page aligned.
    BadAddress,
    /// The page is already mapped.
    AlreadyMapped,
    /// A page of the range is unmapped or lacks the needed permission.
    Fault,
}

/// Page-table flags of a user leaf entry with `perm` (W^X by construction).
fn leaf_flags(perm: UserPerm) -> F {
    F::PRESENT
        | F::USER_ACCESSIBLE
        | match perm {
            UserPerm::Read => F::NO_EXECUTE,
            UserPerm::ReadWrite => F::WRITABLE | F::NO_EXECUTE,
            UserPerm::ReadExec => F::empty(),
        }
}

struct Tables {
    pml4: u64,
}

/// One process's page tables.
pub struct AddressSpace {
    tables: IrqLock<Tables>,
    frames: AtomicU64,
    /// CPUs that may hold TLB entries of this space (bit per CPU index);
    /// boxed so its address stays fixed while CPUs point at it.
    cpus: Box<AtomicU64>,
}

fn alloc_frame() -> Result<u64, VmError> {
    let f = frame::alloc_zeroed().ok_or(VmError::OutOfMemory)?;
    FRAMES_HELD.fetch_add(1, Ordering::Relaxed);
    Ok(f)
}

fn free_frame(f: u64) {
    FRAMES_HELD.fetch_sub(1, Ordering::Relaxed);
    let _ = frame::free(f);
}

/// # Safety
/// `phys` must be a page-table frame owned by an address space.
unsafe fn table(phys: u64) -> &'static mut PageTable {
    // SAFETY: page-table frames are reached through the direct map; the
    // caller holds the address-space lock, so nothing else mutates it.
    unsafe { &mut *(phys_to_virt(phys) as *mut PageTable) }
}

impl AddressSpace {
    /// A new space with an empty user half and the kernel half shared.
    pub fn new() -> Result<Self, VmError> {
        let pml4 = alloc_frame()?;
        // SAFETY: `pml4` is a fresh frame, ours alone. The kernel root is
        // only read, through a shared reference: its entries 256-511 are all
        // created at boot (paging.rs) and never change afterwards, so reading
        // them while another CPU maps kernel pages (deeper levels, under
        // KERNEL_MAP_LOCK) is race-free.
        unsafe {
            let k = &*(phys_to_virt(paging::kernel_pml4()) as *const PageTable);
            let t = table(pml4);
            for i in 256..512 {
                t[i] = k[i].clone();
            }
        }
        Ok(Self {
            tables: IrqLock::new(Tables { pml4 }),
            frames: AtomicU64::new(1),
            cpus: Box::new(AtomicU64::new(0)),
        })
    }

    /// Physical address of the PML4 (for CR3).
    pub fn root(&self) -> u64 {
        self.tables.lock().pml4
    }

    /// Loads this space on the calling CPU (interrupts off; scheduler only).
    pub fn activate(&self) {
        crate::tlb::switch_to(self.root(), &self.cpus);
    }

    /// Makes every CPU that still has this space loaded (idle CPUs keep the
    /// last one) switch away, and waits for them. Call once its threads are
    /// gone; dropping the space does it too.
    pub fn release_cpus(&self) {
        crate::tlb::release(self.root(), &self.cpus);
    }

    /// Flushes `[start, end)` on every CPU that may cache it, and waits.
    fn flush_range(&self, start: u64, end: u64) {
        let flush = capos_kcore::shootdown::plan(start, end);
        crate::tlb::shoot(self.root(), &self.cpus, flush);
    }

    /// Frames this space holds (pages and tables).
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Maps a fresh zeroed frame at user page `va` and returns its physical
    /// address.
    pub fn map_new(&self, va: u64, perm: UserPerm) -> Result<u64, VmError> {
        if !va.is_multiple_of(PAGE_SIZE) || va >= USER_END {
            return Err(VmError::BadAddress);
        }
        let t = self.tables.lock();
        let mut phys = t.pml4;
        for level in [39u64, 30, 21] {
            let idx = ((va >> level) & 0x1ff) as usize;
            // SAFETY: `phys` is one of this space's table frames.
            let entry = unsafe { &mut table(phys)[idx] };
            if entry.is_unused() {
                let next = alloc_frame()?;
                self.frames.fetch_add(1, Ordering::Relaxed);
                entry.set_addr(
                    x86_64::PhysAddr::new(next),
                    F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE,
                );
            }
            phys = entry.addr().as_u64();
        }
        let idx = ((va >> 12) & 0x1ff) as usize;
        // SAFETY: as above.
        let pte = unsafe { &mut table(phys)[idx] };
        if !pte.is_unused() {
            return Err(VmError::AlreadyMapped);
        }
        let page = alloc_frame()?;
        self.frames.fetch_add(1, Ordering::Relaxed);
        pte.set_addr(x86_64::PhysAddr::new(page), leaf_flags(perm));
        Ok(page)
    }

    /// The level-1 entry for user page `va` (tables must exist), for changes.
    fn pte(
        t: &mut Tables,
        va: u64,
    ) -> Option<&mut x86_64::structures::paging::page_table::PageTableEntry> {
        if va >= USER_END {
            return None;
        }
        let mut phys = t.pml4;
        for level in [39u64, 30, 21] {
            let idx = ((va >> level) & 0x1ff) as usize;
            // SAFETY: `phys` is one of this space's table frames; the caller
            // holds the address-space lock.
            let entry = unsafe { &table(phys)[idx] };
            if entry.is_unused() {
                return None;
            }
            phys = entry.addr().as_u64();
        }
        // SAFETY: as above.
        let pte = unsafe { &mut table(phys)[((va >> 12) & 0x1ff) as usize] };
        (!pte.is_unused()).then_some(pte)
    }

    /// Page-aligned, non-empty `[start, end)` in the user half.
    fn user_range(start: u64, end: u64) -> Result<(), VmError> {
        if !start.is_multiple_of(PAGE_SIZE)
            || !end.is_multiple_of(PAGE_SIZE)
            || start >= end
            || end > USER_END
        {
            return Err(VmError::BadAddress);
        }
        Ok(())
    }

    /// Unmaps every page of `[start, end)`, all or nothing (each must be
    /// mapped), shoots the range down on every CPU that may cache it (one
    /// request for the whole range), and only then frees the frames.
    pub fn unmap_range(&self, start: u64, end: u64) -> Result<(), VmError> {
        Self::user_range(start, end)?;
        let mut freed = Vec::with_capacity(((end - start) / PAGE_SIZE) as usize);
        {
            let mut t = self.tables.lock();
            let mut va = start;
            while va < end {
                Self::pte(&mut t, va).ok_or(VmError::Fault)?;
                va += PAGE_SIZE;
            }
            let mut va = start;
            while va < end {
                let pte = Self::pte(&mut t, va).ok_or(VmError::Fault)?;
                freed.push(pte.addr().as_u64());
                pte.set_unused();
                va += PAGE_SIZE;
            }
        }
        self.flush_range(start, end);
        for frame in freed {
            free_frame(frame);
            self.frames.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Gives every page of `[start, end)` the rights `perm`, all or nothing
    /// (each must be mapped), and shoots the range down on every CPU that
    /// may cache it before returning.
    pub fn protect_range(&self, start: u64, end: u64, perm: UserPerm) -> Result<(), VmError> {
        Self::user_range(start, end)?;
        {
            let mut t = self.tables.lock();
            let mut va = start;
            while va < end {
                Self::pte(&mut t, va).ok_or(VmError::Fault)?;
                va += PAGE_SIZE;
            }
            let mut va = start;
            while va < end {
                let pte = Self::pte(&mut t, va).ok_or(VmError::Fault)?;
                let frame = pte.addr();
                pte.set_addr(frame, leaf_flags(perm));
                va += PAGE_SIZE;
            }
        }
        self.flush_range(start, end);
        Ok(())
    }

    /// The frame and flags mapping user page `va`, if any.
    fn lookup(t: &Tables, va: u64) -> Option<(u64, F)> {
        if va >= USER_END {
            return None;
        }
        let mut phys = t.pml4;
        for level in [39u64, 30, 21, 12] {
            let idx = ((va >> level) & 0x1ff) as usize;
            // SAFETY: `phys` is one of this space's table frames.
            let entry = unsafe { &table(phys)[idx] };
            let flags = entry.flags();
            if !flags.contains(F::PRESENT | F::USER_ACCESSIBLE) || flags.contains(F::HUGE_PAGE) {
                return None;
            }
            if level == 12 {
                return Some((entry.addr().as_u64(), flags));
            }
            phys = entry.addr().as_u64();
        }
        None
    }

    /// Copies `len` bytes from user address `va` into `out`, checking that
    /// every page is present and user-accessible.
    pub fn copy_from_user(&self, va: u64, out: &mut [u8]) -> Result<(), VmError> {
        self.walk(va, out.len() as u64, false, |phys, off, n| {
            // SAFETY: `phys` is a user frame of this space, mapped in the
            // direct map; [off, off + n) stays inside `out`.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    phys_to_virt(phys) as *const u8,
                    out.as_mut_ptr().add(off),
                    n,
                );
            }
        })
    }

    /// Copies `data` to user address `va`, checking that every page is
    /// present, user-accessible and writable.
    pub fn copy_to_user(&self, va: u64, data: &[u8]) -> Result<(), VmError> {
        self.walk(va, data.len() as u64, true, |phys, off, n| {
            // SAFETY: as in `copy_from_user`, writing into the user frame.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    data.as_ptr().add(off),
                    phys_to_virt(phys) as *mut u8,
                    n,
                );
            }
        })
    }

    /// Checks that every page of `[va, va + len)` is mapped, user-accessible
    /// and (if `write`) writable, without touching it.
    pub fn check(&self, va: u64, len: u64, write: bool) -> Result<(), VmError> {
        self.walk(va, len, write, |_, _, _| {})
    }

    /// Checks the whole range first (so a failed copy writes nothing), then
    /// calls `f(phys, offset_in_buffer, bytes)` per page piece, all under the
    /// address-space lock.
    fn walk(
        &self,
        va: u64,
        len: u64,
        write: bool,
        mut f: impl FnMut(u64, usize, usize),
    ) -> Result<(), VmError> {
        let end = va.checked_add(len).ok_or(VmError::BadAddress)?;
        if end > USER_END {
            return Err(VmError::BadAddress);
        }
        let t = self.tables.lock();
        let ok = |flags: F| !write || flags.contains(F::WRITABLE);
        let mut page = va & !(PAGE_SIZE - 1);
        while page < end {
            match Self::lookup(&t, page) {
                Some((_, flags)) if ok(flags) => {}
                _ => return Err(VmError::Fault),
            }
            page += PAGE_SIZE;
        }
        let mut at = va;
        while at < end {
            let (phys, _) = Self::lookup(&t, at).ok_or(VmError::Fault)?;
            let in_page = at % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(end - at);
            f(phys + in_page, (at - va) as usize, n as usize);
            at += n;
        }
        Ok(())
    }
}

impl Drop for AddressSpace {
    /// Frees every user page and every user page table, then the PML4,
    /// once no CPU has the space loaded any more.
    fn drop(&mut self) {
        self.release_cpus();
        let t = self.tables.lock();
        fn free_level(phys: u64, depth: u32) {
            // SAFETY: `phys` is a table frame of the space being dropped;
            // nothing else references it any more.
            let tbl = unsafe { table(phys) };
            for e in tbl.iter_mut() {
                if e.is_unused() {
                    continue;
                }
                let child = e.addr().as_u64();
                if depth < 3 {
                    free_level(child, depth + 1);
                }
                free_frame(child);
                e.set_unused();
            }
        }
        // SAFETY: as above; only the user half (0-255) is this space's own.
        let root = unsafe { table(t.pml4) };
        for e in root.iter_mut().take(256) {
            if !e.is_unused() {
                free_level(e.addr().as_u64(), 1);
                free_frame(e.addr().as_u64());
                e.set_unused();
            }
        }
        free_frame(t.pml4);
    }
}
