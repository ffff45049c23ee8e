//! Ring memory: the [`RingMemory`] trait the queue views run on, and its implementations.
//!
//! The views in [`crate::queue`] never touch memory directly. They go through
//! [`RingMemory`], which offers exactly the accesses the protocol needs: an
//! atomic load or store of one index word with a caller-chosen ordering, and
//! a copy of one whole entry in or out. This keeps the protocol logic in one
//! place while letting it run on:
//!
//! - [`RawRing`]: a ring mapped somewhere in memory (the kernel's view of a
//!   process ring page, or userspace's view of the same page);
//! - [`OwnedRing`]: an ordinary Rust value with the same byte layout, for host
//!   tests and for kernel-internal rings;
//! - test doubles, such as the loom model's memory built on loom atomics.
//!
//! Entries are copied with one relaxed atomic access per 64-bit word. On
//! x86_64 that compiles to the same plain moves a volatile copy would, but it
//! stays defined behaviour even when the other side writes the slot at the
//! same moment, which a hostile user process is free to do. The ordering that
//! makes entry contents visible comes from the index words (see
//! [`crate::queue`]).

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use crate::entry::{CQE_WORDS, SQE_WORDS};
use crate::layout::{CqeSlot, LayoutError, RingHeader, RingIndex, RingLayout, SqeSlot, CACHE_LINE};

/// Access to one ring's shared memory.
///
/// Implementations must make each method behave as described; the queue
/// views rely on it for correctness (FIFO delivery, no lost entries), but not
/// for memory safety, so the trait is safe to implement.
///
/// `slot` arguments are always already reduced modulo the queue size by the
/// views; implementations may reduce them again but must never access memory
/// outside the queue for any `slot` value.
pub trait RingMemory {
    /// Number of SQ slots; a power of two no larger than [`crate::MAX_ENTRIES`].
    fn sq_entries(&self) -> u32;
    /// Number of CQ slots; a power of two no larger than [`crate::MAX_ENTRIES`].
    fn cq_entries(&self) -> u32;
    /// Atomically loads an index word with `order`.
    fn load_index(&self, which: RingIndex, order: Ordering) -> u32;
    /// Atomically stores an index word with `order`.
    fn store_index(&self, which: RingIndex, value: u32, order: Ordering);
    /// Copies SQ slot `slot` out, each word with a relaxed atomic load.
    fn load_sqe(&self, slot: u32) -> [u64; SQE_WORDS];
    /// Writes SQ slot `slot`, each word with a relaxed atomic store.
    fn store_sqe(&self, slot: u32, words: &[u64; SQE_WORDS]);
    /// Writes `words` into the `n` SQ slots from `first` on (wrapping round
    /// the queue), as `n` calls of [`RingMemory::store_sqe`] would.
    /// `first` is reduced like any `slot`; `n` is at most the queue size.
    fn store_sqe_copies(&self, first: u32, n: u32, words: &[u64; SQE_WORDS]) {
        let mask = self.sq_entries() - 1;
        for i in 0..n {
            self.store_sqe(first.wrapping_add(i) & mask, words);
        }
    }
    /// Copies CQ slot `slot` out, each word with a relaxed atomic load.
    fn load_cqe(&self, slot: u32) -> [u64; CQE_WORDS];
    /// Writes CQ slot `slot`, each word with a relaxed atomic store.
    fn store_cqe(&self, slot: u32, words: &[u64; CQE_WORDS]);
}

impl<T: RingMemory + ?Sized> RingMemory for &T {
    fn sq_entries(&self) -> u32 {
        (**self).sq_entries()
    }
    fn cq_entries(&self) -> u32 {
        (**self).cq_entries()
    }
    fn load_index(&self, which: RingIndex, order: Ordering) -> u32 {
        (**self).load_index(which, order)
    }
    fn store_index(&self, which: RingIndex, value: u32, order: Ordering) {
        (**self).store_index(which, value, order)
    }
    fn load_sqe(&self, slot: u32) -> [u64; SQE_WORDS] {
        (**self).load_sqe(slot)
    }
    fn store_sqe(&self, slot: u32, words: &[u64; SQE_WORDS]) {
        (**self).store_sqe(slot, words)
    }
    fn store_sqe_copies(&self, first: u32, n: u32, words: &[u64; SQE_WORDS]) {
        (**self).store_sqe_copies(first, n, words)
    }
    fn load_cqe(&self, slot: u32) -> [u64; CQE_WORDS] {
        (**self).load_cqe(slot)
    }
    fn store_cqe(&self, slot: u32, words: &[u64; CQE_WORDS]) {
        (**self).store_cqe(slot, words)
    }
}

/// A ring in mapped memory, seen through shared references to its atomic
/// words only.
///
/// Every byte of a ring is covered by an atomic type ([`RingHeader`],
/// [`SqeSlot`], [`CqeSlot`]), so holding these references is sound even while
/// the other side of the ring writes anything anywhere in it. The queue sizes
/// are fixed when the value is made and are never re-read from shared memory.
#[derive(Clone, Copy)]
pub struct RawRing<'a> {
    header: &'a RingHeader,
    sq: &'a [SqeSlot],
    cq: &'a [CqeSlot],
    layout: RingLayout,
}

impl<'a> RawRing<'a> {
    /// Builds the view without touching the memory.
    ///
    /// # Safety
    ///
    /// `base` must be aligned to 64 bytes, and the `layout.ring_bytes()` bytes
    /// starting at `base` must be mapped readable and writable for all of
    /// `'a`. During `'a` nothing in this address space may access those bytes
    /// other than through atomic operations (another protection domain, such
    /// as the user process on the far side of the ring, may do as it likes).
    unsafe fn from_parts(base: NonNull<u8>, layout: RingLayout) -> Self {
        let base = base.as_ptr();
        // SAFETY: the caller guarantees `base` is 64-byte aligned and that the
        // ring's bytes are mapped for `'a` and only accessed atomically in
        // this address space. `RingHeader` is 320 bytes of atomics with
        // alignment 64, and the header occupies bytes 0..320 of the ring.
        let header = unsafe { &*base.cast::<RingHeader>() };
        // SAFETY: the SQ occupies `sq_offset .. sq_offset + sq_entries * 64`,
        // which lies inside the ring (`RingLayout::new` computes it so);
        // `sq_offset` is a multiple of 64 so the slots are aligned; `SqeSlot`
        // is 64 bytes of atomics, so the memory is a valid `[SqeSlot]` whose
        // only accesses are atomic, as the caller guarantees.
        let sq = unsafe {
            core::slice::from_raw_parts(
                base.add(layout.sq_offset() as usize).cast::<SqeSlot>(),
                layout.sq_entries() as usize,
            )
        };
        // SAFETY: as for the SQ: the CQ occupies
        // `cq_offset .. cq_offset + cq_entries * 32 == ring_bytes`, its
        // offset is a multiple of 64 (so of 32), and `CqeSlot` is 32 bytes of
        // atomics.
        let cq = unsafe {
            core::slice::from_raw_parts(
                base.add(layout.cq_offset() as usize).cast::<CqeSlot>(),
                layout.cq_entries() as usize,
            )
        };
        RawRing {
            header,
            sq,
            cq,
            layout,
        }
    }

    /// Initialises a ring at `base` with `layout`: writes a fresh header and
    /// zeroes every index and entry. The kernel calls this on a new ring
    /// before mapping it into the process.
    ///
    /// Returns [`LayoutError::Misaligned`] if `base` is not 64-byte aligned.
    ///
    /// # Safety
    ///
    /// The `layout.ring_bytes()` bytes starting at `base` must be mapped
    /// readable and writable for all of `'a`, and nothing in this address
    /// space may access them during `'a` other than through atomic operations.
    pub unsafe fn init(base: NonNull<u8>, layout: RingLayout) -> Result<Self, LayoutError> {
        if !(base.as_ptr() as usize).is_multiple_of(CACHE_LINE as usize) {
            return Err(LayoutError::Misaligned);
        }
        // SAFETY: alignment checked above; the remaining requirements are
        // this function's own safety contract, passed on unchanged.
        let ring = unsafe { Self::from_parts(base, layout) };
        ring.header.reset(layout);
        for slot in ring.sq {
            slot.store(&[0; SQE_WORDS]);
        }
        for slot in ring.cq {
            slot.store(&[0; CQE_WORDS]);
        }
        Ok(ring)
    }

    /// Attaches to a ring the kernel initialised at `base`: checks magic, ABI
    /// version and geometry in the header and returns the view. Userspace calls
    /// this once at start-up.
    ///
    /// # Safety
    ///
    /// The memory at `base` must hold a ring set up by [`RawRing::init`] (so
    /// its header describes its true size), mapped readable and writable for
    /// all of `'a`, and accessed during `'a` only through atomic operations in
    /// this address space.
    pub unsafe fn attach(base: NonNull<u8>) -> Result<Self, LayoutError> {
        if !(base.as_ptr() as usize).is_multiple_of(CACHE_LINE as usize) {
            return Err(LayoutError::Misaligned);
        }
        // SAFETY: `base` is aligned (checked above) and, by this function's
        // contract, the header's 320 bytes are mapped for `'a` and accessed
        // only atomically; `RingHeader` consists of atomics only.
        let header = unsafe { &*base.as_ptr().cast::<RingHeader>() };
        let layout = header.read_layout()?;
        // SAFETY: `layout` was read from a header written by `RawRing::init`,
        // which by this function's contract describes the mapped region, so
        // every requirement of `from_parts` holds.
        Ok(unsafe { Self::from_parts(base, layout) })
    }

    /// The ring's geometry (from the value given at creation, not from shared
    /// memory).
    pub fn layout(&self) -> RingLayout {
        self.layout
    }

    /// The header, for reading or (in tests) scribbling on index words.
    pub fn header(&self) -> &'a RingHeader {
        self.header
    }

    #[inline(always)]
    fn sq_slot(&self, slot: u32) -> &'a SqeSlot {
        // Masked with the layout's size rather than the slice's length (the
        // same value) so that the compiler can fold this mask into the
        // views' own, which use `sq_entries()`.
        let i = (slot & (self.layout.sq_entries() - 1)) as usize;
        // SAFETY: `sq` is exactly `layout.sq_entries()` slots long
        // (`from_parts` and `OwnedRing::ring` build it so, and nothing
        // changes either after), and `RingLayout::new` checked that size to
        // be a power of two, so non-zero: masking with `size - 1` gives an
        // index below the length for any `slot`.
        unsafe { self.sq.get_unchecked(i) }
    }

    #[inline(always)]
    fn cq_slot(&self, slot: u32) -> &'a CqeSlot {
        let i = (slot & (self.layout.cq_entries() - 1)) as usize;
        // SAFETY: as in `sq_slot`: `cq` is exactly `layout.cq_entries()`
        // slots long, a non-zero power of two.
        unsafe { self.cq.get_unchecked(i) }
    }
}

impl RingMemory for RawRing<'_> {
    #[inline(always)]
    fn sq_entries(&self) -> u32 {
        self.layout.sq_entries()
    }
    #[inline(always)]
    fn cq_entries(&self) -> u32 {
        self.layout.cq_entries()
    }
    fn load_index(&self, which: RingIndex, order: Ordering) -> u32 {
        self.header.index_word(which).load(order)
    }
    fn store_index(&self, which: RingIndex, value: u32, order: Ordering) {
        self.header.index_word(which).store(value, order)
    }
    fn load_sqe(&self, slot: u32) -> [u64; SQE_WORDS] {
        self.sq_slot(slot).load()
    }
    fn store_sqe(&self, slot: u32, words: &[u64; SQE_WORDS]) {
        self.sq_slot(slot).store(words)
    }
    // Out of line, so that the loop is not unrolled for a constant `n`
    // (unrolled, the compiler reloads the words for every copy rather than
    // keep all eight in registers).
    #[inline(never)]
    fn store_sqe_copies(&self, first: u32, n: u32, words: &[u64; SQE_WORDS]) {
        // The words, the slots' base and the mask in locals, so the loop
        // does not reload them around every store.
        let words = *words;
        let ring = *self;
        for i in 0..n {
            ring.sq_slot(first.wrapping_add(i)).store(&words);
        }
    }
    fn load_cqe(&self, slot: u32) -> [u64; CQE_WORDS] {
        self.cq_slot(slot).load()
    }
    fn store_cqe(&self, slot: u32, words: &[u64; CQE_WORDS]) {
        self.cq_slot(slot).store(words)
    }
}

/// A complete ring as an ordinary value: header, `SQ` SQE slots and `CQ` CQE
/// slots, laid out exactly as in shared memory.
///
/// `OwnedRing<32, 32>` is byte-for-byte the default process ring. Host tests
/// use it, and the kernel may use it for rings it owns itself.
#[repr(C)]
pub struct OwnedRing<const SQ: usize, const CQ: usize> {
    header: RingHeader,
    sq: [SqeSlot; SQ],
    cq: [CqeSlot; CQ],
}

/// The default ring geometry as an owned value.
pub type DefaultRing = OwnedRing<{ crate::SQ_ENTRIES as usize }, { crate::CQ_ENTRIES as usize }>;

const _: () =
    assert!(core::mem::size_of::<DefaultRing>() == crate::DEFAULT_LAYOUT.ring_bytes() as usize);
const _: () =
    assert!(core::mem::offset_of!(DefaultRing, sq) == crate::DEFAULT_LAYOUT.sq_offset() as usize);
const _: () =
    assert!(core::mem::offset_of!(DefaultRing, cq) == crate::DEFAULT_LAYOUT.cq_offset() as usize);

impl<const SQ: usize, const CQ: usize> OwnedRing<SQ, CQ> {
    const LAYOUT: RingLayout = match RingLayout::new(SQ as u32, CQ as u32) {
        Ok(layout) if layout.sq_entries() as usize == SQ && layout.cq_entries() as usize == CQ => {
            layout
        }
        _ => panic!("OwnedRing sizes must be powers of two no larger than MAX_ENTRIES"),
    };

    /// A freshly initialised ring: valid header, zero indices, zero entries.
    /// Invalid sizes are rejected at compile time.
    pub const fn new() -> Self {
        OwnedRing {
            header: RingHeader::new(Self::LAYOUT),
            sq: [const { SqeSlot::new() }; SQ],
            cq: [const { CqeSlot::new() }; CQ],
        }
    }

    /// The ring's layout.
    pub const fn layout(&self) -> RingLayout {
        Self::LAYOUT
    }

    /// A [`RawRing`] view of this ring.
    pub fn ring(&self) -> RawRing<'_> {
        RawRing {
            header: &self.header,
            sq: &self.sq,
            cq: &self.cq,
            layout: Self::LAYOUT,
        }
    }

    /// The header, for reading or (in tests) scribbling on index words.
    pub fn header(&self) -> &RingHeader {
        &self.header
    }
}

impl<const SQ: usize, const CQ: usize> Default for OwnedRing<SQ, CQ> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SQ: usize, const CQ: usize> RingMemory for OwnedRing<SQ, CQ> {
    fn sq_entries(&self) -> u32 {
        Self::LAYOUT.sq_entries()
    }
    fn cq_entries(&self) -> u32 {
        Self::LAYOUT.cq_entries()
    }
    fn load_index(&self, which: RingIndex, order: Ordering) -> u32 {
        self.ring().load_index(which, order)
    }
    fn store_index(&self, which: RingIndex, value: u32, order: Ordering) {
        self.ring().store_index(which, value, order)
    }
    fn load_sqe(&self, slot: u32) -> [u64; SQE_WORDS] {
        self.ring().load_sqe(slot)
    }
    fn store_sqe(&self, slot: u32, words: &[u64; SQE_WORDS]) {
        self.ring().store_sqe(slot, words)
    }
    fn store_sqe_copies(&self, first: u32, n: u32, words: &[u64; SQE_WORDS]) {
        self.ring().store_sqe_copies(first, n, words)
    }
    fn load_cqe(&self, slot: u32) -> [u64; CQE_WORDS] {
        self.ring().load_cqe(slot)
    }
    fn store_cqe(&self, slot: u32, words: &[u64; CQE_WORDS]) {
        self.ring().store_cqe(slot, words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_LAYOUT;

    #[test]
    fn owned_ring_header_is_valid() {
        let ring = DefaultRing::new();
        assert_eq!(ring.header().read_layout(), Ok(DEFAULT_LAYOUT));
        assert_eq!(ring.ring().layout(), DEFAULT_LAYOUT);
        assert_eq!(ring.sq_entries(), 32);
        assert_eq!(ring.cq_entries(), 32);
    }

    #[test]
    fn slots_wrap_and_stay_distinct() {
        let ring = OwnedRing::<4, 8>::new();
        let raw = ring.ring();
        for i in 0..4u32 {
            raw.store_sqe(i, &[u64::from(i) + 1; SQE_WORDS]);
        }
        for i in 0..8u32 {
            raw.store_cqe(i, &[u64::from(i) + 100; CQE_WORDS]);
        }
        // Any slot value is reduced modulo the queue size.
        assert_eq!(raw.load_sqe(5), [2; SQE_WORDS]);
        assert_eq!(raw.load_sqe(u32::MAX), [4; SQE_WORDS]);
        assert_eq!(raw.load_cqe(9), [101; CQE_WORDS]);
        assert_eq!(raw.load_cqe(u32::MAX), [107; CQE_WORDS]);
    }

    #[test]
    fn sqe_copies_wrap_round_the_queue() {
        let ring = OwnedRing::<4, 4>::new();
        let raw = ring.ring();
        raw.store_sqe_copies(u32::MAX - 1, 3, &[9; SQE_WORDS]);
        // Slots 2, 3 and 0; slot 1 untouched.
        assert_eq!(raw.load_sqe(2), [9; SQE_WORDS]);
        assert_eq!(raw.load_sqe(3), [9; SQE_WORDS]);
        assert_eq!(raw.load_sqe(0), [9; SQE_WORDS]);
        assert_eq!(raw.load_sqe(1), [0; SQE_WORDS]);
        ring.store_sqe_copies(1, 4, &[5; SQE_WORDS]);
        for slot in 0..4 {
            assert_eq!(raw.load_sqe(slot), [5; SQE_WORDS]);
        }
    }

    /// A 64-byte aligned buffer big enough for the default ring.
    #[repr(C, align(4096))]
    struct Page([u8; 4096]);

    #[test]
    fn init_and_attach_through_raw_pointers() {
        let mut page = Box::new(Page([0xA5; 4096]));
        let base = NonNull::new(page.0.as_mut_ptr()).unwrap();
        // SAFETY: `page` is a live 4096-byte, 4096-aligned heap buffer that
        // outlives `kernel` and `user` (both are dropped before it), and while
        // they live it is only accessed through them, i.e. atomically.
        let kernel = unsafe { RawRing::init(base, DEFAULT_LAYOUT) }.unwrap();
        // SAFETY: same buffer, now holding a ring written by `init`.
        let user = unsafe { RawRing::attach(base) }.unwrap();
        assert_eq!(user.layout(), DEFAULT_LAYOUT);
        assert_eq!(user.load_sqe(3), [0; SQE_WORDS]);
        user.store_sqe(3, &[7; SQE_WORDS]);
        assert_eq!(kernel.load_sqe(3), [7; SQE_WORDS]);
        kernel.store_index(RingIndex::CqTail, 9, Ordering::Release);
        assert_eq!(user.load_index(RingIndex::CqTail, Ordering::Acquire), 9);
        user.header().magic.store(0, Ordering::Relaxed);
        // SAFETY: same buffer as above.
        let attached = unsafe { RawRing::attach(base) };
        assert_eq!(attached.err(), Some(LayoutError::BadMagic));

        let odd = NonNull::new(base.as_ptr().wrapping_add(8)).unwrap();
        // SAFETY: the call fails its alignment check before touching memory.
        let misaligned = unsafe { RawRing::init(odd, DEFAULT_LAYOUT) };
        assert_eq!(misaligned.err(), Some(LayoutError::Misaligned));
        // Check the byte image: magic at offset 0, SQ slot 3 word 0 at 0x140 + 3 * 64.
        // `kernel` and `user` are not used past this point.
        let bytes = &page.0;
        assert_eq!(&bytes[0..4], b"\0\0\0\0");
        assert_eq!(&bytes[0x140 + 192..0x140 + 200], &7u64.to_le_bytes());
        assert_eq!(&bytes[0xC0..0xC4], &9u32.to_le_bytes());
    }
}
