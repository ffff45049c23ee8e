//! Byte layout of a ring: header, index cache lines, entry slots and size arithmetic.
//!
//! A ring is one contiguous, 64-byte aligned region:
//!
//! ```text
//! 0x000  RingHeader (320 bytes: one metadata line + four index lines)
//! 0x140  SQ: sq_entries x 64-byte SQE slots
//! ....   CQ: cq_entries x 32-byte CQE slots
//! ```
//!
//! With the default geometry ([`SQ_ENTRIES`] = 32, [`CQ_ENTRIES`] = 32) the
//! whole ring is 3392 bytes and fits in one 4 KiB page ([`RING_PAGES`] = 1).
//! [`RingLayout::new`] computes the layout of any other legal geometry.

use core::mem::{align_of, offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::entry::{Cqe, Sqe, CQE_WORDS, SQE_WORDS};

/// `b"CRNG"` read as a little-endian `u32`; the first word of every ring.
pub const RING_MAGIC: u32 = u32::from_le_bytes(*b"CRNG");
/// Version of the ring ABI described by this crate. Bumped on any layout or
/// semantic change.
pub const ABI_VERSION: u32 = 1;

/// Size of a page as far as ring sizing is concerned.
pub const PAGE_SIZE: u32 = 4096;
/// Size of the cache line that separates producer and consumer indices.
pub const CACHE_LINE: u32 = 64;
/// Size of the ring header in bytes (five cache lines).
pub const HEADER_SIZE: u32 = 320;
/// Size of one submission queue entry.
pub const SQE_SIZE: u32 = 64;
/// Size of one completion queue entry.
pub const CQE_SIZE: u32 = 32;

/// Default number of submission queue entries.
pub const SQ_ENTRIES: u32 = 32;
/// Default number of completion queue entries.
pub const CQ_ENTRIES: u32 = 32;
/// Largest queue size either queue may have. Keeps every offset in a `u32`
/// and every index distance far below the wrap point of the free-running
/// `u32` indices.
pub const MAX_ENTRIES: u32 = 4096;

/// The default ring geometry used for every process ring.
pub const DEFAULT_LAYOUT: RingLayout = match RingLayout::new(SQ_ENTRIES, CQ_ENTRIES) {
    Ok(layout) => layout,
    Err(_) => panic!("default ring geometry is invalid"),
};
/// Number of 4 KiB pages the default ring occupies.
pub const RING_PAGES: u32 = DEFAULT_LAYOUT.pages();

/// Names one of the four index words in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingIndex {
    /// Next SQ slot userspace will fill. Written by userspace only.
    SqTail,
    /// Next SQ slot the kernel will consume. Written by the kernel only.
    SqHead,
    /// Next CQ slot the kernel will fill. Written by the kernel only.
    CqTail,
    /// Next CQ slot userspace will read. Written by userspace only.
    CqHead,
}

impl RingIndex {
    /// All four index words, in header order.
    pub const ALL: [RingIndex; 4] = [
        RingIndex::SqTail,
        RingIndex::SqHead,
        RingIndex::CqTail,
        RingIndex::CqHead,
    ];
}

/// One index word alone on its own 64-byte cache line.
///
/// Every word is atomic, including the padding, so a shared reference into
/// memory that another protection domain writes at will is still sound.
#[repr(C, align(64))]
pub struct IndexLine {
    /// The free-running index value.
    pub value: AtomicU32,
    reserved: [AtomicU32; 15],
}

impl IndexLine {
    const fn new() -> Self {
        IndexLine {
            value: AtomicU32::new(0),
            reserved: [const { AtomicU32::new(0) }; 15],
        }
    }
}

/// The ring header as it sits at offset 0 of the ring.
///
/// Geometry words are written once by the kernel before the ring is mapped
/// into userspace. The kernel never reads them back: it keeps its own
/// [`RingLayout`]. Userspace validates them once in [`crate::RawRing::attach`].
#[repr(C, align(64))]
pub struct RingHeader {
    /// [`RING_MAGIC`].
    pub magic: AtomicU32,
    /// [`ABI_VERSION`].
    pub abi_version: AtomicU32,
    /// Number of SQ entries (power of two).
    pub sq_entries: AtomicU32,
    /// Number of CQ entries (power of two).
    pub cq_entries: AtomicU32,
    /// Byte offset of SQ slot 0 from the start of the ring.
    pub sq_offset: AtomicU32,
    /// Byte offset of CQ slot 0 from the start of the ring.
    pub cq_offset: AtomicU32,
    /// Total size of the ring in bytes.
    pub ring_bytes: AtomicU32,
    reserved0: [AtomicU32; 9],
    /// SQ tail: written by userspace (release), read by the kernel (acquire).
    pub sq_tail: IndexLine,
    /// SQ head: written by the kernel (release), read by userspace (acquire).
    pub sq_head: IndexLine,
    /// CQ tail: written by the kernel (release), read by userspace (acquire).
    pub cq_tail: IndexLine,
    /// CQ head: written by userspace (release), read by the kernel (acquire).
    pub cq_head: IndexLine,
}

impl RingHeader {
    /// A header describing `layout`, with all indices zero.
    pub const fn new(layout: RingLayout) -> Self {
        RingHeader {
            magic: AtomicU32::new(RING_MAGIC),
            abi_version: AtomicU32::new(ABI_VERSION),
            sq_entries: AtomicU32::new(layout.sq_entries),
            cq_entries: AtomicU32::new(layout.cq_entries),
            sq_offset: AtomicU32::new(layout.sq_offset),
            cq_offset: AtomicU32::new(layout.cq_offset),
            ring_bytes: AtomicU32::new(layout.ring_bytes),
            reserved0: [const { AtomicU32::new(0) }; 9],
            sq_tail: IndexLine::new(),
            sq_head: IndexLine::new(),
            cq_tail: IndexLine::new(),
            cq_head: IndexLine::new(),
        }
    }

    /// The atomic word behind `which`.
    pub fn index_word(&self, which: RingIndex) -> &AtomicU32 {
        match which {
            RingIndex::SqTail => &self.sq_tail.value,
            RingIndex::SqHead => &self.sq_head.value,
            RingIndex::CqTail => &self.cq_tail.value,
            RingIndex::CqHead => &self.cq_head.value,
        }
    }

    /// Overwrites every word of the header so it describes `layout` with all
    /// indices zero. Used by the kernel when it sets up a ring; the stores are
    /// relaxed because the ring is published to userspace by mapping it, which
    /// is itself a synchronising operation.
    pub fn reset(&self, layout: RingLayout) {
        let fresh = RingHeader::new(layout);
        self.magic
            .store(fresh.magic.into_inner(), Ordering::Relaxed);
        self.abi_version
            .store(fresh.abi_version.into_inner(), Ordering::Relaxed);
        self.sq_entries.store(layout.sq_entries, Ordering::Relaxed);
        self.cq_entries.store(layout.cq_entries, Ordering::Relaxed);
        self.sq_offset.store(layout.sq_offset, Ordering::Relaxed);
        self.cq_offset.store(layout.cq_offset, Ordering::Relaxed);
        self.ring_bytes.store(layout.ring_bytes, Ordering::Relaxed);
        for word in &self.reserved0 {
            word.store(0, Ordering::Relaxed);
        }
        for which in RingIndex::ALL {
            self.index_word(which).store(0, Ordering::Relaxed);
        }
    }

    /// Reads and checks the geometry words written by [`RingHeader::reset`].
    ///
    /// Used by userspace when attaching; the kernel never calls it on a live
    /// ring because it never trusts header contents.
    pub fn read_layout(&self) -> Result<RingLayout, LayoutError> {
        if self.magic.load(Ordering::Relaxed) != RING_MAGIC {
            return Err(LayoutError::BadMagic);
        }
        if self.abi_version.load(Ordering::Relaxed) != ABI_VERSION {
            return Err(LayoutError::BadVersion);
        }
        let layout = RingLayout::new(
            self.sq_entries.load(Ordering::Relaxed),
            self.cq_entries.load(Ordering::Relaxed),
        )?;
        if self.sq_offset.load(Ordering::Relaxed) != layout.sq_offset
            || self.cq_offset.load(Ordering::Relaxed) != layout.cq_offset
            || self.ring_bytes.load(Ordering::Relaxed) != layout.ring_bytes
        {
            return Err(LayoutError::Mismatch);
        }
        Ok(layout)
    }
}

/// Storage for one SQE in shared memory: eight little-endian words.
#[repr(C, align(64))]
pub struct SqeSlot {
    pub(crate) words: [AtomicU64; SQE_WORDS],
}

impl SqeSlot {
    /// An all-zero slot.
    pub const fn new() -> Self {
        SqeSlot {
            words: [const { AtomicU64::new(0) }; SQE_WORDS],
        }
    }

    /// Copies the slot out with one relaxed load per word.
    pub fn load(&self) -> [u64; SQE_WORDS] {
        core::array::from_fn(|i| self.words[i].load(Ordering::Relaxed))
    }

    /// Writes the slot with one relaxed store per word.
    pub fn store(&self, words: &[u64; SQE_WORDS]) {
        for (cell, word) in self.words.iter().zip(words) {
            cell.store(*word, Ordering::Relaxed);
        }
    }
}

impl Default for SqeSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// Storage for one CQE in shared memory: four little-endian words.
#[repr(C, align(32))]
pub struct CqeSlot {
    pub(crate) words: [AtomicU64; CQE_WORDS],
}

impl CqeSlot {
    /// An all-zero slot.
    pub const fn new() -> Self {
        CqeSlot {
            words: [const { AtomicU64::new(0) }; CQE_WORDS],
        }
    }

    /// Copies the slot out with one relaxed load per word.
    pub fn load(&self) -> [u64; CQE_WORDS] {
        core::array::from_fn(|i| self.words[i].load(Ordering::Relaxed))
    }

    /// Writes the slot with one relaxed store per word.
    pub fn store(&self, words: &[u64; CQE_WORDS]) {
        for (cell, word) in self.words.iter().zip(words) {
            cell.store(*word, Ordering::Relaxed);
        }
    }
}

impl Default for CqeSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a ring geometry or header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayoutError {
    /// A queue size is zero or not a power of two.
    NotPowerOfTwo,
    /// A queue size exceeds [`MAX_ENTRIES`].
    TooManyEntries,
    /// The ring base address is not 64-byte aligned.
    Misaligned,
    /// The header does not start with [`RING_MAGIC`].
    BadMagic,
    /// The header carries a different [`ABI_VERSION`].
    BadVersion,
    /// The header's offsets or size disagree with its queue sizes.
    Mismatch,
}

/// Where everything lives in a ring of a given geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RingLayout {
    sq_entries: u32,
    cq_entries: u32,
    sq_offset: u32,
    cq_offset: u32,
    ring_bytes: u32,
}

impl RingLayout {
    /// Computes the layout for `sq_entries` SQEs and `cq_entries` CQEs.
    ///
    /// Both sizes must be powers of two no larger than [`MAX_ENTRIES`]. The SQ
    /// follows the header directly; the CQ follows the SQ. Both offsets are
    /// multiples of 64.
    pub const fn new(sq_entries: u32, cq_entries: u32) -> Result<Self, LayoutError> {
        if !sq_entries.is_power_of_two() || !cq_entries.is_power_of_two() {
            return Err(LayoutError::NotPowerOfTwo);
        }
        if sq_entries > MAX_ENTRIES || cq_entries > MAX_ENTRIES {
            return Err(LayoutError::TooManyEntries);
        }
        // Cannot overflow: 320 + 4096 * 64 + 4096 * 32 < 2^19.
        let sq_offset = HEADER_SIZE;
        let cq_offset = sq_offset + sq_entries * SQE_SIZE;
        let ring_bytes = cq_offset + cq_entries * CQE_SIZE;
        Ok(RingLayout {
            sq_entries,
            cq_entries,
            sq_offset,
            cq_offset,
            ring_bytes,
        })
    }

    /// Number of SQ entries.
    pub const fn sq_entries(&self) -> u32 {
        self.sq_entries
    }

    /// Number of CQ entries.
    pub const fn cq_entries(&self) -> u32 {
        self.cq_entries
    }

    /// Byte offset of SQ slot 0.
    pub const fn sq_offset(&self) -> u32 {
        self.sq_offset
    }

    /// Byte offset of CQ slot 0.
    pub const fn cq_offset(&self) -> u32 {
        self.cq_offset
    }

    /// Total size of the ring in bytes.
    pub const fn ring_bytes(&self) -> u32 {
        self.ring_bytes
    }

    /// Number of 4 KiB pages needed to map the ring.
    pub const fn pages(&self) -> u32 {
        self.ring_bytes.div_ceil(PAGE_SIZE)
    }
}

// Compile-time checks of every size and offset in the ABI. A failure here is
// an ABI change and must be reviewed as one (see docs/ring-abi.md).
const _: () = assert!(size_of::<IndexLine>() == CACHE_LINE as usize);
const _: () = assert!(align_of::<IndexLine>() == CACHE_LINE as usize);
const _: () = assert!(size_of::<RingHeader>() == HEADER_SIZE as usize);
const _: () = assert!(align_of::<RingHeader>() == CACHE_LINE as usize);
const _: () = assert!(offset_of!(RingHeader, magic) == 0x00);
const _: () = assert!(offset_of!(RingHeader, abi_version) == 0x04);
const _: () = assert!(offset_of!(RingHeader, sq_entries) == 0x08);
const _: () = assert!(offset_of!(RingHeader, cq_entries) == 0x0C);
const _: () = assert!(offset_of!(RingHeader, sq_offset) == 0x10);
const _: () = assert!(offset_of!(RingHeader, cq_offset) == 0x14);
const _: () = assert!(offset_of!(RingHeader, ring_bytes) == 0x18);
const _: () = assert!(offset_of!(RingHeader, reserved0) == 0x1C);
const _: () = assert!(offset_of!(RingHeader, sq_tail) == 0x40);
const _: () = assert!(offset_of!(RingHeader, sq_head) == 0x80);
const _: () = assert!(offset_of!(RingHeader, cq_tail) == 0xC0);
const _: () = assert!(offset_of!(RingHeader, cq_head) == 0x100);
const _: () = assert!(offset_of!(IndexLine, value) == 0);
const _: () = assert!(HEADER_SIZE.is_multiple_of(CACHE_LINE));
const _: () = assert!(size_of::<SqeSlot>() == SQE_SIZE as usize);
const _: () = assert!(size_of::<CqeSlot>() == CQE_SIZE as usize);
const _: () = assert!(size_of::<Sqe>() == SQE_SIZE as usize);
const _: () = assert!(size_of::<Cqe>() == CQE_SIZE as usize);
const _: () = assert!(align_of::<SqeSlot>() == 64);
const _: () = assert!(align_of::<CqeSlot>() == 32);
const _: () = assert!(SQE_SIZE as usize == SQE_WORDS * 8);
const _: () = assert!(CQE_SIZE as usize == CQE_WORDS * 8);
const _: () = assert!(DEFAULT_LAYOUT.sq_offset() == 0x140);
const _: () = assert!(DEFAULT_LAYOUT.cq_offset() == 0x940);
const _: () = assert!(DEFAULT_LAYOUT.ring_bytes() == 0xD40);
const _: () = assert!(RING_PAGES == 1);
const _: () = assert!(DEFAULT_LAYOUT.cq_offset().is_multiple_of(CACHE_LINE));
// The largest legal ring still leaves index distances far from u32 wrap.
const _: () = assert!(MAX_ENTRIES.is_power_of_two() && MAX_ENTRIES <= 1 << 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_geometries() {
        assert_eq!(RingLayout::new(0, 32), Err(LayoutError::NotPowerOfTwo));
        assert_eq!(RingLayout::new(32, 48), Err(LayoutError::NotPowerOfTwo));
        assert_eq!(
            RingLayout::new(MAX_ENTRIES * 2, 1),
            Err(LayoutError::TooManyEntries)
        );
        assert!(RingLayout::new(1, 1).is_ok());
        assert!(RingLayout::new(MAX_ENTRIES, MAX_ENTRIES).is_ok());
    }

    #[test]
    fn layout_arithmetic() {
        let l = RingLayout::new(16, 64).unwrap();
        assert_eq!(l.sq_offset(), 320);
        assert_eq!(l.cq_offset(), 320 + 16 * 64);
        assert_eq!(l.ring_bytes(), 320 + 16 * 64 + 64 * 32);
        assert_eq!(l.pages(), 1);
        let big = RingLayout::new(64, 128).unwrap();
        assert_eq!(big.ring_bytes(), 320 + 4096 + 4096);
        assert_eq!(big.pages(), 3);
        let max = RingLayout::new(MAX_ENTRIES, MAX_ENTRIES).unwrap();
        assert_eq!(max.ring_bytes(), 320 + MAX_ENTRIES * 96);
    }

    #[test]
    fn magic_spells_crng() {
        assert_eq!(RING_MAGIC.to_le_bytes(), *b"CRNG");
        assert_eq!(RING_MAGIC, 0x474E_5243);
    }

    #[test]
    fn header_round_trip_and_rejection() {
        let layout = RingLayout::new(8, 16).unwrap();
        let header = RingHeader::new(DEFAULT_LAYOUT);
        header.sq_tail.value.store(7, Ordering::Relaxed);
        header.reset(layout);
        assert_eq!(header.read_layout(), Ok(layout));
        assert_eq!(
            header.index_word(RingIndex::SqTail).load(Ordering::Relaxed),
            0
        );

        header.cq_offset.store(0, Ordering::Relaxed);
        assert_eq!(header.read_layout(), Err(LayoutError::Mismatch));
        header.reset(layout);
        header.abi_version.store(ABI_VERSION + 1, Ordering::Relaxed);
        assert_eq!(header.read_layout(), Err(LayoutError::BadVersion));
        header.reset(layout);
        header.magic.store(0, Ordering::Relaxed);
        assert_eq!(header.read_layout(), Err(LayoutError::BadMagic));
        header.reset(layout);
        header.sq_entries.store(3, Ordering::Relaxed);
        assert_eq!(header.read_layout(), Err(LayoutError::NotPowerOfTwo));
    }

    #[test]
    fn index_words_are_distinct() {
        let header = RingHeader::new(DEFAULT_LAYOUT);
        for (n, which) in RingIndex::ALL.into_iter().enumerate() {
            header
                .index_word(which)
                .store(n as u32 + 1, Ordering::Relaxed);
        }
        for (n, which) in RingIndex::ALL.into_iter().enumerate() {
            assert_eq!(
                header.index_word(which).load(Ordering::Relaxed),
                n as u32 + 1
            );
        }
    }
}
