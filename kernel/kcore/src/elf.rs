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
