//! The process heap: `talc` over a static arena in `.bss`, behind a spin
//! lock (a process has one thread, so the lock is never contended; it only
//! makes the allocator `Sync`).

use talc::source::Manual;
use talc::TalcLock;

/// Size of the heap arena.
pub const HEAP_SIZE: usize = 512 * 1024;

#[repr(C, align(4096))]
struct Arena([u8; HEAP_SIZE]);

static mut ARENA: Arena = Arena([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: TalcLock<spin::Mutex<()>, Manual> = TalcLock::new(Manual);

/// Hands the arena to the allocator. Called once by `_start` before any
/// allocation; returns false if talc refuses the region.
pub fn init() -> bool {
    let base = (&raw mut ARENA).cast::<u8>();
    // SAFETY: ARENA is used by nothing but the heap: no code names it except
    // here, and this runs once, on the process's only thread, before any
    // allocation. It is HEAP_SIZE bytes of writable `.bss` for the life of
    // the process.
    unsafe { HEAP.lock().claim(base, HEAP_SIZE).is_some() }
}
