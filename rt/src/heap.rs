//! The process heap: `talc` over a static arena in `.bss`, grown through
//! the process's `VirtualMemory` capability when the arena runs out.
//!
//! When `talc` finds no room it asks its source ([`GrowingSource`]) for
//! more. The source maps a chunk of anonymous read-write memory, asking for
//! it right after the previous chunk so that `talc` can extend that span
//! instead of opening a new one, and hands it to the allocator. The map call
//! is made from inside the allocator, where nothing may allocate and where
//! the ring client may be half-way through an operation, so it goes through
//! [`crate::direct`]: parameters encoded by hand into a fixed buffer, the
//! SQE pushed and its CQE awaited beside the client, other completions
//! stashed for it.
//!
//! Without a `VirtualMemory` capability, or when the kernel refuses the map
//! (typically the frame quota), the allocation fails as it always did; the
//! reason is kept for the panic report of the allocation failure.
//!
//! The policy, the messages and the source are host-tested; the global
//! allocator itself exists only in a capOS process.

use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;
use talc::base::binning::Binning;
use talc::base::Talc;
use talc::source::Source;

/// Size of the static arena the heap starts with.
pub const ARENA_SIZE: usize = 512 * 1024;
/// Smallest growth: a small allocation that does not fit maps this much.
pub const GROW_MIN: usize = 256 * 1024;
/// Largest growth: one `VirtualMemory.map` may map at most this much (the
/// kernel's limit).
pub const GROW_MAX: usize = 64 << 20;
/// Growths are whole pages.
pub const PAGE: usize = 4096;
/// What `talc` needs beyond the bytes of an allocation placed in a fresh
/// span: the span's base tag, the chunk's tail tag and rounding to its
/// 32-byte chunk unit, with room to spare.
const SPAN_OVERHEAD: usize = 128;

/// Bytes to map so that an allocation of `size` bytes aligned to `align`
/// fits in a fresh span: at least [`GROW_MIN`], whole pages, `None` above
/// [`GROW_MAX`].
pub fn grow_size(size: usize, align: usize) -> Option<usize> {
    let need = size
        .checked_add(align.max(1))?
        .checked_add(SPAN_OVERHEAD)?
        .checked_next_multiple_of(PAGE)?;
    let bytes = need.max(GROW_MIN);
    (bytes <= GROW_MAX).then_some(bytes)
}

/// `VirtualMemory` protection bits the heap maps with (read, write).
pub const PROT_READ_WRITE: u32 = crate::client::prot::READ | crate::client::prot::WRITE;
/// `VirtualMemory.map`'s method ordinal.
pub const MAP_METHOD: u16 = capos_caps::api::virtual_memory::MAP;

/// Bytes of a serialized `VirtualMemory.map` parameter message.
pub const MAP_PARAMS_BYTES: usize = 40;

/// Writes `VirtualMemory.map(hint, size, prot)`'s parameters into `out` as
/// a one-segment message, without allocating; returns the bytes used (0 if
/// `out` is too small).
///
/// The struct has three data words (`hint`, `size`, `prot` in the low half
/// of the third) and no pointers.
pub fn encode_map_params(hint: u64, size: u64, prot: u32, out: &mut [u8]) -> usize {
    let Some(out) = out.get_mut(..MAP_PARAMS_BYTES) else {
        return 0;
    };
    // Segment table: one segment (count - 1 = 0) of four words.
    out[0..4].copy_from_slice(&0u32.to_le_bytes());
    out[4..8].copy_from_slice(&4u32.to_le_bytes());
    // Root: struct pointer (tag 0), offset 0, three data words, no pointers.
    out[8..16].copy_from_slice(&(3u64 << 32).to_le_bytes());
    out[16..24].copy_from_slice(&hint.to_le_bytes());
    out[24..32].copy_from_slice(&size.to_le_bytes());
    out[32..40].copy_from_slice(&u64::from(prot).to_le_bytes());
    MAP_PARAMS_BYTES
}

/// The root struct of a one-segment message, located but not copied.
struct Root<'a> {
    seg: &'a [u8],
    /// Word index of the struct's data section.
    data: usize,
    data_words: usize,
    ptrs: usize,
}

fn word(seg: &[u8], index: usize) -> Option<u64> {
    let bytes = seg.get(index.checked_mul(8)?..index.checked_mul(8)?.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Signed word offset of a struct or list pointer.
fn offset(p: u64) -> i64 {
    i64::from((p as u32 as i32) >> 2)
}

/// Word index `from + 1 + offset`, if it is not negative.
fn target(from: usize, p: u64) -> Option<usize> {
    usize::try_from((from as i64).checked_add(1)?.checked_add(offset(p))?).ok()
}

impl<'a> Root<'a> {
    /// Finds the root struct of `bytes` (segment table and one segment).
    /// Multi-segment messages and far pointers are refused; the kernel's
    /// small results never use them.
    fn parse(bytes: &'a [u8]) -> Option<Self> {
        let count = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
        let words = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
        if count != 0 {
            return None;
        }
        let seg = bytes.get(8..8 + words.checked_mul(8)?)?;
        let p = word(seg, 0)?;
        if p == 0 {
            // A null root reads as the default struct.
            return Some(Root {
                seg,
                data: 0,
                data_words: 0,
                ptrs: 0,
            });
        }
        if p & 3 != 0 {
            return None;
        }
        let data = target(0, p)?;
        let data_words = ((p >> 32) & 0xffff) as usize;
        let ptrs = (p >> 48) as usize;
        if data.checked_add(data_words)?.checked_add(ptrs)? > words {
            return None;
        }
        Some(Root {
            seg,
            data,
            data_words,
            ptrs,
        })
    }

    /// Data word `i` (zero beyond the data section, as Cap'n Proto reads
    /// fields a smaller struct does not have).
    fn data_word(&self, i: usize) -> u64 {
        if i < self.data_words {
            word(self.seg, self.data + i).unwrap_or(0)
        } else {
            0
        }
    }

    /// Text pointer `i`, without its NUL; empty when null or absent.
    fn text(&self, i: usize) -> Option<&'a [u8]> {
        if i >= self.ptrs {
            return Some(&[]);
        }
        let at = self.data + self.data_words + i;
        let p = word(self.seg, at)?;
        if p == 0 {
            return Some(&[]);
        }
        // List pointer (tag 1) of bytes (element size 2).
        if p & 3 != 1 || (p >> 32) & 7 != 2 {
            return None;
        }
        let len = (p >> 35) as usize;
        let start = target(at, p)?.checked_mul(8)?;
        let bytes = self.seg.get(start..start.checked_add(len)?)?;
        match bytes.split_last() {
            Some((0, text)) => Some(text),
            _ => None,
        }
    }
}

/// `VirtualMemory.map`'s result: the address.
pub fn decode_map_results(bytes: &[u8]) -> Option<u64> {
    Some(Root::parse(bytes)?.data_word(0))
}

/// A `CapException`'s kind (the schema's enum ordinal) and message.
pub fn decode_exception(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let root = Root::parse(bytes)?;
    Some((root.data_word(0) as u16, root.text(0)?))
}

/// Longest exception message kept for the failure report.
pub const REASON_BYTES: usize = 120;

/// Why the heap could not grow.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GrowFailure {
    /// The process holds no `VirtualMemory` capability.
    NoVirtualMemory,
    /// One allocation needs more than one map may give.
    TooLarge {
        /// The allocation's size.
        size: usize,
    },
    /// The kernel refused the map with an exception (its message, cut).
    Refused {
        /// `CapException.Type` ordinal.
        kind: u16,
        /// Message bytes.
        text: [u8; REASON_BYTES],
        /// How many of them are used.
        len: u8,
    },
    /// The CQE carried a transport error.
    Transport(i32),
    /// The direct ring call failed.
    Ring(crate::direct::DirectError),
    /// The answer was not a usable address.
    BadReply,
}

impl GrowFailure {
    fn refused(kind: u16, msg: &[u8]) -> Self {
        let mut text = [0; REASON_BYTES];
        let len = msg.len().min(REASON_BYTES);
        text[..len].copy_from_slice(&msg[..len]);
        GrowFailure::Refused {
            kind,
            text,
            len: len as u8,
        }
    }
}

impl fmt::Display for GrowFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrowFailure::NoVirtualMemory => f.write_str("no VirtualMemory capability"),
            GrowFailure::TooLarge { size } => write!(
                f,
                "{size} bytes is more than one growth may map ({} MiB)",
                GROW_MAX >> 20
            ),
            GrowFailure::Refused { kind, text, len } => {
                let kind = match kind {
                    0 => "failed",
                    1 => "overloaded",
                    2 => "disconnected",
                    3 => "unimplemented",
                    _ => "exception",
                };
                let text = &text[..usize::from(*len)];
                let text = match core::str::from_utf8(text) {
                    Ok(t) => t,
                    Err(e) => core::str::from_utf8(&text[..e.valid_up_to()]).unwrap_or(""),
                };
                write!(f, "VirtualMemory.map {kind}: {text}")
            }
            GrowFailure::Transport(code) => match capos_ring::TransportError::from_i32(*code) {
                Some(e) => write!(f, "VirtualMemory.map: {}", e.name()),
                None => write!(f, "VirtualMemory.map: transport error {code}"),
            },
            GrowFailure::Ring(e) => write!(f, "ring: {}", e.describe()),
            GrowFailure::BadReply => f.write_str("VirtualMemory.map gave no usable address"),
        }
    }
}

impl fmt::Debug for GrowFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Reads a `VirtualMemory.map` completion: the address, or why there is none.
pub fn interpret_map(cqe: &capos_ring::Cqe, bytes: &[u8]) -> Result<usize, GrowFailure> {
    match cqe.status() {
        capos_ring::CqeStatus::Ok(_) if cqe.flags & capos_ring::CQE_FLAG_EXCEPTION != 0 => {
            match decode_exception(bytes) {
                Some((kind, text)) => Err(GrowFailure::refused(kind, text)),
                None => Err(GrowFailure::BadReply),
            }
        }
        capos_ring::CqeStatus::Ok(_) => decode_map_results(bytes)
            .and_then(|a| usize::try_from(a).ok())
            .ok_or(GrowFailure::BadReply),
        capos_ring::CqeStatus::Err(e) => Err(GrowFailure::Transport(e.code())),
        capos_ring::CqeStatus::Unknown(code) => Err(GrowFailure::Transport(code)),
    }
}

/// Where heap memory comes from: maps `size` bytes (whole pages) of
/// zeroed read-write memory for this process alone, preferably at `hint`.
pub trait Mapper {
    /// The mapped address.
    fn map(&mut self, hint: usize, size: usize) -> Result<usize, GrowFailure>;
}

/// What the heap has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes of the static arena.
    pub arena_bytes: usize,
    /// Successful growths (one map each).
    pub growths: u64,
    /// Bytes mapped by them.
    pub bytes_mapped: u64,
    /// Growths that extended the previous span (mapped right after it).
    pub extended: u64,
    /// Growths that opened a new span.
    pub new_spans: u64,
    /// Growths refused (each one an allocation that failed).
    pub failures: u64,
}

/// Most spans remembered for [`GrowingSource::overlaps`]; beyond that the
/// last one is widened to cover the new span (conservative).
const SPANS: usize = 16;

/// A `talc` source that grows the heap through a [`Mapper`].
///
/// Heap memory from the mapper must stay mapped, read-write, for the life
/// of the allocator; [`GrowingSource::overlaps`] lets the `VirtualMemory`
/// client refuse to unmap or re-protect it.
pub struct GrowingSource<M> {
    /// The mapper.
    pub mapper: M,
    /// End of the last mapping (0 before the first).
    mapped_end: usize,
    /// Talc's end of the span that mapping belongs to.
    heap_end: usize,
    spans: [(usize, usize); SPANS],
    span_count: usize,
    stats: HeapStats,
    last_failure: Option<GrowFailure>,
}

impl<M> fmt::Debug for GrowingSource<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrowingSource")
            .field("stats", &self.stats)
            .field("last_failure", &self.last_failure)
            .finish()
    }
}

impl<M> GrowingSource<M> {
    /// A source that has grown nothing yet, over an arena of `arena_bytes`.
    pub const fn new(mapper: M, arena_bytes: usize) -> Self {
        GrowingSource {
            mapper,
            mapped_end: 0,
            heap_end: 0,
            spans: [(0, 0); SPANS],
            span_count: 0,
            stats: HeapStats {
                arena_bytes,
                growths: 0,
                bytes_mapped: 0,
                extended: 0,
                new_spans: 0,
                failures: 0,
            },
            last_failure: None,
        }
    }

    /// Counters.
    pub fn stats(&self) -> HeapStats {
        self.stats
    }

    /// Why the last growth failed, if the last attempt failed.
    pub fn last_failure(&self) -> Option<GrowFailure> {
        self.last_failure
    }

    /// Whether `[addr, addr + size)` touches memory the heap mapped.
    pub fn overlaps(&self, addr: u64, size: u64) -> bool {
        let end = addr.saturating_add(size);
        self.spans[..self.span_count]
            .iter()
            .any(|&(lo, hi)| addr < hi as u64 && (lo as u64) < end)
    }

    fn fail(&mut self, why: GrowFailure) {
        self.stats.failures += 1;
        self.last_failure = Some(why);
    }

    fn remember(&mut self, addr: usize, end: usize) {
        if let Some(last) = self.span_count.checked_sub(1).map(|i| &mut self.spans[i]) {
            if last.1 == addr {
                last.1 = end;
                return;
            }
            if self.span_count == SPANS {
                *last = (last.0.min(addr), last.1.max(end));
                return;
            }
        }
        self.spans[self.span_count] = (addr, end);
        self.span_count += 1;
    }
}

// SAFETY: `acquire` allocates nothing and never touches the allocator that
// owns it except through the `talc` it is given: the mapper makes its call
// with fixed buffers (see `crate::direct`), and failures are recorded in
// plain fields.
unsafe impl<M: Mapper> Source for GrowingSource<M> {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        let Some(size) = grow_size(layout.size(), layout.align()) else {
            talc.source.fail(GrowFailure::TooLarge {
                size: layout.size(),
            });
            return Err(());
        };
        let src = &mut talc.source;
        let addr = match src.mapper.map(src.mapped_end, size) {
            Ok(addr) => addr,
            Err(why) => {
                src.fail(why);
                return Err(());
            }
        };
        let Some(end) = addr
            .checked_add(size)
            .filter(|_| addr != 0 && addr.is_multiple_of(PAGE))
        else {
            src.fail(GrowFailure::BadReply);
            return Err(());
        };
        let joins = src.mapped_end != 0 && addr == src.mapped_end;
        let new_end = match NonNull::new(src.heap_end as *mut u8).filter(|_| joins) {
            Some(heap_end) => {
                talc.source.stats.extended += 1;
                // SAFETY: `heap_end` is the current end of the span that
                // ends at `mapped_end` (returned by the last claim or extend,
                // and nothing else changes it), and `[addr, end)` is memory
                // the mapper just mapped read-write for this process alone
                // and that stays mapped for the life of the heap (the
                // VirtualMemory client refuses to unmap or protect heap
                // spans); nothing else knows its address.
                Some(unsafe { talc.extend(heap_end, end as *mut u8) })
            }
            None => {
                talc.source.stats.new_spans += 1;
                // SAFETY: as above, `[addr, end)` is fresh memory the heap
                // owns for good; it overlaps no span (the mapper never hands
                // out mapped memory twice).
                unsafe { talc.claim(addr as *mut u8, size) }
            }
        };
        let src = &mut talc.source;
        src.stats.growths += 1;
        src.stats.bytes_mapped += size as u64;
        src.remember(addr, end);
        src.mapped_end = end;
        match new_end {
            Some(e) => {
                src.heap_end = e.as_ptr() as usize;
                src.last_failure = None;
                Ok(())
            }
            None => {
                // Cannot happen for a span of GROW_MIN bytes.
                src.heap_end = 0;
                src.fail(GrowFailure::BadReply);
                Err(())
            }
        }
    }
}

#[cfg(target_os = "none")]
pub use process::stats;
#[cfg(target_os = "none")]
pub(crate) use process::{enable_growth, init, overlaps, write_failure};

#[cfg(target_os = "none")]
mod process {
    use super::*;
    use capos_ring::RawRing;
    use talc::TalcLock;

    /// Maps through the process's `VirtualMemory` capability with a direct
    /// ring call. Without a capability (or before start-up attached the
    /// ring) every map fails with [`GrowFailure::NoVirtualMemory`].
    pub(crate) struct VmMapper {
        cap: u64,
        ring: Option<RawRing<'static>>,
    }

    impl Mapper for VmMapper {
        fn map(&mut self, hint: usize, size: usize) -> Result<usize, GrowFailure> {
            let (Some(ring), true) = (self.ring, self.cap != 0) else {
                return Err(GrowFailure::NoVirtualMemory);
            };
            crate::direct::PROCESS
                .call(
                    ring,
                    &mut crate::start::Syscalls,
                    self.cap,
                    MAP_METHOD,
                    |buf| encode_map_params(hint as u64, size as u64, PROT_READ_WRITE, buf),
                    interpret_map,
                )
                .map_err(GrowFailure::Ring)?
        }
    }

    #[repr(C, align(4096))]
    struct Arena([u8; ARENA_SIZE]);

    static mut ARENA: Arena = Arena([0; ARENA_SIZE]);

    #[global_allocator]
    static HEAP: TalcLock<spin::Mutex<()>, GrowingSource<VmMapper>> = TalcLock::new(
        GrowingSource::new(VmMapper { cap: 0, ring: None }, ARENA_SIZE),
    );

    /// Hands the arena to the allocator. Called once by `_start` before any
    /// allocation; returns false if talc refuses the region.
    pub(crate) fn init() -> bool {
        let base = (&raw mut ARENA).cast::<u8>();
        // SAFETY: ARENA is used by nothing but the heap: no code names it
        // except here, and this runs once, on the process's only thread,
        // before any allocation. It is ARENA_SIZE bytes of writable `.bss`
        // for the life of the process.
        unsafe { HEAP.lock().claim(base, ARENA_SIZE).is_some() }
    }

    /// Lets the heap grow through `VirtualMemory` capability `cap` on
    /// `ring`. Called by `_start` once the ring is attached and the CapSet
    /// parsed; without the call (or with no capability) the heap stays at
    /// its arena.
    pub(crate) fn enable_growth(ring: RawRing<'static>, cap: Option<u64>) {
        HEAP.lock().source.mapper = VmMapper {
            cap: cap.unwrap_or(0),
            ring: Some(ring),
        };
    }

    /// What the heap has done so far: arena size, growths, bytes mapped.
    pub fn stats() -> HeapStats {
        HEAP.lock().source.stats()
    }

    /// Whether `[addr, addr + size)` touches memory the heap mapped.
    pub(crate) fn overlaps(addr: u64, size: u64) -> bool {
        HEAP.lock().source.overlaps(addr, size)
    }

    /// Appends the heap's state and, if the last growth failed, why, for
    /// the report of an allocation failure. Takes the allocator's lock only
    /// if it is free (a panic can happen with it held), allocates nothing.
    pub(crate) fn write_failure(w: &mut dyn fmt::Write) -> fmt::Result {
        let Some(heap) = HEAP.try_lock() else {
            return Ok(());
        };
        let s = heap.source.stats();
        write!(
            w,
            " (heap: {} KiB arena, {} growths, {} bytes mapped",
            s.arena_bytes >> 10,
            s.growths,
            s.bytes_mapped
        )?;
        if let Some(why) = heap.source.last_failure() {
            write!(w, "; cannot grow: {why}")?;
        }
        w.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct::RingShared;
    use crate::ring_client::{Enter, RingClient};
    use crate::sim::{setup, SimVm};
    use alloc::vec;
    use alloc::vec::Vec;
    use capnp::message::Builder;
    use capos_caps::schema::capos_capnp::virtual_memory as vm;
    use capos_caps::CapException;
    use capos_ring::{Cqe, RawRing, TransportError, CQE_FLAG_EXCEPTION};

    #[test]
    fn map_params_match_the_library_encoding() {
        for (hint, size, prot) in [
            (0, 4096, 3),
            (0x1000_0004_0000, 256 * 1024, 3),
            (u64::MAX, u64::MAX, u32::MAX),
            (1, 0, 0),
        ] {
            let mut out = [0xEEu8; 64];
            assert_eq!(
                encode_map_params(hint, size, prot, &mut out),
                MAP_PARAMS_BYTES
            );
            let mut m = Builder::new_default();
            let mut p = m.init_root::<vm::map_params::Builder>();
            p.set_hint(hint);
            p.set_size(size);
            p.set_prot(prot);
            assert_eq!(&out[..MAP_PARAMS_BYTES], &crate::wire::to_bytes(&m)[..]);
        }
        assert_eq!(encode_map_params(0, 0, 0, &mut [0; 39]), 0);
    }

    #[test]
    fn map_results_and_exceptions_decode_like_the_library() {
        for addr in [0, 0x1000_0000_0000, u64::MAX] {
            let mut m = Builder::new_default();
            m.init_root::<vm::map_results::Builder>().set_addr(addr);
            assert_eq!(decode_map_results(&crate::wire::to_bytes(&m)), Some(addr));
        }
        for (e, kind) in [
            (
                CapException::overloaded("frame quota: frames 4096 of 4096"),
                1,
            ),
            (CapException::failed(""), 0),
            (CapException::failed("x".repeat(300)), 0),
        ] {
            let bytes = e.encode();
            let (k, text) = decode_exception(&bytes).unwrap();
            assert_eq!((k, text), (kind, e.message.as_bytes()));
        }
    }

    #[test]
    fn malformed_replies_are_refused_without_panicking() {
        let mut m = Builder::new_default();
        m.init_root::<vm::map_results::Builder>()
            .set_addr(0x1234_5000);
        let good = crate::wire::to_bytes(&m);
        let exc = CapException::failed("no room").encode();
        // Every truncation of a valid message.
        for n in 0..good.len() {
            assert_eq!(decode_map_results(&good[..n]), None, "{n} bytes");
        }
        for n in 0..exc.len() {
            assert_eq!(decode_exception(&exc[..n]), None, "{n} bytes");
        }
        // Pseudo-random bytes and single-bit flips: no panic, and anything
        // decoded stays inside the input.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..20_000 {
            let mut buf = [0u8; 48];
            if round % 2 == 0 {
                for b in buf.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                buf[..4].fill(0); // one segment, so parsing goes further
            } else {
                let src = if round % 4 == 1 { &good } else { &exc };
                let n = src.len().min(48);
                buf[..n].copy_from_slice(&src[..n]);
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let bit = (x % (n as u64 * 8)) as usize;
                buf[bit / 8] ^= 1 << (bit % 8);
            }
            let _ = decode_map_results(&buf);
            if let Some((_, text)) = decode_exception(&buf) {
                assert!(text.len() <= buf.len());
            }
        }
        // Far pointers and multi-segment messages are not for us.
        let mut multi = good.clone();
        multi[0] = 1;
        assert_eq!(decode_map_results(&multi), None);
        let mut far = good.clone();
        far[8] |= 2;
        assert_eq!(decode_map_results(&far), None);
    }

    #[test]
    fn completions_are_interpreted() {
        let mut m = Builder::new_default();
        m.init_root::<vm::map_results::Builder>()
            .set_addr(0x1000_0000_0000);
        let ok = crate::wire::to_bytes(&m);
        let cqe = Cqe::success(1, ok.len() as u32);
        assert_eq!(interpret_map(&cqe, &ok), Ok(0x1000_0000_0000));
        let exc = CapException::overloaded("frame quota: used up").encode();
        let mut cqe = Cqe::success(1, exc.len() as u32);
        cqe.flags = CQE_FLAG_EXCEPTION;
        let why = interpret_map(&cqe, &exc).unwrap_err();
        assert_eq!(
            alloc::format!("{why}"),
            "VirtualMemory.map overloaded: frame quota: used up"
        );
        let why = interpret_map(&Cqe::error(1, TransportError::BadCap), &[]).unwrap_err();
        assert_eq!(alloc::format!("{why}"), "VirtualMemory.map: BAD_CAP");
        assert_eq!(
            interpret_map(&Cqe::success(1, 3), &[1, 2, 3]),
            Err(GrowFailure::BadReply)
        );
    }

    #[test]
    fn growth_sizes() {
        assert_eq!(grow_size(1, 1), Some(GROW_MIN));
        assert_eq!(grow_size(GROW_MIN, 8), Some(GROW_MIN + PAGE));
        assert_eq!(grow_size(1 << 20, 8), Some((1 << 20) + PAGE));
        assert_eq!(grow_size(GROW_MAX, 8), None);
        assert_eq!(grow_size(usize::MAX, 8), None);
        assert_eq!(grow_size(GROW_MAX - PAGE, 8), Some(GROW_MAX));
        for size in (1..40 << 20).step_by(977 * 31) {
            for align in [1, 8, 64, 4096] {
                let g = grow_size(size, align).unwrap();
                assert_eq!(g % PAGE, 0);
                assert!(g >= GROW_MIN && g >= size + align + SPAN_OVERHEAD);
                assert!(g < (size + align + SPAN_OVERHEAD + PAGE).max(GROW_MIN + 1));
            }
        }
        let big = alloc::format!("{}", GrowFailure::TooLarge { size: 80 << 20 });
        assert_eq!(
            big,
            "83886080 bytes is more than one growth may map (64 MiB)"
        );
    }

    /// A mapper over a host buffer, for the source's own logic.
    struct HostMapper {
        vm: SimVm,
        calls: Vec<(usize, usize)>,
    }

    impl Mapper for HostMapper {
        fn map(&mut self, hint: usize, size: usize) -> Result<usize, GrowFailure> {
            self.calls.push((hint, size));
            match self.vm.map(size as u64) {
                Ok(a) => Ok(a as usize),
                Err(e) => Err(GrowFailure::refused(1, e.message.as_bytes())),
            }
        }
    }

    fn talc_over<M: Mapper>(
        mapper: M,
        arena: usize,
    ) -> Talc<GrowingSource<M>, talc::base::binning::DefaultBinning> {
        let mut t = Talc::new(GrowingSource::new(mapper, arena));
        let buf: &'static mut [u8] = Vec::leak(vec![0u8; arena]);
        // SAFETY: the leaked buffer is the allocator's alone, for good.
        unsafe { t.claim(buf.as_mut_ptr(), arena) }.unwrap();
        t
    }

    fn alloc<M: Mapper>(
        t: &mut Talc<GrowingSource<M>, talc::base::binning::DefaultBinning>,
        size: usize,
    ) -> Option<NonNull<u8>> {
        assert!(size > 0);
        let layout = Layout::from_size_align(size, 16).unwrap();
        // SAFETY: the size is not zero (checked above).
        unsafe { t.allocate(layout) }
    }

    fn fill_and_check(p: NonNull<u8>, len: usize, seed: u8) {
        // SAFETY: `p` is a live allocation of `len` bytes from the test's
        // allocator, used only here.
        let s = unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) };
        for (i, b) in s.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31) ^ seed;
        }
        assert!(s
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i as u8).wrapping_mul(31) ^ seed));
    }

    #[test]
    fn the_source_grows_contiguously_and_reuses_freed_memory() {
        let mapper = HostMapper {
            vm: SimVm::with_window(16 << 20),
            calls: Vec::new(),
        };
        let mut t = talc_over(mapper, 64 * 1024);
        let layout = Layout::from_size_align(256 * 1024, 16).unwrap();
        let mut blocks = Vec::new();
        for i in 0..16u8 {
            let p = alloc(&mut t, layout.size()).expect("the heap grows");
            fill_and_check(p, layout.size(), i);
            blocks.push(p);
        }
        let s = t.source.stats();
        assert_eq!(s.new_spans, 1, "the first growth opens a span");
        assert_eq!(s.extended, s.growths - 1, "every later one extends it");
        assert!(s.bytes_mapped >= 16 * 256 * 1024);
        let calls = &t.source.mapper.calls;
        assert_eq!(calls[0].0, 0, "no hint for the first growth");
        for w in calls.windows(2) {
            assert_ne!(w[1].0, 0, "later growths ask for the next address");
        }
        assert!(t.source.overlaps(blocks[3].as_ptr() as u64, 1));
        assert!(!t.source.overlaps(4096, 4096));
        for p in blocks.drain(..) {
            // SAFETY: allocated above with `layout`, freed once.
            unsafe { t.deallocate(p.as_ptr(), layout) };
        }
        // Freed memory is reused: no new growth for the same load.
        let before = t.source.stats();
        for i in 0..16u8 {
            let p = alloc(&mut t, layout.size()).unwrap();
            fill_and_check(p, layout.size(), i ^ 0x55);
        }
        assert_eq!(t.source.stats(), before);
    }

    #[test]
    fn a_gap_opens_a_new_span_and_a_refusal_fails_the_allocation() {
        let mapper = HostMapper {
            vm: SimVm::with_window(2 << 20),
            calls: Vec::new(),
        };
        let mut t = talc_over(mapper, 16 * 1024);
        let small = Layout::from_size_align(100 * 1024, 8).unwrap();
        let a = alloc(&mut t, small.size()).unwrap();
        t.source.mapper.vm.skip_page = true;
        let b = alloc(&mut t, 200 * 1024).unwrap();
        let c = alloc(&mut t, 200 * 1024).unwrap();
        fill_and_check(a, small.size(), 1);
        fill_and_check(b, 200 * 1024, 2);
        fill_and_check(c, 200 * 1024, 3);
        assert_eq!(t.source.stats().new_spans, 2);
        assert!(t.source.last_failure().is_none());
        // More than the window holds: refused, reported, and the heap is
        // still usable.
        let huge = Layout::from_size_align(3 << 20, 8).unwrap();
        assert!(alloc(&mut t, huge.size()).is_none());
        let why = alloc::format!("{}", t.source.last_failure().unwrap());
        assert!(
            why.starts_with("VirtualMemory.map overloaded: frame quota"),
            "{why}"
        );
        assert_eq!(t.source.stats().failures, 1);
        assert!(alloc(&mut t, 64).is_some());
        // Larger than one map may be: refused before asking.
        let calls = t.source.mapper.calls.len();
        assert!(alloc(&mut t, GROW_MAX).is_none());
        assert_eq!(t.source.mapper.calls.len(), calls);
        assert!(matches!(
            t.source.last_failure(),
            Some(GrowFailure::TooLarge { .. })
        ));
    }

    /// The process's mapper, but over the simulated kernel's ring.
    struct RingMapper {
        shared: &'static RingShared,
        ring: RawRing<'static>,
        kernel: *mut dyn Enter,
    }

    impl Mapper for RingMapper {
        fn map(&mut self, hint: usize, size: usize) -> Result<usize, GrowFailure> {
            // SAFETY: the test keeps the ring client (which owns the kernel
            // stand-in) alive and does not use it while the allocator runs.
            let kernel = unsafe { &mut *self.kernel };
            self.shared
                .call(
                    self.ring,
                    kernel,
                    10,
                    MAP_METHOD,
                    |buf| encode_map_params(hint as u64, size as u64, PROT_READ_WRITE, buf),
                    interpret_map,
                )
                .map_err(GrowFailure::Ring)?
        }
    }

    fn ring_heap(
        c: &mut RingClient,
    ) -> Talc<GrowingSource<RingMapper>, talc::base::binning::DefaultBinning> {
        let mapper = RingMapper {
            shared: c.shared(),
            ring: c.raw(),
            kernel: c.kernel_for_test() as *mut dyn Enter,
        };
        talc_over(mapper, 16 * 1024)
    }

    #[test]
    fn growth_through_the_ring_keeps_the_clients_completions() {
        let (mut c, log, _) = setup();
        log.borrow_mut().vm = SimVm::with_window(8 << 20);
        let mut t = ring_heap(&mut c);
        let layout = Layout::from_size_align(300 * 1024, 16).unwrap();
        let mut round = 0u8;
        let mut blocks = Vec::new();
        while blocks.len() < 12 {
            // Calls of the client in flight while the heap grows.
            let a = c.submit_call(7, 0, vec![round; 4], 8).unwrap();
            let r = c.submit_release(7);
            c.poll().unwrap();
            let b = c.submit_call(7, 0, vec![round, 2], 8).unwrap();
            let p = alloc(&mut t, layout.size()).expect("grown through the ring");
            fill_and_check(p, layout.size(), round);
            blocks.push(p);
            assert_eq!(c.wait(b).unwrap().result, vec![round, 2]);
            assert_eq!(c.wait(a).unwrap().result, vec![round; 4]);
            r.unwrap();
            c.wait_releases().unwrap();
            round += 1;
        }
        let s = t.source.stats();
        let maps = log.borrow().maps.clone();
        assert_eq!(s.growths, maps.len() as u64);
        assert_eq!(s.bytes_mapped, maps.iter().map(|m| m.1).sum::<u64>());
        assert_eq!(s.new_spans, 1);
        for w in maps.windows(2) {
            assert_eq!(w[1].0, w[0].2 + w[0].1, "each hint is the previous end");
            assert_eq!(w[1].2, w[1].0, "and the kernel honoured it");
        }
        assert_eq!(c.stats().strays, 0);
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.shared().stashed(), 0);
        assert_eq!(c.shared().calls(), s.growths);
    }

    #[test]
    fn a_quota_refusal_through_the_ring_is_reported() {
        let (mut c, log, _) = setup();
        let mut vmw = SimVm::with_window(8 << 20);
        vmw.quota = 512 * 1024;
        log.borrow_mut().vm = vmw;
        let mut t = ring_heap(&mut c);
        assert!(alloc(&mut t, 200 * 1024).is_some());
        let pending = c.submit_call(7, 0, b"kept".to_vec(), 8).unwrap();
        assert!(alloc(&mut t, 1 << 20).is_none());
        let why = alloc::format!("{}", t.source.last_failure().unwrap());
        assert!(
            why.starts_with("VirtualMemory.map overloaded: frame quota: 1052672 bytes asked"),
            "{why}"
        );
        assert_eq!(c.wait(pending).unwrap().result, b"kept");
        assert_eq!(t.source.stats().growths, 1);
    }
}
