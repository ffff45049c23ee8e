//! The kernel heap: `talc` behind a spin lock, starting on a static arena
//! (so `alloc` works from the first line of Rust) and growing into the heap
//! window one batch of fresh frames at a time once paging is up.
//!
//! The heap lock masks local interrupts while held (`IrqRawSpin`), so the
//! timer tick may allocate and free (it completes sleeps and drops threads)
//! without ever spinning on a lock its own CPU holds.

use super::{paging, HEAP_BASE, HEAP_MAX, PAGE_SIZE};
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use talc::base::binning::Binning;
use talc::base::Talc;
use talc::source::Source;
use talc::TalcLock;

/// Size of the static arena the heap starts on.
const INITIAL_ARENA: usize = 2 << 20;
/// Smallest growth step.
const GROW_STEP: u64 = 256 << 10;

#[repr(C, align(4096))]
struct Arena([u8; INITIAL_ARENA]);
static mut ARENA: Arena = Arena([0; INITIAL_ARENA]);

/// Grows the heap from the frame allocator.
#[derive(Debug)]
pub struct KernelHeapSource;

static CAN_GROW: AtomicBool = AtomicBool::new(false);
/// End of the mapped part of the heap window (0 before the first growth).
static WINDOW_END: AtomicU64 = AtomicU64::new(0);

// SAFETY: `acquire` only maps fresh pages and hands them to the `Talc` it is
// given; it never touches the global allocator (no allocation inside).
unsafe impl Source for KernelHeapSource {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if !CAN_GROW.load(Ordering::Acquire) {
            return Err(());
        }
        let want = (layout.size() as u64 + layout.align() as u64 + PAGE_SIZE * 2).max(GROW_STEP);
        let want = want.next_multiple_of(PAGE_SIZE);
        let old_end = WINDOW_END.load(Ordering::Relaxed);
        let start = if old_end == 0 { HEAP_BASE } else { old_end };
        if start + want > HEAP_BASE + HEAP_MAX {
            return Err(());
        }
        let mut mapped = start;
        while mapped < start + want {
            if paging::map_kernel_page(mapped).is_err() {
                break;
            }
            mapped += PAGE_SIZE;
        }
        if mapped == start {
            return Err(());
        }
        // SAFETY: [start, mapped) is freshly mapped, writable, and used by
        // nothing else; the heap end we extend from is the one talc returned.
        unsafe {
            if old_end == 0 {
                talc.claim(start as *mut u8, (mapped - start) as usize)
                    .ok_or(())?;
            } else {
                let end = NonNull::new(old_end as *mut u8).ok_or(())?;
                talc.extend(end, mapped as *mut u8);
            }
        }
        WINDOW_END.store(mapped, Ordering::Relaxed);
        Ok(())
    }
}

static HEAP: TalcLock<crate::sync::IrqRawSpin, KernelHeapSource> = TalcLock::new(KernelHeapSource);

/// Allocations made on the kernel heap since boot (every `alloc`,
/// `alloc_zeroed` and growing `realloc`), so a benchmark can show its timed
/// loops allocate nothing.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The global allocator: the heap above, counting allocations.
struct CountingHeap;

// SAFETY: every method forwards to `HEAP`, a sound `GlobalAlloc`, with the
// caller's own arguments; the counter changes nothing about the memory.
unsafe impl core::alloc::GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees on `layout`.
        unsafe { HEAP.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in `alloc`.
        unsafe { HEAP.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout` (the
        // caller's guarantee), i.e. from `HEAP`.
        unsafe { HEAP.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as in `dealloc`, with the caller's guarantees on
        // `new_size`.
        unsafe { HEAP.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingHeap = CountingHeap;

/// Heap allocations since boot.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Hands the static arena to the heap. Call once, before any allocation.
pub fn init_early() {
    // SAFETY: ARENA is used by nothing but the heap, and this runs once,
    // before any other CPU starts.
    unsafe {
        let base = (&raw mut ARENA) as *mut u8;
        HEAP.lock().claim(base, INITIAL_ARENA);
    }
}

/// Lets the heap grow into the heap window (after the kernel tables are
/// active).
pub fn enable_growth() {
    CAN_GROW.store(true, Ordering::Release);
}

/// Bytes of the heap window mapped so far.
pub fn grown_bytes() -> u64 {
    WINDOW_END.load(Ordering::Relaxed).saturating_sub(HEAP_BASE)
}
