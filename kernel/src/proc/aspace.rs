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
use crate::usermem::{UserRead, UserWrite};
use alloc::boxed::Box;
use alloc::vec::Vec;
use capos_kcore::window::Window;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::structures::paging::{PageTable, PageTableFlags as F};

/// First address past the user half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Start of the window object-backed (borrowed) mappings are placed in.
pub const SHARED_BASE: u64 = 0x0000_6000_0000_0000;
/// End (exclusive) of that window (below the ring, CapSet and stack pages,
/// above the anonymous window).
pub const SHARED_END: u64 = 0x0000_7000_0000_0000;

/// Marks a leaf entry whose frame the space borrows from a memory object:
/// the space never frees it (one of the entry bits the CPU ignores).
const BORROWED: F = F::BIT_9;

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
    /// The page is already mapped (or the range overlaps a mapping).
    AlreadyMapped,
    /// No borrowed mapping of that object starts there with that size.
    NotBorrowed,
    /// A page of the range is unmapped or lacks the needed permission.
    Fault,
    /// A walk needs a new page table (internal: the caller allocates one
    /// with the tables unlocked and walks again).
    NeedTable,
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

/// One object-backed mapping: the object it came from (by identity) and
/// what keeps the object's frames alive while mapped.
struct Borrowed {
    owner: usize,
    _keep: Box<dyn Send + Sync>,
}

/// One process's page tables.
pub struct AddressSpace {
    tables: IrqLock<Tables>,
    /// The PML4's physical address (fixed for the life of the space).
    root: u64,
    frames: AtomicU64,
    borrowed: crate::sync::SpinLock<Window<Borrowed>>,
    /// CPUs that may hold TLB entries of this space (bit per CPU index);
    /// boxed so its address stays fixed while CPUs point at it.
    cpus: Box<AtomicU64>,
}

/// A zeroed frame counted in [`frames_held`] (page tables, user pages and
/// memory-object backing all come from here).
pub fn alloc_frame() -> Result<u64, VmError> {
    let f = frame::alloc_zeroed().ok_or(VmError::OutOfMemory)?;
    FRAMES_HELD.fetch_add(1, Ordering::Relaxed);
    Ok(f)
}

/// `count` zeroed, physically consecutive frames counted in
/// [`frames_held`]; returns the first. Each is returned with [`free_frame`].
pub fn alloc_frame_run(count: u64) -> Result<u64, VmError> {
    let base = frame::alloc_contiguous_zeroed(count).ok_or(VmError::OutOfMemory)?;
    FRAMES_HELD.fetch_add(count, Ordering::Relaxed);
    Ok(base)
}

/// Returns a frame from [`alloc_frame`] or [`alloc_frame_run`].
pub fn free_frame(f: u64) {
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
            root: pml4,
            frames: AtomicU64::new(1),
            borrowed: crate::sync::SpinLock::new(Window::new(SHARED_BASE, SHARED_END)),
            cpus: Box::new(AtomicU64::new(0)),
        })
    }

    /// Physical address of the PML4 (for CR3).
    pub fn root(&self) -> u64 {
        self.root
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
    /// address. Frames are allocated and zeroed with the tables unlocked
    /// (and so with interrupts on): a missing page table sends the walk out
    /// to get one and back in.
    pub fn map_new(&self, va: u64, perm: UserPerm) -> Result<u64, VmError> {
        let page = alloc_frame()?;
        let mut spare = None;
        let result = loop {
            let t = self.tables.lock();
            let mut take = || spare.take().ok_or(VmError::NeedTable);
            match self.leaf_for_new(&t, va, &mut take) {
                Ok(pte) => {
                    self.frames.fetch_add(1, Ordering::Relaxed);
                    pte.set_addr(x86_64::PhysAddr::new(page), leaf_flags(perm));
                    break Ok(page);
                }
                Err(VmError::NeedTable) => {
                    drop(t);
                    match alloc_frame() {
                        Ok(f) => spare = Some(f),
                        Err(e) => break Err(e),
                    }
                }
                Err(e) => break Err(e),
            }
        };
        if let Some(f) = spare {
            free_frame(f);
        }
        if result.is_err() {
            free_frame(page);
        }
        result
    }

    /// The unused level-1 entry for user page `va`, creating the tables on
    /// the way (counted as this space's frames). Like [`AddressSpace::pte`]
    /// it works through the lock guard's shared view.
    #[allow(clippy::mut_from_ref)]
    fn leaf_for_new<'t>(
        &self,
        t: &'t Tables,
        va: u64,
        new_table: &mut dyn FnMut() -> Result<u64, VmError>,
    ) -> Result<&'t mut x86_64::structures::paging::page_table::PageTableEntry, VmError> {
        if !va.is_multiple_of(PAGE_SIZE) || va >= USER_END {
            return Err(VmError::BadAddress);
        }
        let mut phys = t.pml4;
        for level in [39u64, 30, 21] {
            let idx = ((va >> level) & 0x1ff) as usize;
            // SAFETY: `phys` is one of this space's table frames.
            let entry = unsafe { &mut table(phys)[idx] };
            if entry.is_unused() {
                let next = new_table()?;
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
        Ok(pte)
    }

    /// Maps `frames` (owned by a memory object whose identity is `owner`)
    /// contiguously in the shared window, at `hint` if that range is free,
    /// and returns the address. `keep` holds the object's frames alive (and
    /// the mapping's charge) until the mapping goes: at
    /// [`AddressSpace::unmap_borrowed`] or when the space is dropped, after
    /// the page-table entries are gone. The space never frees the frames.
    pub fn map_borrowed(
        &self,
        hint: u64,
        frames: &[u64],
        perm: UserPerm,
        owner: usize,
        keep: Box<dyn Send + Sync>,
    ) -> Result<u64, VmError> {
        let pages = frames.len() as u64;
        let mut maps = self.borrowed.lock();
        let start = maps.place(hint, pages).ok_or(VmError::BadAddress)?;
        let t = self.tables.lock();
        for (i, &f) in frames.iter().enumerate() {
            let va = start + i as u64 * PAGE_SIZE;
            match self.leaf_for_new(&t, va, &mut alloc_frame) {
                Ok(pte) => pte.set_addr(x86_64::PhysAddr::new(f), leaf_flags(perm) | BORROWED),
                Err(e) => {
                    // Undo this call's entries (tables made stay, counted)
                    // and flush them everywhere before `keep` can let the
                    // frames go.
                    for j in 0..i as u64 {
                        if let Some(pte) = Self::pte(&t, start + j * PAGE_SIZE) {
                            pte.set_unused();
                        }
                    }
                    drop(t);
                    drop(maps);
                    if i > 0 {
                        self.flush_range(start, start + i as u64 * PAGE_SIZE);
                    }
                    return Err(e);
                }
            }
        }
        drop(t);
        maps.insert(start, pages, Borrowed { owner, _keep: keep });
        Ok(start)
    }

    /// Removes the borrowed mapping of object `owner` that starts at `addr`
    /// and spans `pages` pages (a whole mapping, as `map_borrowed` made it),
    /// flushes its TLB entries, then lets the object's frames go.
    pub fn unmap_borrowed(&self, addr: u64, pages: u64, owner: usize) -> Result<(), VmError> {
        let mut maps = self.borrowed.lock();
        match maps.get(addr) {
            Some((p, b)) if p == pages && b.owner == owner => {}
            _ => return Err(VmError::NotBorrowed),
        }
        // The entries go before the range is free for another mapping.
        {
            let t = self.tables.lock();
            for i in 0..pages {
                if let Some(pte) = Self::pte(&t, addr + i * PAGE_SIZE) {
                    pte.set_unused();
                }
            }
        }
        let gone = maps.remove(addr);
        drop(maps);
        self.flush_range(addr, addr + pages * PAGE_SIZE);
        // Only now, with no entry or TLB line left to reach them on any CPU,
        // may the frames go.
        drop(gone);
        Ok(())
    }

    /// The level-1 entry for user page `va` (tables must exist), for
    /// changes. It takes the lock guard's shared view: the entries live in
    /// frames reached through the direct map, not in `Tables`; holding the
    /// lock is what makes changing them exclusive.
    #[allow(clippy::mut_from_ref)]
    fn pte(
        t: &Tables,
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
            let t = self.tables.lock();
            let mut va = start;
            while va < end {
                // Borrowed pages belong to memory objects: not unmapped here.
                match Self::pte(&t, va) {
                    Some(pte) if !pte.flags().contains(BORROWED) => {}
                    _ => return Err(VmError::Fault),
                }
                va += PAGE_SIZE;
            }
            let mut va = start;
            while va < end {
                let pte = Self::pte(&t, va).ok_or(VmError::Fault)?;
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
            let t = self.tables.lock();
            let mut va = start;
            while va < end {
                Self::pte(&t, va).ok_or(VmError::Fault)?;
                va += PAGE_SIZE;
            }
            let mut va = start;
            while va < end {
                let pte = Self::pte(&t, va).ok_or(VmError::Fault)?;
                let frame = pte.addr();
                let borrowed = pte.flags() & BORROWED;
                pte.set_addr(frame, leaf_flags(perm) | borrowed);
                va += PAGE_SIZE;
            }
        }
        self.flush_range(start, end);
        Ok(())
    }

    /// The frame and flags mapping user page `va`, if any (present and
    /// user-accessible at every level, no large pages).
    fn lookup(t: &Tables, va: u64) -> Option<(u64, F)> {
        /// Bits every entry on a user walk has.
        const NEED: u64 = F::PRESENT.bits() | F::USER_ACCESSIBLE.bits();
        /// And one it must not have (a large page; at the last level the
        /// same bit is PAT, which user mappings never use).
        const HUGE: u64 = F::HUGE_PAGE.bits();
        /// The frame address bits of an entry.
        const ADDR: u64 = 0x000f_ffff_ffff_f000;
        if va >= USER_END {
            return None;
        }
        let mut phys = t.pml4;
        for level in [39u64, 30, 21, 12] {
            let idx = ((va >> level) & 0x1ff) as usize;
            // SAFETY: `phys` is one of this space's table frames (the PML4,
            // or a frame a present entry of the level above names), reached
            // through the direct map; `idx` < 512 stays inside it; the
            // caller holds the tables' lock, so nothing changes it meanwhile.
            let entry = unsafe { (phys_to_virt(phys) as *const u64).add(idx).read() };
            if entry & (NEED | HUGE) != NEED {
                return None;
            }
            phys = entry & ADDR;
            if level == 12 {
                return Some((phys, F::from_bits_truncate(entry)));
            }
        }
        None
    }

    /// Copies the first `out.len()` bytes of `src` into `out`. Fails, having
    /// copied nothing, if `out` is longer than `src` or a page is not mapped
    /// user-readable.
    pub fn read(&self, src: UserRead, out: &mut [u8]) -> Result<(), VmError> {
        if out.len() > src.len() as usize {
            return Err(VmError::BadAddress);
        }
        let t = self.tables.lock();
        Self::walk(&t, src.addr(), out.len() as u64, false, |phys, off, n| {
            // SAFETY: `phys` is a user frame of this space, mapped in the
            // direct map and kept by the held lock; [off, off + n) stays
            // inside `out`.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    phys_to_virt(phys) as *const u8,
                    out.as_mut_ptr().add(off),
                    n,
                );
            }
        })
    }

    /// Writes `parts` one after another at byte `offset` of `dst`. The
    /// whole length is checked writable first, under the same lock hold as
    /// the copy, so either every byte lands or none does.
    pub fn write(&self, dst: UserWrite, offset: usize, parts: &[&[u8]]) -> Result<(), VmError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if offset
            .checked_add(total)
            .is_none_or(|end| end > dst.len() as usize)
        {
            return Err(VmError::BadAddress);
        }
        if total == 0 {
            return Ok(());
        }
        let t = self.tables.lock();
        let mut at = dst.addr() + offset as u64;
        Self::check_locked(&t, at, total as u64, true)?;
        for part in parts {
            Self::walk(&t, at, part.len() as u64, true, |phys, off, n| {
                // SAFETY: as in `read`, writing into a user frame of this
                // space checked writable under this lock hold.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        part.as_ptr().add(off),
                        phys_to_virt(phys) as *mut u8,
                        n,
                    );
                }
            })?;
            at += part.len() as u64;
        }
        Ok(())
    }

    /// Whether the first `len` bytes of `dst` are mapped user-writable now
    /// (an early refusal only: [`AddressSpace::write`] checks again).
    pub fn probe_write(&self, dst: UserWrite, len: usize) -> Result<(), VmError> {
        if len > dst.len() as usize {
            return Err(VmError::BadAddress);
        }
        Self::check_locked(&self.tables.lock(), dst.addr(), len as u64, true)
    }

    /// Copies the first `len` bytes of `src` in space `from` to byte
    /// `offset` of `dst` in space `to`, user memory to user memory without
    /// a kernel buffer. Both ranges are checked under both spaces' locks
    /// (taken in address order; once if the spaces are the same), in the
    /// same hold as the copy; on failure nothing is written and the error
    /// says which side failed. Within one space, overlapping ranges copy as
    /// `memmove` would.
    pub fn copy_between(
        from: &AddressSpace,
        src: UserRead,
        to: &AddressSpace,
        dst: UserWrite,
        offset: usize,
        len: usize,
    ) -> Result<(), CopySide> {
        Self::copy_framed(from, src, to, dst, offset, len, &[])
    }

    /// [`AddressSpace::copy_between`] with `header` (kernel bytes) written
    /// just before the copied bytes, at `offset - header.len()` of `dst`:
    /// one check of both ranges and one lock hold for the whole message.
    pub fn copy_framed(
        from: &AddressSpace,
        src: UserRead,
        to: &AddressSpace,
        dst: UserWrite,
        offset: usize,
        len: usize,
        header: &[u8],
    ) -> Result<(), CopySide> {
        if len > src.len() as usize {
            return Err(CopySide::Source);
        }
        if header.len() > offset
            || offset
                .checked_add(len)
                .is_none_or(|end| end > dst.len() as usize)
        {
            return Err(CopySide::Destination);
        }
        if len == 0 && header.is_empty() {
            return Ok(());
        }
        let same = core::ptr::eq(from, to);
        let (first, second) = if (from as *const Self) < (to as *const Self) {
            (from, to)
        } else {
            (to, from)
        };
        // Two spaces' tables nest in address order (checked by the lock
        // validator through the keys).
        let key = |s: &Self| s as *const Self as u64;
        let g1 = first.tables.lock_ordered(key(first));
        let g2 = if same {
            None
        } else {
            Some(second.tables.lock_ordered(key(second)))
        };
        let (ft, tt): (&Tables, &Tables) = match &g2 {
            None => (&g1, &g1),
            Some(g2) if core::ptr::eq(first, from) => (&g1, g2),
            Some(g2) => (g2, &g1),
        };
        let dst_at = dst.addr() + offset as u64;
        let head_at = dst_at - header.len() as u64;
        let within_page = |at: u64, n: u64| at % PAGE_SIZE + n <= PAGE_SIZE;
        if !same
            && within_page(src.addr(), len as u64)
            && within_page(head_at, (header.len() + len) as u64)
        {
            return Self::copy_in_pages(ft, src.addr(), tt, head_at, header, len);
        }
        // Both ranges checked whole before a byte moves; the frames found
        // on the way are kept, so a message within a page or two is copied
        // without walking the tables again.
        let from_span =
            Span::of(ft, src.addr(), len as u64, false).map_err(|_| CopySide::Source)?;
        let to_span = Span::of(tt, head_at, (header.len() + len) as u64, true)
            .map_err(|_| CopySide::Destination)?;
        let piece =
            |s: u64, d: u64, n: u64| Self::copy_piece(ft, &from_span, s, tt, &to_span, d, n);
        // A process copying within its own memory may overlap source and
        // destination. The bytes move as one `memmove` would: pieces last to
        // first when the destination starts inside the source, and the
        // header only after them (it may cover the source's first bytes).
        // Two addresses of one frame (a memory object mapped twice) are not
        // seen here: the process then gets whatever its overlapping writes
        // give, in its own memory only.
        let src_at = src.addr();
        let backward = same && dst_at > src_at && dst_at - src_at < len as u64;
        let len = len as u64;
        if backward {
            // Bytes up to the end of a page that ends at or after `x`.
            let tail = |x: u64| (x - 1) % PAGE_SIZE + 1;
            let mut left = len;
            while left > 0 {
                let n = tail(src_at + left).min(tail(dst_at + left)).min(left);
                left -= n;
                piece(src_at + left, dst_at + left, n)?;
            }
        } else {
            let mut done = 0u64;
            while done < len {
                let (s, d) = (src_at + done, dst_at + done);
                let n = (PAGE_SIZE - s % PAGE_SIZE)
                    .min(PAGE_SIZE - d % PAGE_SIZE)
                    .min(len - done);
                piece(s, d, n)?;
                done += n;
            }
        }
        let mut done = 0u64;
        while done < header.len() as u64 {
            let d = head_at + done;
            let dp = to_span.phys(tt, d).ok_or(CopySide::Destination)?;
            let n = (PAGE_SIZE - d % PAGE_SIZE).min(header.len() as u64 - done);
            // SAFETY: a user frame of the destination space, checked
            // writable above under the lock still held; the piece stays
            // within its page and within `header`.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    header.as_ptr().add(done as usize),
                    phys_to_virt(dp) as *mut u8,
                    n as usize,
                );
            }
            done += n;
        }
        Ok(())
    }

    /// [`AddressSpace::copy_framed`] of a message whose source lies within
    /// one page and whose destination (header included) within one page of
    /// another space (so nothing overlaps): one walk each, and small copies
    /// done inline. `ft` and `tt` are the two spaces' locked tables.
    fn copy_in_pages(
        ft: &Tables,
        src_at: u64,
        tt: &Tables,
        head_at: u64,
        header: &[u8],
        len: usize,
    ) -> Result<(), CopySide> {
        let source = if len == 0 {
            0
        } else {
            match Self::lookup(ft, src_at) {
                Some((frame, _)) => frame + src_at % PAGE_SIZE,
                None => return Err(CopySide::Source),
            }
        };
        let dest = match Self::lookup(tt, head_at) {
            Some((frame, flags)) if flags.contains(F::WRITABLE) => frame + head_at % PAGE_SIZE,
            _ => return Err(CopySide::Destination),
        };
        let dest = phys_to_virt(dest) as *mut u8;
        // SAFETY: `dest` is a user frame of the destination space, checked
        // writable under its lock (held by the caller); the header and the
        // bytes after it stay within that page (checked by the caller).
        // `source` is a user frame of the source space, checked readable
        // under its lock, `len` bytes within its page. The spaces differ, so
        // the ranges are distinct frames or, for a frame shared between
        // them (a memory object), the process gets what overlapping writes
        // give, as documented on `copy_framed`.
        unsafe {
            small_copy(header.as_ptr(), dest, header.len());
            if len != 0 {
                small_copy(
                    phys_to_virt(source) as *const u8,
                    dest.add(header.len()),
                    len,
                );
            }
        }
        Ok(())
    }

    /// Copies `n` bytes from `s` (in `from`, walked by `ft`) to `d` (in
    /// `to`, walked by `tt`), a piece within one page of each, under the
    /// locks [`AddressSpace::copy_framed`] holds.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn copy_piece(
        ft: &Tables,
        from: &Span,
        s: u64,
        tt: &Tables,
        to: &Span,
        d: u64,
        n: u64,
    ) -> Result<(), CopySide> {
        debug_assert!(s % PAGE_SIZE + n <= PAGE_SIZE && d % PAGE_SIZE + n <= PAGE_SIZE);
        let sp = from.phys(ft, s).ok_or(CopySide::Source)?;
        let dp = to.phys(tt, d).ok_or(CopySide::Destination)?;
        // SAFETY: both frames are user frames of their spaces, checked
        // under the locks the caller holds; the pieces stay within one page
        // of each. They may be the same frame (a process copying within
        // itself), so the copy allows overlap.
        unsafe {
            core::ptr::copy(
                phys_to_virt(sp) as *const u8,
                phys_to_virt(dp) as *mut u8,
                n as usize,
            );
        }
        Ok(())
    }

    /// Checks that `[va, va + len)` is mapped user-accessible (and writable
    /// if `write`) in the tables `t` guards.
    fn check_locked(t: &Tables, va: u64, len: u64, write: bool) -> Result<(), VmError> {
        let end = va.checked_add(len).ok_or(VmError::BadAddress)?;
        if end > USER_END {
            return Err(VmError::BadAddress);
        }
        let ok = |flags: F| !write || flags.contains(F::WRITABLE);
        let mut page = va & !(PAGE_SIZE - 1);
        while page < end {
            match Self::lookup(t, page) {
                Some((_, flags)) if ok(flags) => {}
                _ => return Err(VmError::Fault),
            }
            page += PAGE_SIZE;
        }
        Ok(())
    }

    /// Checks the whole range first (so a failed copy writes nothing), then
    /// calls `f(phys, offset_in_buffer, bytes)` per page piece, all under the
    /// lock hold `t` comes from.
    fn walk(
        t: &Tables,
        va: u64,
        len: u64,
        write: bool,
        mut f: impl FnMut(u64, usize, usize),
    ) -> Result<(), VmError> {
        Self::check_locked(t, va, len, write)?;
        let end = va + len;
        let mut at = va;
        while at < end {
            let (phys, _) = Self::lookup(t, at).ok_or(VmError::Fault)?;
            let in_page = at % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(end - at);
            f(phys + in_page, (at - va) as usize, n as usize);
            at += n;
        }
        Ok(())
    }
}

/// Copies `n` bytes from `src` to `dst` (which must not overlap): eight
/// bytes at a time inline for a short message (a call header, a small
/// argument block), `memcpy` for a long one.
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes, and the two
/// ranges must not overlap.
#[inline(always)]
unsafe fn small_copy(src: *const u8, dst: *mut u8, n: usize) {
    if n > 64 {
        // SAFETY: the caller's contract.
        unsafe { core::ptr::copy_nonoverlapping(src, dst, n) };
        return;
    }
    let mut at = 0;
    while at + 8 <= n {
        // SAFETY: [at, at + 8) lies within both ranges (the caller's
        // contract); unaligned accesses are fine on x86-64.
        unsafe {
            let w = src.add(at).cast::<u64>().read_unaligned();
            dst.add(at).cast::<u64>().write_unaligned(w);
        }
        at += 8;
    }
    while at < n {
        // SAFETY: as above, one byte within both ranges.
        unsafe { dst.add(at).write(src.add(at).read()) };
        at += 1;
    }
}

/// A user range checked under its space's lock, with the frames of its
/// first and last pages remembered (the pages in between, if any, are
/// looked up again when copied).
struct Span {
    first: (u64, u64),
    last: (u64, u64),
}

impl Span {
    /// Checks `[va, va + len)` in the tables `t` guards (user-accessible,
    /// and writable if `write`).
    fn of(t: &Tables, va: u64, len: u64, write: bool) -> Result<Span, VmError> {
        let end = va.checked_add(len).ok_or(VmError::BadAddress)?;
        if end > USER_END {
            return Err(VmError::BadAddress);
        }
        let mut span = Span {
            first: (u64::MAX, 0),
            last: (u64::MAX, 0),
        };
        let mut page = va & !(PAGE_SIZE - 1);
        while page < end {
            match AddressSpace::lookup(t, page) {
                Some((phys, flags)) if !write || flags.contains(F::WRITABLE) => {
                    if span.first.0 == u64::MAX {
                        span.first = (page, phys);
                    }
                    span.last = (page, phys);
                }
                _ => return Err(VmError::Fault),
            }
            page += PAGE_SIZE;
        }
        Ok(span)
    }

    /// The physical address of user address `va` of the range.
    fn phys(&self, t: &Tables, va: u64) -> Option<u64> {
        let page = va & !(PAGE_SIZE - 1);
        let frame = if page == self.first.0 {
            self.first.1
        } else if page == self.last.0 {
            self.last.1
        } else {
            AddressSpace::lookup(t, page)?.0
        };
        Some(frame + va % PAGE_SIZE)
    }
}

/// Which side of [`AddressSpace::copy_between`] was not mapped as needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopySide {
    /// The source range.
    Source,
    /// The destination range.
    Destination,
}

impl Drop for AddressSpace {
    /// Frees every user page and every user page table, then the PML4,
    /// once no CPU has the space loaded any more.
    fn drop(&mut self) {
        self.release_cpus();
        // Exclusive access: no lock, so the teardown runs with interrupts
        // on.
        let pml4 = self.tables.get_mut().pml4;
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
                // A borrowed leaf belongs to its memory object.
                if !(depth == 3 && e.flags().contains(BORROWED)) {
                    free_frame(child);
                }
                e.set_unused();
            }
        }
        // SAFETY: as above; only the user half (0-255) is this space's own.
        let root = unsafe { table(pml4) };
        for e in root.iter_mut().take(256) {
            if !e.is_unused() {
                free_level(e.addr().as_u64(), 1);
                free_frame(e.addr().as_u64());
                e.set_unused();
            }
        }
        free_frame(pml4);
        // The entries are gone: the borrowed objects' frames may go now.
        self.borrowed.lock().clear();
    }
}
