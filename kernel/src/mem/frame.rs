//! The global physical frame allocator: a `capos_kcore::frame::FrameBitmap`
//! behind an interrupt-safe lock, its bitmap stored in RAM chosen from the
//! memory map.

use super::{phys_to_virt, PAGE_SIZE};
use crate::sync::IrqLock;
use alloc::vec::Vec;
use capos_kcore::frame::{FrameBitmap, FreeError, FRAME_SIZE, LOW_MEMORY_LIMIT};
use capos_kcore::range::PhysRange;

static FRAMES: IrqLock<Option<FrameBitmap<'static>>> = IrqLock::new(None);

/// Bitmap storage must be reachable through the early direct map.
const EARLY_MAP_LIMIT: u64 = 4 << 30;

/// Summary printed at boot.
#[derive(Clone, Copy, Debug)]
pub struct FrameStats {
    /// Frames the allocator could ever hand out.
    pub usable: u64,
    /// Frames free now.
    pub free: u64,
}

/// Why the frame allocator could not be set up.
#[derive(Debug)]
pub enum FrameInitError {
    /// No usable RAM below 4 GiB is large enough to hold the bitmap.
    NoRoomForBitmap { bytes: u64 },
}

/// Builds the allocator over `usable` RAM, never handing out `reserved`
/// ranges (kernel image, boot information, modules) or low memory.
pub fn init(usable: &[PhysRange], reserved: &[PhysRange]) -> Result<FrameStats, FrameInitError> {
    let limit = usable.iter().map(|r| r.end).max().unwrap_or(0);
    let words = FrameBitmap::words_needed(limit);
    let bytes = (words as u64 * 8).div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let storage =
        find_free_run(usable, reserved, bytes).ok_or(FrameInitError::NoRoomForBitmap { bytes })?;

    let mut all_reserved: Vec<PhysRange> = reserved.to_vec();
    all_reserved.push(storage);
    // SAFETY: `storage` is usable RAM below 4 GiB that overlaps nothing
    // reserved, so nothing else refers to it; the direct map covers it both
    // in the early tables and in the kernel's own tables, and it is
    // reserved in the bitmap itself so it is never handed out.
    let words_slice: &'static mut [u64] =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(storage.start) as *mut u64, words) };
    let bitmap = FrameBitmap::new(words_slice, limit, usable, &all_reserved);
    let stats = FrameStats {
        usable: bitmap.usable_frames(),
        free: bitmap.free_frames(),
    };
    *FRAMES.lock() = Some(bitmap);
    Ok(stats)
}

/// First page-aligned run of `bytes` inside `usable`, above low memory and
/// below 4 GiB, that overlaps no reserved range.
fn find_free_run(usable: &[PhysRange], reserved: &[PhysRange], bytes: u64) -> Option<PhysRange> {
    for r in usable {
        let mut start = r.start.max(LOW_MEMORY_LIMIT).next_multiple_of(PAGE_SIZE);
        while start.checked_add(bytes)? <= r.end.min(EARLY_MAP_LIMIT) {
            let cand = PhysRange::from_start_len(start, bytes);
            match reserved.iter().find(|x| x.overlaps(&cand)) {
                Some(hit) => start = hit.end.next_multiple_of(PAGE_SIZE),
                None => return Some(cand),
            }
        }
    }
    None
}

impl core::fmt::Display for FrameInitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameInitError::NoRoomForBitmap { bytes } => {
                write!(
                    f,
                    "no usable RAM below 4 GiB can hold the {bytes}-byte frame bitmap"
                )
            }
        }
    }
}

/// Allocates one frame (contents undefined).
pub fn alloc() -> Option<u64> {
    FRAMES.lock().as_mut()?.alloc()
}

/// Allocates one frame and zeroes it through the direct map.
pub fn alloc_zeroed() -> Option<u64> {
    let frame = alloc()?;
    // SAFETY: the frame was just handed out to us alone, and the direct map
    // covers all RAM the allocator manages.
    unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, FRAME_SIZE as usize) };
    Some(frame)
}

/// Allocates `count` physically consecutive frames and zeroes them;
/// returns the first one's address.
pub fn alloc_contiguous_zeroed(count: u64) -> Option<u64> {
    let base = FRAMES.lock().as_mut()?.alloc_contiguous(count)?;
    // SAFETY: the run was just handed out to us alone, and the direct map
    // covers all RAM the allocator manages, contiguously.
    unsafe {
        core::ptr::write_bytes(
            phys_to_virt(base) as *mut u8,
            0,
            (count * FRAME_SIZE) as usize,
        )
    };
    Some(base)
}

/// Returns a frame to the allocator.
pub fn free(frame: u64) -> Result<(), FreeError> {
    match FRAMES.lock().as_mut() {
        Some(b) => b.free(frame),
        None => Err(FreeError::OutOfRange),
    }
}

/// Current totals.
pub fn stats() -> FrameStats {
    let guard = FRAMES.lock();
    match guard.as_ref() {
        Some(b) => FrameStats {
            usable: b.usable_frames(),
            free: b.free_frames(),
        },
        None => FrameStats { usable: 0, free: 0 },
    }
}
