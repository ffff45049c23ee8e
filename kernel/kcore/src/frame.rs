//! Physical frame allocator: a bitmap over 4 KiB frames that never allocates.
//!
//! The bitmap keeps two bits per frame, in two halves of caller-provided
//! storage:
//!
//! * **usable** — set once at construction (and cleared by [`FrameBitmap::reserve`])
//!   for frames that may ever be handed out;
//! * **used** — set for frames that are currently allocated *or* not usable.
//!
//! A frame is free exactly when its used bit is clear, so allocation only has
//! to look at one half; the usable half lets [`FrameBitmap::free`] tell a
//! double free apart from an attempt to free firmware, kernel or module memory.

use crate::range::PhysRange;

/// Size of one physical frame in bytes.
pub const FRAME_SIZE: u64 = 4096;

/// Frames below this are never handed out (real-mode IVT/BDA/EBDA, AP trampoline page, VGA/ROM hole).
pub const LOW_MEMORY_LIMIT: u64 = 0x10_0000;

const BITS: u64 = u64::BITS as u64;

/// Why [`FrameBitmap::free`] refused an address.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum FreeError {
    /// The address is not a multiple of [`FRAME_SIZE`].
    Misaligned,
    /// The address is at or above the bitmap's limit.
    OutOfRange,
    /// The frame is usable but currently free (a double free, or a frame that
    /// was never allocated).
    NotAllocated,
    /// The frame is reserved (firmware, low memory, kernel image, modules...)
    /// and is never handed out, so it can never be freed.
    Reserved,
}

impl core::fmt::Display for FreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FreeError::Misaligned => "address is not frame aligned",
            FreeError::OutOfRange => "address is beyond the tracked physical memory",
            FreeError::NotAllocated => "frame is not allocated (double free?)",
            FreeError::Reserved => "frame is reserved and was never handed out",
        })
    }
}

/// The storage passed to [`FrameBitmap::try_new`] is shorter than
/// [`FrameBitmap::words_needed`] for the requested limit.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct StorageTooSmall {
    /// Words required.
    pub needed: usize,
    /// Words provided.
    pub provided: usize,
}

impl core::fmt::Display for StorageTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "frame bitmap needs {} words of storage, got {}",
            self.needed, self.provided
        )
    }
}

/// Bitmap frame allocator over caller-provided storage.
pub struct FrameBitmap<'a> {
    /// One bit per frame: set = allocated or not usable.
    used: &'a mut [u64],
    /// One bit per frame: set = may ever be handed out.
    usable: &'a mut [u64],
    /// Number of frames tracked (`limit / FRAME_SIZE`).
    frames: u64,
    free: u64,
    usable_count: u64,
    /// Word index where the next allocation search starts (next fit).
    hint: usize,
}

impl<'a> FrameBitmap<'a> {
    /// u64 words needed to track every frame below `limit` (phys address bound).
    ///
    /// This covers both halves of the bitmap (two bits per frame), so it is
    /// `2 * ceil((limit / FRAME_SIZE) / 64)`.
    pub const fn words_needed(limit: u64) -> usize {
        let frames = limit / FRAME_SIZE;
        (frames.div_ceil(BITS) * 2) as usize
    }

    /// Builds the allocator.
    ///
    /// Starts with every frame used; frees frames fully inside `usable` ranges
    /// (rounded inward to frame boundaries), then marks `reserved` ranges used
    /// (rounded outward), and always reserves everything below
    /// [`LOW_MEMORY_LIMIT`]. Only frames that lie entirely below `limit` are
    /// tracked; parts of ranges at or above it are ignored. Extra storage past
    /// [`Self::words_needed`] is left untouched.
    ///
    /// `reserved` should name everything the kernel already occupies: its own
    /// image, the boot modules, the multiboot information block, and the
    /// frames holding `storage` itself (or call [`Self::reserve`] for them
    /// afterwards).
    ///
    /// # Panics
    ///
    /// Panics if `storage` is shorter than [`Self::words_needed`]`(limit)`;
    /// use [`Self::try_new`] to get an error instead.
    pub fn new(
        storage: &'a mut [u64],
        limit: u64,
        usable: &[PhysRange],
        reserved: &[PhysRange],
    ) -> Self {
        match Self::try_new(storage, limit, usable, reserved) {
            Ok(bitmap) => bitmap,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Self::new`], but reports storage that is too small instead of
    /// panicking.
    pub fn try_new(
        storage: &'a mut [u64],
        limit: u64,
        usable: &[PhysRange],
        reserved: &[PhysRange],
    ) -> Result<Self, StorageTooSmall> {
        let needed = Self::words_needed(limit);
        if storage.len() < needed {
            return Err(StorageTooSmall {
                needed,
                provided: storage.len(),
            });
        }
        let half = needed / 2;
        let (used, rest) = storage.split_at_mut(half);
        let usable_bits = &mut rest[..half];
        used.fill(u64::MAX);
        usable_bits.fill(0);

        let mut bitmap = FrameBitmap {
            used,
            usable: usable_bits,
            frames: limit / FRAME_SIZE,
            free: 0,
            usable_count: 0,
            hint: 0,
        };
        for range in usable {
            if let Some((first, last)) = bitmap.frames_inward(range) {
                fill_bits(bitmap.usable, first, last, true);
                fill_bits(bitmap.used, first, last, false);
            }
        }
        let low = PhysRange::new(0, LOW_MEMORY_LIMIT);
        for range in reserved.iter().chain(core::iter::once(&low)) {
            if let Some((first, last)) = bitmap.frames_outward(range) {
                fill_bits(bitmap.usable, first, last, false);
                fill_bits(bitmap.used, first, last, true);
            }
        }
        let count = bitmap
            .usable
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum();
        bitmap.usable_count = count;
        bitmap.free = count;
        Ok(bitmap)
    }

    /// Frame indices `[first, last)` fully inside `range` and below the limit.
    fn frames_inward(&self, range: &PhysRange) -> Option<(u64, u64)> {
        let r = range.align_inward(FRAME_SIZE);
        let first = r.start / FRAME_SIZE;
        let last = (r.end / FRAME_SIZE).min(self.frames);
        (first < last).then_some((first, last))
    }

    /// Frame indices `[first, last)` touching `range`, clipped to the limit.
    fn frames_outward(&self, range: &PhysRange) -> Option<(u64, u64)> {
        if range.is_empty() {
            return None;
        }
        let first = range.start / FRAME_SIZE;
        let last = range.end.div_ceil(FRAME_SIZE).min(self.frames);
        (first < last).then_some((first, last))
    }

    /// Physical address of a free frame, now marked allocated; `None` when
    /// memory is exhausted.
    ///
    /// Next fit: the search resumes at the word of the previous allocation,
    /// so a run of allocations costs O(1) amortised.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        let words = self.used.len();
        for step in 0..words {
            let w = (self.hint + step) % words;
            let word = self.used[w];
            if word != u64::MAX {
                let bit = u64::from((!word).trailing_zeros());
                self.used[w] |= 1 << bit;
                self.free -= 1;
                self.hint = w;
                return Some((w as u64 * BITS + bit) * FRAME_SIZE);
            }
        }
        // `free` counts clear used bits, so the loop always finds one.
        debug_assert!(false, "frame bitmap free count out of sync");
        None
    }

    /// Physical address of the first run of `count` free, physically
    /// consecutive frames, now all marked allocated; `None` if `count` is 0
    /// or no such run exists (nothing changes then).
    ///
    /// First fit over the whole bitmap, one bit at a time: linear in the
    /// number of tracked frames, for the rare callers that need physically
    /// contiguous memory.
    pub fn alloc_contiguous(&mut self, count: u64) -> Option<u64> {
        if count == 0 || count > self.free {
            return None;
        }
        let is_free = |used: &[u64], i: u64| used[(i / BITS) as usize] & (1 << (i % BITS)) == 0;
        let mut run_start = 0;
        let mut run = 0;
        for i in 0..self.frames {
            if !is_free(self.used, i) {
                run = 0;
                continue;
            }
            if run == 0 {
                run_start = i;
            }
            run += 1;
            if run == count {
                for f in run_start..run_start + count {
                    self.used[(f / BITS) as usize] |= 1 << (f % BITS);
                }
                self.free -= count;
                return Some(run_start * FRAME_SIZE);
            }
        }
        None
    }

    /// Returns the frame at `addr` to the free pool.
    ///
    /// A reserved frame (never handed out) gives [`FreeError::Reserved`]; a
    /// frame that is already free gives [`FreeError::NotAllocated`]. On error
    /// nothing changes.
    pub fn free(&mut self, addr: u64) -> Result<(), FreeError> {
        let (w, mask) = self.locate(addr)?;
        if self.usable[w] & mask == 0 {
            return Err(FreeError::Reserved);
        }
        if self.used[w] & mask == 0 {
            return Err(FreeError::NotAllocated);
        }
        self.used[w] &= !mask;
        self.free += 1;
        Ok(())
    }

    /// Permanently withdraws every frame touching `range` (rounded outward)
    /// from allocation, e.g. for memory the kernel claimed after building the
    /// bitmap. Frames that were allocated stop counting as allocated.
    /// Returns how many free frames were withdrawn.
    pub fn reserve(&mut self, range: PhysRange) -> u64 {
        let Some((first, last)) = self.frames_outward(&range) else {
            return 0;
        };
        let mut withdrawn = 0;
        for frame in first..last {
            let (w, mask) = split(frame);
            if self.usable[w] & mask != 0 {
                if self.used[w] & mask == 0 {
                    self.free -= 1;
                    withdrawn += 1;
                }
                self.usable[w] &= !mask;
                self.used[w] |= mask;
                self.usable_count -= 1;
            }
        }
        withdrawn
    }

    /// Number of frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// Frames that could ever be handed out (free or allocated).
    pub fn usable_frames(&self) -> u64 {
        self.usable_count
    }

    /// Number of frames the bitmap tracks (`limit / FRAME_SIZE`).
    pub fn tracked_frames(&self) -> u64 {
        self.frames
    }

    /// True when `addr` is a frame address that is currently allocated
    /// (handed out by [`Self::alloc`] and not yet freed). Reserved, free,
    /// misaligned and out-of-range addresses give `false`.
    pub fn is_allocated(&self, addr: u64) -> bool {
        match self.locate(addr) {
            Ok((w, mask)) => self.usable[w] & mask != 0 && self.used[w] & mask != 0,
            Err(_) => false,
        }
    }

    /// True when `addr` is a frame address that may ever be handed out.
    pub fn is_usable(&self, addr: u64) -> bool {
        match self.locate(addr) {
            Ok((w, mask)) => self.usable[w] & mask != 0,
            Err(_) => false,
        }
    }

    fn locate(&self, addr: u64) -> Result<(usize, u64), FreeError> {
        if !addr.is_multiple_of(FRAME_SIZE) {
            return Err(FreeError::Misaligned);
        }
        let frame = addr / FRAME_SIZE;
        if frame >= self.frames {
            return Err(FreeError::OutOfRange);
        }
        Ok(split(frame))
    }
}

impl core::fmt::Debug for FrameBitmap<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameBitmap")
            .field("tracked_frames", &self.frames)
            .field("usable_frames", &self.usable_count)
            .field("free_frames", &self.free)
            .finish()
    }
}

/// Word index and bit mask of frame number `frame`.
fn split(frame: u64) -> (usize, u64) {
    ((frame / BITS) as usize, 1 << (frame % BITS))
}

/// Sets (or clears) bits `[first, last)` of `bits`, a word at a time where it can.
fn fill_bits(bits: &mut [u64], first: u64, last: u64, value: bool) {
    let mut i = first;
    while i < last {
        let (w, _) = split(i);
        let lo = i % BITS;
        let hi = (last - (w as u64) * BITS).min(BITS);
        let mask = if hi - lo == BITS {
            u64::MAX
        } else {
            ((1u64 << (hi - lo)) - 1) << lo
        };
        if value {
            bits[w] |= mask;
        } else {
            bits[w] &= !mask;
        }
        i = w as u64 * BITS + hi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    const MIB: u64 = 0x10_0000;

    fn storage(limit: u64) -> Vec<u64> {
        vec![0; FrameBitmap::words_needed(limit)]
    }

    #[test]
    fn words_needed_counts_both_halves() {
        assert_eq!(FrameBitmap::words_needed(0), 0);
        assert_eq!(FrameBitmap::words_needed(FRAME_SIZE), 2);
        assert_eq!(FrameBitmap::words_needed(64 * FRAME_SIZE), 2);
        assert_eq!(FrameBitmap::words_needed(65 * FRAME_SIZE), 4);
        // A partial frame at the top is not tracked.
        assert_eq!(FrameBitmap::words_needed(FRAME_SIZE - 1), 0);
    }

    #[test]
    fn low_memory_is_never_usable() {
        let limit = 4 * MIB;
        let mut s = storage(limit);
        let bm = FrameBitmap::new(&mut s, limit, &[PhysRange::new(0, limit)], &[]);
        assert_eq!(bm.usable_frames(), (limit - LOW_MEMORY_LIMIT) / FRAME_SIZE);
        assert!(!bm.is_usable(0));
        assert!(!bm.is_usable(LOW_MEMORY_LIMIT - FRAME_SIZE));
        assert!(bm.is_usable(LOW_MEMORY_LIMIT));
    }

    #[test]
    fn usable_rounds_inward_and_reserved_rounds_outward() {
        let limit = 8 * MIB;
        let mut s = storage(limit);
        let usable = [PhysRange::new(2 * MIB + 1, 2 * MIB + 3 * FRAME_SIZE + 5)];
        let reserved = [PhysRange::new(
            2 * MIB + 2 * FRAME_SIZE + 10,
            2 * MIB + 2 * FRAME_SIZE + 11,
        )];
        let bm = FrameBitmap::new(&mut s, limit, &usable, &reserved);
        // Frames 1 and 2 above 2 MiB are inside the usable range; frame 2 is reserved.
        assert_eq!(bm.usable_frames(), 1);
        assert!(bm.is_usable(2 * MIB + FRAME_SIZE));
        assert!(!bm.is_usable(2 * MIB));
        assert!(!bm.is_usable(2 * MIB + 2 * FRAME_SIZE));
        assert!(!bm.is_usable(2 * MIB + 3 * FRAME_SIZE));
    }

    #[test]
    fn frames_at_or_above_limit_are_ignored() {
        let limit = 2 * MIB + 10 * FRAME_SIZE + 100;
        let mut s = storage(limit);
        let mut bm = FrameBitmap::new(&mut s, limit, &[PhysRange::new(2 * MIB, 64 * MIB)], &[]);
        assert_eq!(bm.usable_frames(), 10);
        let mut got = Vec::new();
        while let Some(a) = bm.alloc() {
            assert!(a + FRAME_SIZE <= limit);
            got.push(a);
        }
        assert_eq!(got.len(), 10);
        assert_eq!(
            bm.free(2 * MIB + 10 * FRAME_SIZE),
            Err(FreeError::OutOfRange)
        );
    }

    #[test]
    fn contiguous_runs_skip_used_and_reserved_frames() {
        let limit = 2 * MIB + 16 * FRAME_SIZE;
        let mut s = storage(limit);
        // Frame 3 above 2 MiB is reserved: the first run of 4 starts at 4.
        let reserved = [PhysRange::new(
            2 * MIB + 3 * FRAME_SIZE,
            2 * MIB + 4 * FRAME_SIZE,
        )];
        let mut bm = FrameBitmap::new(&mut s, limit, &[PhysRange::new(2 * MIB, limit)], &reserved);
        assert_eq!(bm.free_frames(), 15);
        let a = bm.alloc_contiguous(4).unwrap();
        assert_eq!(a, 2 * MIB + 4 * FRAME_SIZE);
        assert_eq!(bm.free_frames(), 11);
        // Frames 0-2 and 8-15 are left; 9 in a row does not exist.
        assert_eq!(bm.alloc_contiguous(9), None);
        assert_eq!(bm.free_frames(), 11);
        assert_eq!(bm.alloc_contiguous(8), Some(2 * MIB + 8 * FRAME_SIZE));
        assert_eq!(bm.alloc_contiguous(0), None);
        for f in 0..4 {
            assert_eq!(bm.free(a + f * FRAME_SIZE), Ok(()));
        }
        assert_eq!(bm.free_frames(), 7);
    }

    #[test]
    fn alloc_free_cycle_and_errors() {
        let limit = 4 * MIB;
        let mut s = storage(limit);
        let kernel = PhysRange::new(MIB, MIB + 0x2_0000);
        let mut bm = FrameBitmap::new(&mut s, limit, &[PhysRange::new(0, limit)], &[kernel]);
        let before = bm.free_frames();
        let a = bm.alloc().unwrap();
        assert!(!kernel.contains(a));
        assert!(a >= LOW_MEMORY_LIMIT);
        assert!(bm.is_allocated(a));
        assert_eq!(bm.free_frames(), before - 1);
        assert_eq!(bm.free(a + 1), Err(FreeError::Misaligned));
        assert_eq!(bm.free(limit), Err(FreeError::OutOfRange));
        assert_eq!(bm.free(MIB), Err(FreeError::Reserved));
        assert_eq!(bm.free(0), Err(FreeError::Reserved));
        assert_eq!(bm.free(a), Ok(()));
        assert_eq!(bm.free(a), Err(FreeError::NotAllocated));
        assert!(!bm.is_allocated(a));
        assert!(!bm.is_allocated(MIB));
        assert_eq!(bm.free_frames(), before);
    }

    #[test]
    fn exhaustion_hands_out_each_frame_once() {
        let limit = 3 * MIB;
        let mut s = storage(limit);
        let mut bm = FrameBitmap::new(&mut s, limit, &[PhysRange::new(MIB, limit)], &[]);
        let n = bm.usable_frames();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..n {
            assert!(seen.insert(bm.alloc().unwrap()));
        }
        assert_eq!(bm.alloc(), None);
        assert_eq!(bm.free_frames(), 0);
        // A freed frame behind the hint is found again after wrapping.
        let first = *seen.iter().next().unwrap();
        bm.free(first).unwrap();
        assert_eq!(bm.alloc(), Some(first));
    }

    #[test]
    fn reserve_after_construction() {
        let limit = 4 * MIB;
        let mut s = storage(limit);
        let mut bm = FrameBitmap::new(&mut s, limit, &[PhysRange::new(MIB, limit)], &[]);
        let a = bm.alloc().unwrap();
        let usable = bm.usable_frames();
        let free = bm.free_frames();
        // Reserve the allocated frame and the one after it.
        let withdrawn = bm.reserve(PhysRange::new(a, a + FRAME_SIZE + 1));
        assert_eq!(withdrawn, 1);
        assert_eq!(bm.usable_frames(), usable - 2);
        assert_eq!(bm.free_frames(), free - 1);
        assert_eq!(bm.free(a), Err(FreeError::Reserved));
        assert!(!bm.is_allocated(a));
    }

    #[test]
    fn small_storage_is_reported() {
        let mut s = [0u64; 3];
        let err = FrameBitmap::try_new(&mut s, 4 * MIB, &[], &[]).unwrap_err();
        assert_eq!(err.needed, 32);
        assert_eq!(err.provided, 3);
        assert_eq!(
            err.to_string(),
            "frame bitmap needs 32 words of storage, got 3"
        );
    }

    #[test]
    #[should_panic(expected = "frame bitmap needs")]
    fn new_panics_on_small_storage() {
        let mut s = [0u64; 1];
        let _ = FrameBitmap::new(&mut s, 4 * MIB, &[], &[]);
    }

    #[test]
    fn fill_bits_word_edges() {
        let mut b = [0u64; 3];
        fill_bits(&mut b, 60, 130, true);
        assert_eq!(b[0], 0xf << 60);
        assert_eq!(b[1], u64::MAX);
        assert_eq!(b[2], 0b11);
        fill_bits(&mut b, 64, 128, false);
        assert_eq!(b[1], 0);
        fill_bits(&mut b, 5, 5, true);
        assert_eq!(b[0], 0xf << 60);
    }
}
