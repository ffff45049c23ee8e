//! What `_start` does in Rust: check the kernel's hand-over, set up the heap
//! and the runtime, run the service's `main`, flush releases, exit.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use capos_caps::interfaces;
use capos_ring::process::{
    CapSet, CAPSET_ADDR, RING_ADDR, STACK_PAGES, STACK_TOP, USER_IMAGE_END, USER_IMAGE_MIN,
};
use capos_ring::{RawRing, RingHeader, DEFAULT_LAYOUT, PAGE_SIZE, RING_PAGES};
use core::ptr::NonNull;

use crate::handle::Ring;
use crate::ring_client::{Enter, Protected, RingClient};
use crate::runtime::Runtime;
use crate::start_error::*;
use crate::{panic, syscall};

/// Size of the CapSet page.
const CAPSET_BYTES: usize = 4096;

extern "Rust" {
    /// The service's main, defined by `capos_rt::entry!`.
    fn __capos_rt_main(rt: &mut Runtime) -> i32;
}

/// Enters the kernel with the real system call.
pub(crate) struct Syscalls;

impl Enter for Syscalls {
    fn enter(&mut self, min_complete: u64, timeout_ns: u64) -> i64 {
        syscall::cap_enter(min_complete, timeout_ns)
    }
}

/// Called by `_start` with the three values the kernel passed.
pub(crate) extern "C" fn rt_start(ring_addr: u64, pid: u64, capset_addr: u64) -> ! {
    let code = match boot(ring_addr, pid, capset_addr) {
        Ok(mut rt) => {
            // SAFETY: `capos_rt::entry!` defines `__capos_rt_main` with
            // exactly this signature (it checks the user's function against
            // `fn(&mut Runtime) -> i32`); a binary without the macro does not
            // link.
            let code = unsafe { __capos_rt_main(&mut rt) };
            // Releases of handles dropped at the end of main. The kernel
            // reclaims everything at exit anyway; failures are not news.
            let _ = rt.flush_releases();
            code
        }
        Err(code) => code,
    };
    syscall::exit(i64::from(code))
}

/// Writable memory of the process: the image (data, bss, heap), the ring and
/// the stack. Raw submissions may not aim result buffers at it.
fn protected_ranges() -> Protected {
    let ring_end = RING_ADDR + u64::from(RING_PAGES) * u64::from(PAGE_SIZE);
    let stack_bottom = STACK_TOP - STACK_PAGES * u64::from(PAGE_SIZE);
    vec![
        (USER_IMAGE_MIN, USER_IMAGE_END),
        (RING_ADDR, ring_end),
        (stack_bottom, STACK_TOP),
    ]
}

fn boot(ring_addr: u64, pid: u64, capset_addr: u64) -> Result<Runtime, i32> {
    if ring_addr != RING_ADDR {
        return Err(BAD_RING_ADDR);
    }
    if capset_addr != CAPSET_ADDR {
        return Err(BAD_CAPSET_ADDR);
    }
    if !crate::heap::init() {
        return Err(NO_HEAP);
    }

    // SAFETY: the process ABI maps the ring, RING_PAGES pages readable and
    // writable, at RING_ADDR (checked above) for the life of the process;
    // RING_ADDR is page aligned; RingHeader (320 bytes) consists of atomics
    // only, so a shared reference is sound while the kernel writes it.
    let header = unsafe { &*(RING_ADDR as *const RingHeader) };
    // Only the default geometry fits the mapped pages; refuse any other
    // before making slices over the queues.
    if header.read_layout() != Ok(DEFAULT_LAYOUT) {
        return Err(BAD_RING);
    }
    let base = NonNull::new(RING_ADDR as *mut u8).ok_or(BAD_RING)?;
    // SAFETY: the ring is mapped as above, its header describes the default
    // geometry (checked), which fits in the mapped pages, and in this
    // process the ring is only ever accessed through atomics (RawRing).
    let raw: RawRing<'static> = unsafe { RawRing::attach(base) }.map_err(|_| BAD_RING)?;

    // SAFETY: the process ABI maps the CapSet page read-only at CAPSET_ADDR
    // (checked above) for the life of the process, and nothing writes it
    // after the process starts, so a shared byte slice over it is sound.
    let page = unsafe { core::slice::from_raw_parts(CAPSET_ADDR as *const u8, CAPSET_BYTES) };
    let caps: Vec<_> = CapSet::parse(page)
        .map_err(|_| BAD_CAPSET)?
        .iter()
        .collect();

    let console = caps
        .iter()
        .find(|e| e.name() == Some("console") && e.interface_id == interfaces::CONSOLE)
        .map(|e| e.cap_id);
    panic::install(raw, console);
    // The heap grows through the first VirtualMemory capability, whatever
    // its name.
    let vm = caps
        .iter()
        .find(|e| e.interface_id == interfaces::VIRTUAL_MEMORY)
        .map(|e| e.cap_id);
    crate::heap::enable_growth(raw, vm);

    let client =
        RingClient::new(raw, Box::new(Syscalls), protected_ranges()).map_err(|_| BAD_RING)?;
    Ok(Runtime::new(pid, caps, Ring::new(client)))
}
