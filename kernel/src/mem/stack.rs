//! Kernel stacks in the stack window, each with an unmapped guard page
//! below it, so an overflow faults (and, on a trap stack, becomes a double
//! fault on the IST stack) instead of corrupting memory.
//!
//! Virtual ranges are reused. Freeing a stack unmaps its pages and frees
//! their frames at once (flushing only this CPU: nothing touches a dead
//! thread's stack again), and puts its range on a *dirty* list. Other CPUs
//! may still hold TLB entries for it (kernel pages are global and survive
//! CR3 loads), so a dirty range is handed out again only after a
//! *reclaim*: the page tables of the window that map nothing any more are
//! unlinked, every CPU flushes everything ([`tlb::flush_kernel_everywhere`]),
//! and then the unlinked tables are freed and the dirty ranges become
//! *clean*. A reclaim runs when a stack is wanted, no clean range of its
//! size is left and [`RECLAIM_BATCH`] dirty ones of that size wait (or the
//! window is used up), and once more when the last process has exited
//! ([`trim`]), so that the window then holds tables only for stacks that
//! still exist. One lock serialises all of it, mapping included, so no
//! range is mapped while a reclaim might unlink the table under it (and no
//! CPU can run on a stack mapped into a new table while another CPU's
//! reclaim has not yet flushed every CPU's cached link to the old one).
//!
//! That lock leaves interrupts on: mapping a stack's pages and a reclaim's
//! flush take thousands of instructions, and no interrupt handler makes or
//! frees a stack (a thread let go in one is dropped later, in thread
//! context; the lock validator would report a handler taking this lock).
//! Kernel code is never preempted, so the holder runs to the unlock.

use super::{paging, PAGE_SIZE, STACK_BASE, STACK_WINDOW};
use crate::sync::SpinLock;
use crate::tlb;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Dirty ranges of one size that make a reclaim worth its flush (each
/// reclaim interrupts every other CPU once).
pub const RECLAIM_BATCH: usize = 8;

/// A freed range: its guard page's address and its page count (guard not
/// included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    guard: u64,
    pages: u64,
}

impl Range {
    fn span(self) -> u64 {
        (self.pages + 1) * PAGE_SIZE
    }

    fn bottom(self) -> u64 {
        self.guard + PAGE_SIZE
    }
}

/// The stack window's bookkeeping.
struct Pool {
    /// Next never-used address in the window.
    next: u64,
    /// Freed ranges every CPU has flushed: ready to map.
    clean: Vec<Range>,
    /// Freed ranges some CPU may still hold TLB entries for.
    dirty: Vec<Range>,
}

static POOL: SpinLock<Pool> = SpinLock::new(Pool {
    next: STACK_BASE,
    clean: Vec::new(),
    dirty: Vec::new(),
});

static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static REUSED: AtomicU64 = AtomicU64::new(0);
static RANGES: AtomicU64 = AtomicU64::new(0);
static RECLAIMS: AtomicU64 = AtomicU64::new(0);
static TABLES_FREED: AtomicU64 = AtomicU64::new(0);

/// A mapped kernel stack.
#[derive(Clone, Copy, Debug)]
pub struct KernelStack {
    /// One past the highest mapped byte: the initial RSP.
    pub top: u64,
}

/// Why a stack could not be made.
#[derive(Debug)]
pub enum StackError {
    /// The stack window is used up.
    WindowFull,
    /// Frames or page tables ran out.
    OutOfMemory,
}

/// True if `addr` is in the stack window but on no mapped page: every
/// unmapped page there is a guard page, a freed stack or never handed out.
pub fn is_guard_page(addr: u64) -> bool {
    (STACK_BASE..STACK_BASE + STACK_WINDOW).contains(&addr) && !paging::is_mapped(addr)
}

/// Maps a stack of `pages` pages with a guard page below it, on a freed
/// range of that size when there is one.
pub fn alloc(pages: u64) -> Result<KernelStack, StackError> {
    let mut pool = POOL.lock();
    let range = match take(&mut pool.clean, pages) {
        Some(r) => Some(r),
        None => {
            let waiting = pool.dirty.iter().filter(|r| r.pages == pages).count();
            let fresh_fits = pool.next + (pages + 1) * PAGE_SIZE <= STACK_BASE + STACK_WINDOW;
            if waiting >= RECLAIM_BATCH || (waiting > 0 && !fresh_fits) {
                reclaim(&mut pool);
                take(&mut pool.clean, pages)
            } else {
                None
            }
        }
    };
    let reused = range.is_some();
    let range = match range {
        Some(r) => r,
        None => {
            let r = Range {
                guard: pool.next,
                pages,
            };
            if r.guard + r.span() > STACK_BASE + STACK_WINDOW {
                return Err(StackError::WindowFull);
            }
            pool.next += r.span();
            RANGES.fetch_add(1, Ordering::Relaxed);
            r
        }
    };
    for i in 0..pages {
        if paging::map_kernel_page(range.bottom() + i * PAGE_SIZE).is_err() {
            unmap(range.bottom(), i);
            // Mapped here only, but reuse it after a flush like any other.
            pool.dirty.push(range);
            return Err(StackError::OutOfMemory);
        }
    }
    ALLOCATED.fetch_add(1, Ordering::Relaxed);
    if reused {
        REUSED.fetch_add(1, Ordering::Relaxed);
    }
    Ok(KernelStack {
        top: range.bottom() + pages * PAGE_SIZE,
    })
}

/// Unmaps a stack made by [`alloc`] with the same page count, frees its
/// frames and keeps its range for reuse after the next reclaim.
pub fn free(stack: KernelStack, pages: u64) {
    let bottom = stack.top - pages * PAGE_SIZE;
    let mut pool = POOL.lock();
    unmap(bottom, pages);
    pool.dirty.push(Range {
        guard: bottom - PAGE_SIZE,
        pages,
    });
}

/// Reclaims every dirty range now (after the last process has exited), so
/// the window keeps page tables only for stacks that still exist.
pub fn trim() {
    let mut pool = POOL.lock();
    if !pool.dirty.is_empty() {
        reclaim(&mut pool);
    }
}

/// Counters for the end-of-run report.
pub struct Stats {
    /// Stacks mapped.
    pub allocated: u64,
    /// Of those, on a freed range.
    pub reused: u64,
    /// Ranges ever carved out of the window.
    pub ranges: u64,
    /// Reclaims (each one flush on every CPU).
    pub reclaims: u64,
    /// Page tables of the window freed by reclaims.
    pub tables_freed: u64,
}

/// The counters so far.
pub fn stats() -> Stats {
    let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Stats {
        allocated: l(&ALLOCATED),
        reused: l(&REUSED),
        ranges: l(&RANGES),
        reclaims: l(&RECLAIMS),
        tables_freed: l(&TABLES_FREED),
    }
}

/// The lowest clean range of `pages` pages, taken off the list.
fn take(clean: &mut Vec<Range>, pages: u64) -> Option<Range> {
    let at = clean
        .iter()
        .enumerate()
        .filter(|(_, r)| r.pages == pages)
        .min_by_key(|(_, r)| r.guard)
        .map(|(i, _)| i)?;
    Some(clean.swap_remove(at))
}

/// Unmaps `pages` pages from `bottom` and frees their frames (this CPU's
/// TLB only; see the module comment).
fn unmap(bottom: u64, pages: u64) {
    for i in 0..pages {
        let _ = paging::unmap_kernel_page(bottom + i * PAGE_SIZE);
    }
}

/// Makes every dirty range clean: unlinks the window's tables that map
/// nothing any more (among the 2 MiB regions the dirty ranges touch),
/// flushes every CPU, then frees those tables.
fn reclaim(pool: &mut Pool) {
    const REGION: u64 = 2 << 20;
    let mut regions: Vec<u64> = Vec::with_capacity(pool.dirty.len() * 2);
    for r in &pool.dirty {
        regions.push(r.guard & !(REGION - 1));
        regions.push((r.guard + r.span() - 1) & !(REGION - 1));
    }
    regions.sort_unstable();
    regions.dedup();
    let mut tables = Vec::with_capacity(regions.len() * 2);
    paging::unlink_empty_stack_tables(&regions, &mut tables);
    tlb::flush_kernel_everywhere();
    paging::free_table_frames(&tables);
    RECLAIMS.fetch_add(1, Ordering::Relaxed);
    TABLES_FREED.fetch_add(tables.len() as u64, Ordering::Relaxed);
    let Pool { clean, dirty, .. } = pool;
    clean.append(dirty);
}
