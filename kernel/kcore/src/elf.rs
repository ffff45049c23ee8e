//! Parser and validator for the static ELF64 executables that userspace services ship as.
//!
//! Service binaries reach the kernel as GRUB boot modules, so every byte is
//! hostile until [`parse`] has accepted it. The parser reads each header
//! field with bounds-checked little-endian reads from the slice, never
//! indexes in a way that can panic and never does arithmetic that can
//! overflow (the module denies clippy's `indexing_slicing` and
//! `arithmetic_side_effects` lints to keep it that way).
//!
//! What is accepted: a little-endian ELF64 `ET_EXEC` for `EM_X86_64` whose
//! loadable (`PT_LOAD`) segments lie inside the user image range given by
//! [`Limits`], occupy pairwise disjoint pages, are never both writable and
//! executable, and one of which (an executable one) contains the entry
//! point. Position-independent (`ET_DYN`) images, dynamic linking
//! (`PT_DYNAMIC`, `PT_INTERP`) and thread-local storage (`PT_TLS`) are
//! rejected: services are static binaries linked at a fixed base, and the
//! loader has no relocator, no dynamic linker and no TLS set-up yet.
//!
//! Errors that name a segment use its index in the program header table (the
//! numbering `readelf -l` shows), not its position in [`ElfImage::segments`].
//! `docs/elf.md` lists the rules and every rejection message.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alloc::vec::Vec;
use core::fmt;

/// First address that is not a user address (exclusive end of the lower half).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Size of a page; segments are mapped with this granularity.
pub const PAGE_SIZE: u64 = 4096;

/// Mask of the offset-within-page bits.
const PAGE_MASK: u64 = PAGE_SIZE - 1;

/// Size of the ELF64 file header.
pub const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header (`e_phentsize`).
pub const PHDR_SIZE: usize = 56;

/// `e_type` of a fixed-address executable.
pub const ET_EXEC: u16 = 2;
/// `e_machine` of x86_64.
pub const EM_X86_64: u16 = 62;

/// Unused program header.
pub const PT_NULL: u32 = 0;
/// Loadable segment.
pub const PT_LOAD: u32 = 1;
/// Dynamic linking information (rejected).
pub const PT_DYNAMIC: u32 = 2;
/// Program interpreter path (rejected).
pub const PT_INTERP: u32 = 3;
/// Auxiliary notes (ignored).
pub const PT_NOTE: u32 = 4;
/// Reserved with unspecified semantics (rejected).
pub const PT_SHLIB: u32 = 5;
/// The program header table itself (ignored).
pub const PT_PHDR: u32 = 6;
/// Thread-local storage template (rejected).
pub const PT_TLS: u32 = 7;
/// Location of `.eh_frame_hdr` (ignored).
pub const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
/// Stack executability request (ignored: user stacks are never executable).
pub const PT_GNU_STACK: u32 = 0x6474_e551;
/// Region to make read-only after relocation (ignored: there is no relocation).
pub const PT_GNU_RELRO: u32 = 0x6474_e552;
/// `.note.gnu.property` location (ignored, like `PT_NOTE`).
pub const PT_GNU_PROPERTY: u32 = 0x6474_e553;

/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;
/// Segment flag: readable.
pub const PF_R: u32 = 4;

// e_ident bytes.
const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const EI_VERSION: usize = 6;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;
/// `e_phnum` value meaning "the real count is in section header 0".
const PN_XNUM: u16 = 0xffff;

// ELF header field offsets.
const E_TYPE: usize = 16;
const E_MACHINE: usize = 18;
const E_VERSION: usize = 20;
const E_ENTRY: usize = 24;
const E_PHOFF: usize = 32;
const E_EHSIZE: usize = 52;
const E_PHENTSIZE: usize = 54;
const E_PHNUM: usize = 56;

// Program header field offsets.
const P_TYPE: usize = 0;
const P_FLAGS: usize = 4;
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;
const P_ALIGN: usize = 48;

/// Access rights of a loaded segment, from its `p_flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// `PF_R`: the pages may be read.
    pub read: bool,
    /// `PF_W`: the pages may be written.
    pub write: bool,
    /// `PF_X`: the pages may be executed.
    pub execute: bool,
}

impl Perms {
    /// Decodes `p_flags` (bits other than `PF_R`, `PF_W`, `PF_X` are ignored).
    pub const fn from_flags(flags: u32) -> Self {
        Perms {
            read: flags & PF_R != 0,
            write: flags & PF_W != 0,
            execute: flags & PF_X != 0,
        }
    }
}

/// One validated `PT_LOAD` segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// `p_vaddr`: where the first byte goes (may be unaligned; see [`Segment::page_range`]).
    pub vaddr: u64,
    /// `p_memsz`: bytes the segment occupies in memory.
    pub mem_size: u64,
    /// `p_offset`: where the segment's bytes start in the file.
    pub file_offset: u64,
    /// `p_filesz`: bytes copied from the file (`<= mem_size`; the rest is zero-filled).
    pub file_size: u64,
    /// Page permissions.
    pub perms: Perms,
}

impl Segment {
    /// Page-aligned `[start, end)` the segment occupies.
    ///
    /// Exact for segments returned by [`parse`]. For a hand-built segment
    /// whose end would pass `u64::MAX` the end saturates at the last page
    /// boundary instead of overflowing.
    pub fn page_range(&self) -> (u64, u64) {
        let start = self.vaddr & !PAGE_MASK;
        let end = self.vaddr.saturating_add(self.mem_size);
        let end = match end.checked_add(PAGE_MASK) {
            Some(e) => e & !PAGE_MASK,
            None => !PAGE_MASK,
        };
        (start, end)
    }

    /// Number of pages in [`Segment::page_range`].
    pub fn page_count(&self) -> u64 {
        let (start, end) = self.page_range();
        end.saturating_sub(start) / PAGE_SIZE
    }
}

/// A validated executable: where to start and what to map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfImage {
    /// `e_entry`: the first user instruction, inside an executable segment.
    pub entry: u64,
    /// The non-empty `PT_LOAD` segments in program header order.
    pub segments: Vec<Segment>,
}

impl ElfImage {
    /// Total pages the image maps (never more than [`Limits::max_total_pages`]).
    pub fn total_pages(&self) -> u64 {
        self.segments
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.page_count()))
    }
}

/// Bounds [`parse`] enforces on top of the format rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most program headers (of any type) the table may hold; bounds the
    /// parser's work and therefore also the number of loadable segments.
    pub max_segments: usize,
    /// Lowest address a segment's pages may start at (the first MiB stays
    /// unmapped so null-pointer-like accesses fault).
    pub min_vaddr: u64,
    /// Exclusive end of the range a segment's pages may reach. Addresses from
    /// here to [`USER_END`] hold the stack, ring and CapSet pages. Values
    /// above [`USER_END`] are treated as [`USER_END`].
    pub max_vaddr: u64,
    /// Most pages all segments together may occupy.
    pub max_total_pages: u64,
}

impl Limits {
    /// The limits the kernel uses: 16 program headers, images in
    /// `[0x10_0000, 0x7000_0000_0000)`, at most 16384 pages (64 MiB).
    pub const DEFAULT: Limits = Limits {
        max_segments: 16,
        min_vaddr: 0x0010_0000,
        max_vaddr: 0x0000_7000_0000_0000,
        max_total_pages: 16384,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why an image was rejected. Each variant is one rule; `index`, `a` and `b`
/// are program header indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Fewer bytes than an ELF64 header.
    TooShort,
    /// The file does not start with `\x7fELF`.
    BadMagic,
    /// `EI_CLASS` is not `ELFCLASS64`.
    NotElf64,
    /// `EI_DATA` is not `ELFDATA2LSB`.
    NotLittleEndian,
    /// `EI_VERSION` or `e_version` is not `EV_CURRENT`.
    BadVersion,
    /// `e_type` is not `ET_EXEC` (position-independent `ET_DYN` images are
    /// rejected: services are static and linked at a fixed base).
    NotExecutable,
    /// `e_machine` is not `EM_X86_64`.
    WrongMachine,
    /// `e_ehsize` is not 64 or `e_phentsize` is not 56.
    BadHeaderSize,
    /// The program header table does not lie entirely inside the file.
    ProgramHeadersOutOfFile,
    /// More program headers than [`Limits::max_segments`] (or `PN_XNUM`).
    TooManySegments,
    /// No `PT_LOAD` segment with a non-zero memory size.
    NoLoadableSegments,
    /// `p_filesz > p_memsz`.
    FileSizeExceedsMemSize {
        /// Program header index.
        index: usize,
    },
    /// `[p_offset, p_offset + p_filesz)` is not inside the file.
    SegmentOutOfFile {
        /// Program header index.
        index: usize,
    },
    /// `p_vaddr + p_memsz`, rounded up to a page, does not fit in 64 bits.
    AddressOverflow {
        /// Program header index.
        index: usize,
    },
    /// The segment's pages are not inside `[min_vaddr, max_vaddr)`.
    SegmentOutsideUserRange {
        /// Program header index.
        index: usize,
    },
    /// `p_vaddr` and `p_offset` differ modulo the page size, or `p_align` is
    /// neither 0, 1 nor a power of two.
    MisalignedSegment {
        /// Program header index.
        index: usize,
    },
    /// Two segments share at least one page.
    OverlappingSegments {
        /// Lower program header index.
        a: usize,
        /// Higher program header index.
        b: usize,
    },
    /// A segment is both writable and executable.
    WriteAndExecute {
        /// Program header index.
        index: usize,
    },
    /// `e_entry` is not inside an executable segment.
    EntryOutsideExecutableSegment,
    /// The segments together occupy more than [`Limits::max_total_pages`].
    TooLarge,
    /// A program header type the loader does not support: `PT_DYNAMIC`,
    /// `PT_INTERP`, `PT_TLS`, `PT_SHLIB` or any type it does not know.
    UnsupportedSegment {
        /// Program header index.
        index: usize,
        /// The header's `p_type`.
        p_type: u32,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ElfError::TooShort => f.write_str("file is shorter than an ELF64 header (64 bytes)"),
            ElfError::BadMagic => f.write_str("not an ELF file (bad magic)"),
            ElfError::NotElf64 => f.write_str("not a 64-bit ELF file"),
            ElfError::NotLittleEndian => f.write_str("not a little-endian ELF file"),
            ElfError::BadVersion => f.write_str("unsupported ELF version (want EV_CURRENT)"),
            ElfError::NotExecutable => {
                f.write_str("not a static executable (e_type is not ET_EXEC)")
            }
            ElfError::WrongMachine => f.write_str("not an x86_64 executable"),
            ElfError::BadHeaderSize => {
                f.write_str("unexpected ELF header or program header size")
            }
            ElfError::ProgramHeadersOutOfFile => {
                f.write_str("program header table extends past the end of the file")
            }
            ElfError::TooManySegments => f.write_str("too many program headers"),
            ElfError::NoLoadableSegments => f.write_str("no loadable segments"),
            ElfError::FileSizeExceedsMemSize { index } => {
                write!(f, "segment {index} has more file bytes than memory bytes")
            }
            ElfError::SegmentOutOfFile { index } => {
                write!(f, "segment {index} extends past the end of the file")
            }
            ElfError::AddressOverflow { index } => {
                write!(f, "segment {index} wraps around the address space")
            }
            ElfError::SegmentOutsideUserRange { index } => {
                write!(f, "segment {index} is outside the user image range")
            }
            ElfError::MisalignedSegment { index } => write!(
                f,
                "segment {index} is misaligned (address and file offset differ within a page, or bad alignment)"
            ),
            ElfError::OverlappingSegments { a, b } => {
                write!(f, "segments {a} and {b} share a page")
            }
            ElfError::WriteAndExecute { index } => {
                write!(f, "segment {index} is writable and executable (W^X)")
            }
            ElfError::EntryOutsideExecutableSegment => {
                f.write_str("entry point is not inside an executable segment")
            }
            ElfError::TooLarge => f.write_str("image occupies too many pages"),
            ElfError::UnsupportedSegment { index, p_type } => match p_type {
                PT_DYNAMIC => write!(
                    f,
                    "segment {index} is PT_DYNAMIC (dynamic linking is not supported)"
                ),
                PT_INTERP => write!(
                    f,
                    "segment {index} is PT_INTERP (dynamic linking is not supported)"
                ),
                PT_TLS => write!(
                    f,
                    "segment {index} is PT_TLS (thread-local storage is not supported)"
                ),
                _ => write!(f, "segment {index} has unsupported type {p_type:#x}"),
            },
        }
    }
}

/// `N` bytes at `off` in `bytes`, or `None` when they are not all there.
fn read_array<const N: usize>(bytes: &[u8], off: usize) -> Option<[u8; N]> {
    let end = off.checked_add(N)?;
    let slice = bytes.get(off..end)?;
    <[u8; N]>::try_from(slice).ok()
}

fn read_u16(bytes: &[u8], off: usize) -> Option<u16> {
    read_array(bytes, off).map(u16::from_le_bytes)
}

fn read_u32(bytes: &[u8], off: usize) -> Option<u32> {
    read_array(bytes, off).map(u32::from_le_bytes)
}

fn read_u64(bytes: &[u8], off: usize) -> Option<u64> {
    read_array(bytes, off).map(u64::from_le_bytes)
}

/// A program header's fields as read from the file.
struct RawPhdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

impl RawPhdr {
    /// Decodes one `PHDR_SIZE`-byte entry.
    fn read(entry: &[u8]) -> Option<Self> {
        Some(RawPhdr {
            p_type: read_u32(entry, P_TYPE)?,
            flags: read_u32(entry, P_FLAGS)?,
            offset: read_u64(entry, P_OFFSET)?,
            vaddr: read_u64(entry, P_VADDR)?,
            filesz: read_u64(entry, P_FILESZ)?,
            memsz: read_u64(entry, P_MEMSZ)?,
            align: read_u64(entry, P_ALIGN)?,
        })
    }
}

/// Parses and validates a static x86_64 ELF64 executable.
///
/// Checks run in this order, and the first failure is returned: the file
/// header (size, magic, class, byte order, version, type, machine, header
/// sizes); the program header table (inside the file, count); then each
/// program header in table order (type; for `PT_LOAD`: file size against
/// memory size, file range, address overflow, user range, alignment, W^X);
/// then across segments: at least one, no shared pages, entry point, total
/// size. A `PT_LOAD` with `p_memsz == 0` is skipped once its sizes are
/// consistent. Never panics, whatever `bytes` holds.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<ElfImage, ElfError> {
    let ehdr = bytes.get(..EHDR_SIZE).ok_or(ElfError::TooShort)?;
    let field16 = |off| read_u16(ehdr, off).ok_or(ElfError::TooShort);

    if ehdr.get(..4) != Some(&ELF_MAGIC[..]) {
        return Err(ElfError::BadMagic);
    }
    if ehdr.get(EI_CLASS) != Some(&ELFCLASS64) {
        return Err(ElfError::NotElf64);
    }
    if ehdr.get(EI_DATA) != Some(&ELFDATA2LSB) {
        return Err(ElfError::NotLittleEndian);
    }
    let e_version = read_u32(ehdr, E_VERSION).ok_or(ElfError::TooShort)?;
    if ehdr.get(EI_VERSION) != Some(&EV_CURRENT) || e_version != u32::from(EV_CURRENT) {
        return Err(ElfError::BadVersion);
    }
    if field16(E_TYPE)? != ET_EXEC {
        return Err(ElfError::NotExecutable);
    }
    if field16(E_MACHINE)? != EM_X86_64 {
        return Err(ElfError::WrongMachine);
    }
    if usize::from(field16(E_EHSIZE)?) != EHDR_SIZE
        || usize::from(field16(E_PHENTSIZE)?) != PHDR_SIZE
    {
        return Err(ElfError::BadHeaderSize);
    }
    let entry = read_u64(ehdr, E_ENTRY).ok_or(ElfError::TooShort)?;
    let phoff = read_u64(ehdr, E_PHOFF).ok_or(ElfError::TooShort)?;
    let phnum = field16(E_PHNUM)?;

    // The program header table must be entirely inside the file.
    let table = usize::try_from(phoff)
        .ok()
        .and_then(|start| {
            let len = usize::from(phnum).checked_mul(PHDR_SIZE)?;
            let end = start.checked_add(len)?;
            bytes.get(start..end)
        })
        .ok_or(ElfError::ProgramHeadersOutOfFile)?;
    if phnum == PN_XNUM || usize::from(phnum) > limits.max_segments {
        return Err(ElfError::TooManySegments);
    }

    let min_vaddr = limits.min_vaddr;
    let max_vaddr = limits.max_vaddr.min(USER_END);
    // (program header index, segment) for every non-empty PT_LOAD.
    let mut loads: Vec<(usize, Segment)> = Vec::new();

    for (index, entry_bytes) in table.chunks_exact(PHDR_SIZE).enumerate() {
        let ph = RawPhdr::read(entry_bytes).ok_or(ElfError::ProgramHeadersOutOfFile)?;
        match ph.p_type {
            PT_LOAD => {}
            PT_NULL | PT_NOTE | PT_PHDR | PT_GNU_EH_FRAME | PT_GNU_STACK | PT_GNU_RELRO
            | PT_GNU_PROPERTY => continue,
            p_type => return Err(ElfError::UnsupportedSegment { index, p_type }),
        }
        if ph.filesz > ph.memsz {
            return Err(ElfError::FileSizeExceedsMemSize { index });
        }
        if ph.memsz == 0 {
            continue;
        }
        // A segment without file bytes has nothing to read, whatever its offset.
        if ph.filesz != 0 {
            let in_file = ph
                .offset
                .checked_add(ph.filesz)
                .and_then(|end| usize::try_from(end).ok())
                .is_some_and(|end| end <= bytes.len());
            if !in_file {
                return Err(ElfError::SegmentOutOfFile { index });
            }
        }
        let seg = Segment {
            vaddr: ph.vaddr,
            mem_size: ph.memsz,
            file_offset: ph.offset,
            file_size: ph.filesz,
            perms: Perms::from_flags(ph.flags),
        };
        let start = ph.vaddr & !PAGE_MASK;
        let end = ph
            .vaddr
            .checked_add(ph.memsz)
            .and_then(|e| e.checked_add(PAGE_MASK))
            .map(|e| e & !PAGE_MASK)
            .ok_or(ElfError::AddressOverflow { index })?;
        if start < min_vaddr || end > max_vaddr {
            return Err(ElfError::SegmentOutsideUserRange { index });
        }
        if ph.vaddr & PAGE_MASK != ph.offset & PAGE_MASK
            || !(ph.align <= 1 || ph.align.is_power_of_two())
        {
            return Err(ElfError::MisalignedSegment { index });
        }
        if seg.perms.write && seg.perms.execute {
            return Err(ElfError::WriteAndExecute { index });
        }
        loads.push((index, seg));
    }

    if loads.is_empty() {
        return Err(ElfError::NoLoadableSegments);
    }

    // Sorted by start page, any overlapping pair implies an overlapping
    // neighbouring pair, so checking neighbours is enough.
    let mut order: Vec<(u64, u64, usize)> = loads
        .iter()
        .map(|(index, seg)| {
            let (start, end) = seg.page_range();
            (start, end, *index)
        })
        .collect();
    order.sort_unstable();
    for pair in order.windows(2) {
        if let [(_, prev_end, i), (next_start, _, j)] = *pair {
            if next_start < prev_end {
                return Err(ElfError::OverlappingSegments {
                    a: i.min(j),
                    b: i.max(j),
                });
            }
        }
    }

    let entry_ok = loads.iter().any(|(_, seg)| {
        seg.perms.execute
            && entry
                .checked_sub(seg.vaddr)
                .is_some_and(|off| off < seg.mem_size)
    });
    if !entry_ok {
        return Err(ElfError::EntryOutsideExecutableSegment);
    }

    let mut total: u64 = 0;
    for (_, seg) in &loads {
        total = total
            .checked_add(seg.page_count())
            .ok_or(ElfError::TooLarge)?;
    }
    if total > limits.max_total_pages {
        return Err(ElfError::TooLarge);
    }

    Ok(ElfImage {
        entry,
        segments: loads.into_iter().map(|(_, seg)| seg).collect(),
    })
}

/// The file bytes of a segment [`parse`] accepted from `bytes`
/// (`file_size` bytes from `file_offset`). Returns an empty slice if the
/// segment does not fit in `bytes`, which cannot happen for a segment
/// validated against the same bytes.
pub fn segment_bytes<'a>(bytes: &'a [u8], seg: &Segment) -> &'a [u8] {
    let range = usize::try_from(seg.file_offset).ok().and_then(|start| {
        let len = usize::try_from(seg.file_size).ok()?;
        Some(start..start.checked_add(len)?)
    });
    range.and_then(|r| bytes.get(r)).unwrap_or(&[])
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    const R: u32 = PF_R;
    const RW: u32 = PF_R | PF_W;
    const RX: u32 = PF_R | PF_X;

    /// One program header for the test builder.
    #[derive(Clone, Copy)]
    struct Ph {
        p_type: u32,
        flags: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
        memsz: u64,
        align: u64,
    }

    fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
        Ph {
            p_type: PT_LOAD,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
            align: PAGE_SIZE,
        }
    }

    fn other(p_type: u32, flags: u32) -> Ph {
        Ph {
            p_type,
            flags,
            offset: 0xdead_0000,
            vaddr: 0xffff_ffff_ffff_f000,
            filesz: 0x1_0000,
            memsz: 0x10,
            align: 3,
        }
    }

    fn put16(b: &mut [u8], off: usize, v: u16) {
        b[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put64(b: &mut [u8], off: usize, v: u64) {
        b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Offset of program header `i` in images from [`build`].
    fn ph_at(i: usize) -> usize {
        EHDR_SIZE + i * PHDR_SIZE
    }

    /// Byte the builder stores at file offset `i` past the headers.
    fn pattern(i: usize) -> u8 {
        (i.wrapping_mul(31) ^ (i >> 8)) as u8
    }

    /// A minimal executable: ELF header, program headers right after it, and
    /// every PT_LOAD's file bytes present (filled with [`pattern`]).
    fn build(entry: u64, phdrs: &[Ph]) -> Vec<u8> {
        let table_end = ph_at(phdrs.len());
        let data_end = phdrs
            .iter()
            .filter(|p| p.p_type == PT_LOAD && p.filesz > 0)
            // Hostile offsets in tests are not materialised.
            .filter_map(|p| p.offset.checked_add(p.filesz))
            .filter(|&end| end < 1 << 24)
            .map(|end| end as usize)
            .max()
            .unwrap_or(0);
        let len = table_end.max(data_end);
        let mut b: Vec<u8> = (0..len).map(pattern).collect();
        b[..EHDR_SIZE].fill(0);
        b[..4].copy_from_slice(&ELF_MAGIC);
        b[EI_CLASS] = ELFCLASS64;
        b[EI_DATA] = ELFDATA2LSB;
        b[EI_VERSION] = EV_CURRENT;
        put16(&mut b, E_TYPE, ET_EXEC);
        put16(&mut b, E_MACHINE, EM_X86_64);
        put32(&mut b, E_VERSION, 1);
        put64(&mut b, E_ENTRY, entry);
        put64(&mut b, E_PHOFF, EHDR_SIZE as u64);
        put16(&mut b, E_EHSIZE, EHDR_SIZE as u16);
        put16(&mut b, E_PHENTSIZE, PHDR_SIZE as u16);
        put16(&mut b, E_PHNUM, phdrs.len() as u16);
        for (i, p) in phdrs.iter().enumerate() {
            let at = ph_at(i);
            put32(&mut b, at + P_TYPE, p.p_type);
            put32(&mut b, at + P_FLAGS, p.flags);
            put64(&mut b, at + P_OFFSET, p.offset);
            put64(&mut b, at + P_VADDR, p.vaddr);
            put64(&mut b, at + 24, p.vaddr); // p_paddr
            put64(&mut b, at + P_FILESZ, p.filesz);
            put64(&mut b, at + P_MEMSZ, p.memsz);
            put64(&mut b, at + P_ALIGN, p.align);
        }
        b
    }

    const ENTRY: u64 = 0x40_1010;

    /// Program headers of the reference image: text, rodata at an unaligned
    /// address, data+bss, plus ignored headers and an empty PT_LOAD.
    fn sample_phdrs() -> Vec<Ph> {
        vec![
            other(PT_PHDR, R),
            load(RX, 0x1000, 0x40_1000, 0x234, 0x234),
            load(R, 0x2040, 0x40_2040, 0x80, 0x80),
            load(RW, 0x3000, 0x40_3000, 0x10, 0x2000),
            load(RW, 0, 0x10, 0, 0),
            other(PT_GNU_STACK, RW),
        ]
    }

    fn sample() -> Vec<u8> {
        build(ENTRY, &sample_phdrs())
    }

    fn parse_default(b: &[u8]) -> Result<ElfImage, ElfError> {
        parse(b, &Limits::default())
    }

    /// Builds the sample with program header `i` replaced by `ph`.
    fn sample_with(i: usize, ph: Ph) -> Vec<u8> {
        let mut phdrs = sample_phdrs();
        phdrs[i] = ph;
        build(ENTRY, &phdrs)
    }

    #[test]
    fn valid_image_parses() {
        let b = sample();
        let img = parse_default(&b).unwrap();
        let perms = |flags| Perms::from_flags(flags);
        assert_eq!(
            img,
            ElfImage {
                entry: ENTRY,
                segments: vec![
                    Segment {
                        vaddr: 0x40_1000,
                        mem_size: 0x234,
                        file_offset: 0x1000,
                        file_size: 0x234,
                        perms: perms(RX),
                    },
                    Segment {
                        vaddr: 0x40_2040,
                        mem_size: 0x80,
                        file_offset: 0x2040,
                        file_size: 0x80,
                        perms: perms(R),
                    },
                    Segment {
                        vaddr: 0x40_3000,
                        mem_size: 0x2000,
                        file_offset: 0x3000,
                        file_size: 0x10,
                        perms: perms(RW),
                    },
                ],
            }
        );
        assert_eq!(
            perms(RX),
            Perms {
                read: true,
                write: false,
                execute: true
            }
        );
        assert_eq!(img.segments[0].page_range(), (0x40_1000, 0x40_2000));
        assert_eq!(img.segments[1].page_range(), (0x40_2000, 0x40_3000));
        assert_eq!(img.segments[2].page_range(), (0x40_3000, 0x40_5000));
        assert_eq!(img.total_pages(), 4);
        let data = segment_bytes(&b, &img.segments[1]);
        assert_eq!(data.len(), 0x80);
        assert!(data
            .iter()
            .enumerate()
            .all(|(i, &v)| v == pattern(0x2040 + i)));
    }

    #[test]
    fn default_limits() {
        let l = Limits::default();
        assert_eq!(l.max_segments, 16);
        assert_eq!(l.min_vaddr, 0x10_0000);
        assert_eq!(l.max_vaddr, 0x7000_0000_0000);
        assert!(l.max_vaddr < USER_END);
        assert_eq!(l.max_total_pages * PAGE_SIZE, 64 << 20);
    }

    #[test]
    fn too_short() {
        let b = sample();
        assert_eq!(parse_default(&[]), Err(ElfError::TooShort));
        assert_eq!(parse_default(&b[..EHDR_SIZE - 1]), Err(ElfError::TooShort));
    }

    #[test]
    fn bad_magic() {
        let mut b = sample();
        b[1] = b'e';
        assert_eq!(parse_default(&b), Err(ElfError::BadMagic));
    }

    #[test]
    fn not_elf64() {
        let mut b = sample();
        b[EI_CLASS] = 1;
        assert_eq!(parse_default(&b), Err(ElfError::NotElf64));
    }

    #[test]
    fn not_little_endian() {
        let mut b = sample();
        b[EI_DATA] = 2;
        assert_eq!(parse_default(&b), Err(ElfError::NotLittleEndian));
    }

    #[test]
    fn bad_version() {
        let mut b = sample();
        b[EI_VERSION] = 0;
        assert_eq!(parse_default(&b), Err(ElfError::BadVersion));
        let mut b = sample();
        put32(&mut b, E_VERSION, 2);
        assert_eq!(parse_default(&b), Err(ElfError::BadVersion));
    }

    #[test]
    fn pie_and_relocatable_rejected() {
        for e_type in [0u16, 1, 3, 4] {
            let mut b = sample();
            put16(&mut b, E_TYPE, e_type);
            assert_eq!(parse_default(&b), Err(ElfError::NotExecutable));
        }
    }

    #[test]
    fn wrong_machine() {
        let mut b = sample();
        put16(&mut b, E_MACHINE, 3); // EM_386
        assert_eq!(parse_default(&b), Err(ElfError::WrongMachine));
    }

    #[test]
    fn bad_header_size() {
        let mut b = sample();
        put16(&mut b, E_PHENTSIZE, 64);
        assert_eq!(parse_default(&b), Err(ElfError::BadHeaderSize));
        let mut b = sample();
        put16(&mut b, E_EHSIZE, 52);
        assert_eq!(parse_default(&b), Err(ElfError::BadHeaderSize));
    }

    #[test]
    fn program_headers_out_of_file() {
        let b = sample();
        // Table one byte past the end.
        let mut t = b.clone();
        let table_len = (PHDR_SIZE * sample_phdrs().len()) as u64;
        put64(&mut t, E_PHOFF, b.len() as u64 - table_len + 1);
        assert_eq!(parse_default(&t), Err(ElfError::ProgramHeadersOutOfFile));
        // Offset + size overflows.
        let mut t = b.clone();
        put64(&mut t, E_PHOFF, u64::MAX - 8);
        assert_eq!(parse_default(&t), Err(ElfError::ProgramHeadersOutOfFile));
        // Count larger than the file holds.
        let mut t = b;
        put16(&mut t, E_PHNUM, 0xfff0);
        assert_eq!(parse_default(&t), Err(ElfError::ProgramHeadersOutOfFile));
        // The table exactly at the end of the file is fine.
        let phdrs = [load(RX, 0x1000, 0x40_1000, 0x10, 0x10)];
        let mut t = build(0x40_1000, &phdrs);
        let end = t.len();
        t.extend_from_within(EHDR_SIZE..ph_at(1));
        put64(&mut t, E_PHOFF, end as u64);
        assert!(parse_default(&t).is_ok());
    }

    #[test]
    fn too_many_segments() {
        let b = sample();
        let limits = Limits {
            max_segments: sample_phdrs().len() - 1,
            ..Limits::default()
        };
        assert_eq!(parse(&b, &limits), Err(ElfError::TooManySegments));
        let limits = Limits {
            max_segments: sample_phdrs().len(),
            ..Limits::default()
        };
        assert!(parse(&b, &limits).is_ok());
    }

    #[test]
    fn no_loadable_segments() {
        let b = build(ENTRY, &[]);
        assert_eq!(parse_default(&b), Err(ElfError::NoLoadableSegments));
        let b = build(
            ENTRY,
            &[other(PT_GNU_STACK, RW), load(RX, 0x1000, 0x40_1000, 0, 0)],
        );
        assert_eq!(parse_default(&b), Err(ElfError::NoLoadableSegments));
    }

    #[test]
    fn file_size_exceeds_mem_size() {
        let b = sample_with(2, load(R, 0x2040, 0x40_2040, 0x81, 0x80));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::FileSizeExceedsMemSize { index: 2 })
        );
        // Also for an otherwise skipped empty segment.
        let b = sample_with(4, load(RW, 0, 0x10, 1, 0));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::FileSizeExceedsMemSize { index: 4 })
        );
    }

    #[test]
    fn segment_out_of_file() {
        let mut b = sample();
        let len = b.len() as u64;
        // The data segment's bytes run one past the end.
        put64(&mut b, ph_at(3) + P_FILESZ, len - 0x3000 + 1);
        put64(&mut b, ph_at(3) + P_MEMSZ, 0x2000);
        assert_eq!(
            parse_default(&b),
            Err(ElfError::SegmentOutOfFile { index: 3 })
        );
        // Offset + size overflows.
        let b = sample_with(2, load(R, u64::MAX - 0x3f, 0x40_2fc0, 0x80, 0x80));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::SegmentOutOfFile { index: 2 })
        );
    }

    #[test]
    fn bss_only_segment_may_point_past_file() {
        let b = sample_with(4, load(RW, 0x9000, 0x50_0000 + 0x9000, 0, 0x10));
        let img = parse_default(&b).unwrap();
        assert_eq!(img.segments.len(), 4);
        assert_eq!(segment_bytes(&b, &img.segments[3]), &[] as &[u8]);
    }

    #[test]
    fn address_overflow() {
        // vaddr + memsz itself wraps.
        let b = sample_with(4, load(RW, 0x0f00, u64::MAX - 0xff, 0, 0x200));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::AddressOverflow { index: 4 })
        );
        // vaddr + memsz fits, but rounding up to a page does not.
        let b = sample_with(4, load(RW, 0x0010, u64::MAX - 0xfef, 0, 1));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::AddressOverflow { index: 4 })
        );
    }

    #[test]
    fn segment_outside_user_range() {
        // Inside the first MiB.
        let b = sample_with(4, load(RW, 0x0000, 0xf_f000, 0, 0x1000));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::SegmentOutsideUserRange { index: 4 })
        );
        // Starts one byte below 1 MiB: its first page is below the minimum.
        let b = sample_with(4, load(RW, 0x0fff, 0xf_ffff, 0, 0x10));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::SegmentOutsideUserRange { index: 4 })
        );
        // Page-rounded end one page past max_vaddr.
        let max = Limits::default().max_vaddr;
        let b = sample_with(4, load(RW, 0x0000, max - 0x1000, 0, 0x1001));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::SegmentOutsideUserRange { index: 4 })
        );
        // Ending exactly at max_vaddr is fine.
        let b = sample_with(4, load(RW, 0x0000, max - 0x1000, 0, 0x1000));
        assert!(parse_default(&b).is_ok());
        // Kernel half.
        let b = sample_with(4, load(RW, 0x0000, 0xffff_8000_0000_0000, 0, 0x1000));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::SegmentOutsideUserRange { index: 4 })
        );
        // A max_vaddr above USER_END is clamped to USER_END.
        let loose = Limits {
            max_vaddr: u64::MAX,
            ..Limits::default()
        };
        let b = sample_with(4, load(RW, 0x0000, USER_END - 0x1000, 0, 0x1000));
        assert!(parse(&b, &loose).is_ok());
        let b = sample_with(4, load(RW, 0x0000, USER_END, 0, 0x1000));
        assert_eq!(
            parse(&b, &loose),
            Err(ElfError::SegmentOutsideUserRange { index: 4 })
        );
    }

    #[test]
    fn misaligned_segment() {
        let b = sample_with(2, load(R, 0x2040, 0x40_2041, 0x80, 0x80));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::MisalignedSegment { index: 2 })
        );
        for align in [3u64, 0x1800, u64::MAX] {
            let mut ph = load(R, 0x2040, 0x40_2040, 0x80, 0x80);
            ph.align = align;
            assert_eq!(
                parse_default(&sample_with(2, ph)),
                Err(ElfError::MisalignedSegment { index: 2 })
            );
        }
        for align in [0u64, 1, 2, 0x20_0000, 1 << 63] {
            let mut ph = load(R, 0x2040, 0x40_2040, 0x80, 0x80);
            ph.align = align;
            assert!(parse_default(&sample_with(2, ph)).is_ok(), "{align:#x}");
        }
    }

    #[test]
    fn overlapping_segments() {
        // Rodata moved into the text segment's last page (different bytes,
        // same page): rejected, with the lower index first.
        let b = sample_with(2, load(R, 0x1400, 0x40_1400, 0x80, 0x80));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::OverlappingSegments { a: 1, b: 2 })
        );
        // Listed in reverse address order, still reported (lower, higher).
        let b = build(
            0x50_0000,
            &[
                load(RW, 0x2000, 0x40_2000, 0x10, 0x3000),
                load(RX, 0x1000, 0x50_0000, 0x10, 0x10),
                load(R, 0x1000, 0x40_4000, 0x10, 0x10),
            ],
        );
        assert_eq!(
            parse_default(&b),
            Err(ElfError::OverlappingSegments { a: 0, b: 2 })
        );
        // Touching page ranges are fine.
        let b = sample_with(2, load(R, 0x2000, 0x40_2000, 0x80, 0x1000));
        assert!(parse_default(&b).is_ok());
    }

    #[test]
    fn write_and_execute() {
        let b = sample_with(2, load(R | PF_W | PF_X, 0x2040, 0x40_2040, 0x80, 0x80));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::WriteAndExecute { index: 2 })
        );
        // Write+execute without read is still W+X.
        let b = sample_with(2, load(PF_W | PF_X, 0x2040, 0x40_2040, 0x80, 0x80));
        assert_eq!(
            parse_default(&b),
            Err(ElfError::WriteAndExecute { index: 2 })
        );
    }

    #[test]
    fn entry_outside_executable_segment() {
        let phdrs = sample_phdrs();
        for entry in [0x40_0fff, 0x40_1234, 0x40_2040, 0x40_3000, 0, u64::MAX] {
            assert_eq!(
                parse_default(&build(entry, &phdrs)),
                Err(ElfError::EntryOutsideExecutableSegment),
                "{entry:#x}"
            );
        }
        // First and last byte of the text segment are fine.
        for entry in [0x40_1000, 0x40_1233] {
            assert!(parse_default(&build(entry, &phdrs)).is_ok());
        }
    }

    #[test]
    fn too_large() {
        let b = sample();
        let tight = Limits {
            max_total_pages: 3,
            ..Limits::default()
        };
        assert_eq!(parse(&b, &tight), Err(ElfError::TooLarge));
        let exact = Limits {
            max_total_pages: 4,
            ..Limits::default()
        };
        assert!(parse(&b, &exact).is_ok());
        // Default limit: a 64 MiB + 1 page bss.
        let big = sample_with(4, load(RW, 0, 0x1000_0000, 0, 16384 * PAGE_SIZE));
        assert_eq!(parse_default(&big), Err(ElfError::TooLarge));
    }

    #[test]
    fn unsupported_segments() {
        for p_type in [PT_DYNAMIC, PT_INTERP, PT_TLS, PT_SHLIB, 0x7000_0001, 8] {
            let b = sample_with(5, other(p_type, R));
            assert_eq!(
                parse_default(&b),
                Err(ElfError::UnsupportedSegment { index: 5, p_type })
            );
        }
    }

    #[test]
    fn ignored_segments_are_not_checked() {
        for p_type in [
            PT_NULL,
            PT_NOTE,
            PT_PHDR,
            PT_GNU_EH_FRAME,
            PT_GNU_STACK,
            PT_GNU_RELRO,
            PT_GNU_PROPERTY,
        ] {
            // Garbage offset, address and alignment, and W+X flags.
            let b = sample_with(5, other(p_type, PF_R | PF_W | PF_X));
            assert_eq!(parse_default(&b).unwrap().segments.len(), 3);
        }
    }

    #[test]
    fn display_names_the_rule() {
        let msg = |e: ElfError| e.to_string();
        assert_eq!(
            msg(ElfError::WriteAndExecute { index: 2 }),
            "segment 2 is writable and executable (W^X)"
        );
        assert_eq!(
            msg(ElfError::OverlappingSegments { a: 1, b: 3 }),
            "segments 1 and 3 share a page"
        );
        assert!(msg(ElfError::UnsupportedSegment {
            index: 4,
            p_type: PT_TLS
        })
        .contains("PT_TLS"));
        assert!(msg(ElfError::UnsupportedSegment {
            index: 4,
            p_type: 0x6000_0000
        })
        .contains("0x60000000"));
        assert!(msg(ElfError::NotExecutable).contains("ET_EXEC"));
    }

    #[test]
    fn page_range_saturates_for_hand_built_segments() {
        let seg = Segment {
            vaddr: u64::MAX - 5,
            mem_size: 100,
            file_offset: 0,
            file_size: 0,
            perms: Perms::from_flags(0),
        };
        assert_eq!(seg.page_range(), (!PAGE_MASK, !PAGE_MASK));
        assert_eq!(seg.page_count(), 0);
        let seg = Segment {
            vaddr: 0x40_0fff,
            mem_size: 2,
            ..seg
        };
        assert_eq!(seg.page_range(), (0x40_0000, 0x40_2000));
    }

    #[test]
    fn segment_bytes_out_of_range_is_empty() {
        let b = sample();
        let seg = Segment {
            vaddr: 0x40_1000,
            mem_size: 0x10,
            file_offset: b.len() as u64 - 4,
            file_size: 5,
            perms: Perms::from_flags(R),
        };
        assert!(segment_bytes(&b, &seg).is_empty());
        let seg = Segment {
            file_offset: u64::MAX,
            ..seg
        };
        assert!(segment_bytes(&b, &seg).is_empty());
    }
}
