//! Kernel stacks in the stack window, each with an unmapped guard page
//! below it, so an overflow faults (and, on a trap stack, becomes a double
//! fault on the IST stack) instead of corrupting memory.

use super::{paging, PAGE_SIZE, STACK_BASE, STACK_WINDOW};
use core::sync::atomic::{AtomicU64, Ordering};

/// Next free virtual address in the stack window.
static NEXT: AtomicU64 = AtomicU64::new(STACK_BASE);

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
/// unmapped page there is a guard page or never handed out.
pub fn is_guard_page(addr: u64) -> bool {
    (STACK_BASE..STACK_BASE + STACK_WINDOW).contains(&addr) && !paging::is_mapped(addr)
}

/// Maps a stack of `pages` pages with a guard page below it.
pub fn alloc(pages: u64) -> Result<KernelStack, StackError> {
    let span = (pages + 1) * PAGE_SIZE;
    let guard = NEXT.fetch_add(span, Ordering::Relaxed);
    if guard + span > STACK_BASE + STACK_WINDOW {
        return Err(StackError::WindowFull);
    }
    let bottom = guard + PAGE_SIZE;
    for i in 0..pages {
        if paging::map_kernel_page(bottom + i * PAGE_SIZE).is_err() {
            for j in 0..i {
                let _ = paging::unmap_kernel_page(bottom + j * PAGE_SIZE);
            }
            return Err(StackError::OutOfMemory);
        }
    }
    Ok(KernelStack {
        top: bottom + pages * PAGE_SIZE,
    })
}

/// Unmaps a stack made by [`alloc`] with the same page count and frees its
/// frames. Its virtual range is not reused.
pub fn free(stack: KernelStack, pages: u64) {
    for i in 1..=pages {
        let _ = paging::unmap_kernel_page(stack.top - i * PAGE_SIZE);
    }
}
