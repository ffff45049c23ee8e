//! quickcheck properties for the ELF64 service-binary parser (`capos_kcore::elf`).
//!
//! Arbitrary and header-shaped garbage never panics the parser; mutated
//! well-formed images either fail with an error or parse to an image that
//! satisfies every loader invariant (re-checked here from the raw bytes,
//! independently of the parser); randomly laid out well-formed images are
//! accepted and round-trip their fields; and breaking exactly one rule in a
//! well-formed image, or lowering one limit below what it needs, yields
//! exactly that rule's error.

use capos_kcore::elf::{
    self, ElfError, ElfImage, Limits, Perms, Segment, PAGE_SIZE, PF_R, PF_W, PF_X, USER_END,
};
use quickcheck::{quickcheck, Arbitrary, Gen, QuickCheck, TestResult};

fn below(g: &mut Gen, n: u64) -> u64 {
    u64::arbitrary(g) % n
}

fn pick<T: Copy>(g: &mut Gen, items: &[T]) -> T {
    *g.choose(items).expect("non-empty choice")
}

/// One of the listed values; every argument is evaluated first, so the
/// arguments may themselves draw from `g`.
macro_rules! pick {
    ($g:expr, $($x:expr),+ $(,)?) => {{
        let items = [$($x),+];
        pick($g, &items)
    }};
}

// ---------------------------------------------------------------------------
// Building images
// ---------------------------------------------------------------------------

const EHDR: usize = 64;
const PHENT: usize = 56;
const PT_NULL: u32 = 0;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const PT_PHDR: u32 = 6;
const PT_TLS: u32 = 7;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const IGNORED: [u32; 6] = [
    PT_NULL,
    PT_NOTE,
    PT_PHDR,
    PT_GNU_EH_FRAME,
    PT_GNU_STACK,
    PT_GNU_RELRO,
];

/// A program header as written into a test image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ph {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// Byte stored at file offset `i` outside the headers.
fn fill(i: usize) -> u8 {
    (i ^ (i >> 9) ^ 0x5a) as u8
}

/// ELF header, program headers from offset 64, then the file bytes of every
/// PT_LOAD whose file range ends within 1 MiB (larger, hostile ranges are
/// left pointing past the end of the file).
fn build(entry: u64, phdrs: &[Ph]) -> Vec<u8> {
    let table_end = EHDR + PHENT * phdrs.len();
    let data_end = phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.filesz > 0)
        .filter_map(|p| p.offset.checked_add(p.filesz))
        .filter(|&end| end <= 1 << 20)
        .map(|end| end as usize)
        .max()
        .unwrap_or(0);
    let mut b: Vec<u8> = (0..table_end.max(data_end)).map(fill).collect();
    let mut h = Vec::with_capacity(EHDR);
    h.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&entry.to_le_bytes());
    h.extend_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    h.extend_from_slice(&(EHDR as u16).to_le_bytes());
    h.extend_from_slice(&(PHENT as u16).to_le_bytes());
    h.extend_from_slice(&(phdrs.len() as u16).to_le_bytes());
    h.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    assert_eq!(h.len(), EHDR);
    b[..EHDR].copy_from_slice(&h);
    for (i, p) in phdrs.iter().enumerate() {
        let mut e = Vec::with_capacity(PHENT);
        e.extend_from_slice(&p.p_type.to_le_bytes());
        e.extend_from_slice(&p.flags.to_le_bytes());
        for v in [p.offset, p.vaddr, p.vaddr, p.filesz, p.memsz, p.align] {
            e.extend_from_slice(&v.to_le_bytes());
        }
        let at = EHDR + PHENT * i;
        b[at..at + PHENT].copy_from_slice(&e);
    }
    b
}

// ---------------------------------------------------------------------------
// Independent decoding and invariant check
// ---------------------------------------------------------------------------

fn le(b: &[u8], off: u64, n: u64) -> Option<u64> {
    let off = usize::try_from(off).ok()?;
    let bytes = b.get(off..off.checked_add(n as usize)?)?;
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
    )
}

/// The header fields and program headers of `b`, decoded without the parser.
fn decode(b: &[u8]) -> Option<(u64, Vec<Ph>)> {
    let phoff = le(b, 32, 8)?;
    let phnum = le(b, 56, 2)?;
    let mut phdrs = Vec::new();
    for i in 0..phnum {
        let at = phoff.checked_add(i * PHENT as u64)?;
        phdrs.push(Ph {
            p_type: le(b, at, 4)? as u32,
            flags: le(b, at + 4, 4)? as u32,
            offset: le(b, at + 8, 8)?,
            vaddr: le(b, at + 16, 8)?,
            filesz: le(b, at + 32, 8)?,
            memsz: le(b, at + 40, 8)?,
            align: le(b, at + 48, 8)?,
        });
    }
    Some((le(b, 24, 8)?, phdrs))
}

/// Checks everything the kernel loader relies on, from the raw bytes and
/// with 128-bit arithmetic, for an image `parse` accepted.
fn check_accepted(b: &[u8], limits: &Limits, img: &ElfImage) -> Result<(), String> {
    let header_ok = b.get(..7) == Some(&[0x7f, b'E', b'L', b'F', 2, 1, 1][..]);
    if !header_ok
        || le(b, 16, 2) != Some(2)
        || le(b, 18, 2) != Some(62)
        || le(b, 20, 4) != Some(1)
        || le(b, 52, 2) != Some(64)
        || le(b, 54, 2) != Some(56)
    {
        return Err("accepted a file with a bad ELF header".into());
    }
    let (entry, phdrs) = decode(b).ok_or("accepted a truncated program header table")?;
    if phdrs.len() > limits.max_segments {
        return Err(format!("{} program headers accepted", phdrs.len()));
    }
    if entry != img.entry {
        return Err(format!("entry {:#x} != e_entry {entry:#x}", img.entry));
    }
    for (i, p) in phdrs.iter().enumerate() {
        if [PT_DYNAMIC, PT_INTERP, PT_TLS].contains(&p.p_type) {
            return Err(format!("accepted unsupported header {i} ({:#x})", p.p_type));
        }
    }
    for (i, p) in phdrs.iter().enumerate() {
        if p.p_type == PT_LOAD && p.memsz > 0 && p.align > 1 && !p.align.is_power_of_two() {
            return Err(format!("accepted alignment {:#x} of header {i}", p.align));
        }
    }
    let want: Vec<Segment> = phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.memsz > 0)
        .map(|p| Segment {
            vaddr: p.vaddr,
            mem_size: p.memsz,
            file_offset: p.offset,
            file_size: p.filesz,
            perms: Perms {
                read: p.flags & PF_R != 0,
                write: p.flags & PF_W != 0,
                execute: p.flags & PF_X != 0,
            },
        })
        .collect();
    if want != img.segments {
        return Err("segments differ from the PT_LOAD headers".into());
    }
    if img.segments.is_empty() {
        return Err("accepted an image without segments".into());
    }
    let page = u128::from(PAGE_SIZE);
    let max = u128::from(limits.max_vaddr.min(USER_END));
    let mut ranges = Vec::new();
    let mut pages: u128 = 0;
    for (i, s) in img.segments.iter().enumerate() {
        let vaddr = u128::from(s.vaddr);
        let start = vaddr / page * page;
        let end = (vaddr + u128::from(s.mem_size)).div_ceil(page) * page;
        if start < u128::from(limits.min_vaddr) || end > max {
            return Err(format!("segment {i} outside the user range"));
        }
        if s.page_range() != (start as u64, end as u64) {
            return Err(format!("segment {i}: page_range {:?}", s.page_range()));
        }
        if s.file_size > s.mem_size {
            return Err(format!("segment {i}: filesz > memsz"));
        }
        if s.file_size > 0 && u128::from(s.file_offset) + u128::from(s.file_size) > b.len() as u128
        {
            return Err(format!("segment {i}: file bytes outside the file"));
        }
        if s.file_size > 0 {
            let lo = s.file_offset as usize;
            if elf::segment_bytes(b, s) != &b[lo..lo + s.file_size as usize] {
                return Err(format!("segment {i}: segment_bytes is not the file range"));
            }
        }
        if s.vaddr % PAGE_SIZE != s.file_offset % PAGE_SIZE {
            return Err(format!("segment {i}: vaddr and offset not congruent"));
        }
        if s.perms.write && s.perms.execute {
            return Err(format!("segment {i}: W+X"));
        }
        pages += (end - start) / page;
        ranges.push((start, end));
    }
    for (i, a) in ranges.iter().enumerate() {
        for (j, c) in ranges.iter().enumerate().skip(i + 1) {
            if a.0 < c.1 && c.0 < a.1 {
                return Err(format!("segments {i} and {j} share a page"));
            }
        }
    }
    if pages > u128::from(limits.max_total_pages) {
        return Err(format!("{pages} pages accepted"));
    }
    let in_exec = img.segments.iter().any(|s| {
        s.perms.execute
            && u128::from(img.entry) >= u128::from(s.vaddr)
            && u128::from(img.entry) < u128::from(s.vaddr) + u128::from(s.mem_size)
    });
    if !in_exec {
        return Err("entry not inside an executable segment".into());
    }
    Ok(())
}

fn verdict(b: &[u8], limits: &Limits) -> TestResult {
    match elf::parse(b, limits) {
        Ok(img) => match check_accepted(b, limits, &img) {
            Ok(()) => TestResult::passed(),
            Err(msg) => TestResult::error(msg),
        },
        // The message must render without panicking.
        Err(e) => {
            if e.to_string().is_empty() {
                TestResult::error("empty error message")
            } else {
                TestResult::passed()
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Well-formed images
// ---------------------------------------------------------------------------

/// A random image that follows every rule, with what `parse` must return.
#[derive(Clone, Debug)]
struct WellFormed {
    entry: u64,
    phdrs: Vec<Ph>,
    expected: Vec<Segment>,
    pages: u64,
}

impl Arbitrary for WellFormed {
    fn arbitrary(g: &mut Gen) -> Self {
        let limits = Limits::default();
        let loads = 1 + below(g, 6) as usize;
        let exec = below(g, loads as u64) as usize;
        // Lay segments out from address 0 and file offset one page in, then
        // shift them to a random base (sometimes flush against the top).
        let mut at_page = 0u64;
        let mut file_page = 1u64;
        let mut raw = Vec::new();
        let mut pages = 0;
        for i in 0..loads {
            at_page += below(g, 4);
            let span = 1 + below(g, 4);
            let lead = if bool::arbitrary(g) {
                0
            } else {
                below(g, PAGE_SIZE)
            };
            let memsz = 1 + below(g, span * PAGE_SIZE - lead);
            let filesz = if memsz <= 0x1800 && bool::arbitrary(g) {
                memsz
            } else {
                below(g, memsz.min(0x1800) + 1)
            };
            let flags = if i == exec {
                pick!(g, PF_R | PF_X, PF_X)
            } else {
                pick!(g, 0, PF_R, PF_W, PF_R | PF_W, PF_R | PF_X, PF_X)
            } | (u32::arbitrary(g) & !7 & 0xf0);
            let align = pick!(g, 0, 1, 8, PAGE_SIZE, 0x20_0000);
            let vaddr_rel = at_page * PAGE_SIZE + lead;
            let offset = file_page * PAGE_SIZE + lead;
            raw.push((flags, offset, vaddr_rel, filesz, memsz, align));
            let used = (lead + memsz).div_ceil(PAGE_SIZE);
            pages += used;
            at_page += used;
            file_page += (lead + filesz).div_ceil(PAGE_SIZE).max(1);
        }
        let span_bytes = at_page * PAGE_SIZE;
        let base = match below(g, 3) {
            0 => limits.min_vaddr,
            1 => limits.max_vaddr - span_bytes,
            _ => limits.min_vaddr + below(g, 1 << 20) * PAGE_SIZE,
        };
        let mut phdrs: Vec<Ph> = raw
            .iter()
            .map(|&(flags, offset, vaddr, filesz, memsz, align)| Ph {
                p_type: PT_LOAD,
                flags,
                offset,
                vaddr: base + vaddr,
                filesz,
                memsz,
                align,
            })
            .collect();
        let exec_ph = phdrs[exec];
        let entry = exec_ph.vaddr + below(g, exec_ph.memsz);
        // Ignored headers and empty loads with arbitrary contents.
        for _ in 0..below(g, 6) {
            let p_type = if bool::arbitrary(g) {
                pick(g, &IGNORED)
            } else {
                PT_LOAD
            };
            phdrs.push(Ph {
                p_type,
                flags: u32::arbitrary(g),
                offset: u64::arbitrary(g),
                vaddr: u64::arbitrary(g),
                filesz: 0,
                memsz: if p_type == PT_LOAD {
                    0
                } else {
                    u64::arbitrary(g)
                },
                align: u64::arbitrary(g),
            });
        }
        // Random table order (Fisher-Yates).
        for i in (1..phdrs.len()).rev() {
            phdrs.swap(i, below(g, i as u64 + 1) as usize);
        }
        let expected = phdrs
            .iter()
            .filter(|p| p.p_type == PT_LOAD && p.memsz > 0)
            .map(|p| Segment {
                vaddr: p.vaddr,
                mem_size: p.memsz,
                file_offset: p.offset,
                file_size: p.filesz,
                perms: Perms::from_flags(p.flags),
            })
            .collect();
        WellFormed {
            entry,
            phdrs,
            expected,
            pages,
        }
    }
}

fn prop_wellformed_accepted(w: WellFormed) -> TestResult {
    let b = build(w.entry, &w.phdrs);
    let limits = Limits::default();
    let img = match elf::parse(&b, &limits) {
        Ok(img) => img,
        Err(e) => return TestResult::error(format!("rejected: {e}")),
    };
    if img.entry != w.entry || img.segments != w.expected || img.total_pages() != w.pages {
        return TestResult::error(format!("round trip: {img:?}"));
    }
    for s in &img.segments {
        let data = elf::segment_bytes(&b, s);
        let lo = s.file_offset as usize;
        if data.len() as u64 != s.file_size
            || data.iter().enumerate().any(|(i, &v)| v != fill(lo + i))
        {
            return TestResult::error("segment_bytes differs from the file");
        }
    }
    match check_accepted(&b, &limits, &img) {
        Ok(()) => TestResult::passed(),
        Err(msg) => TestResult::error(msg),
    }
}

/// Tightening a limit by one turns acceptance into exactly that limit's error.
fn prop_wellformed_limits_are_exact(w: WellFormed) -> bool {
    let b = build(w.entry, &w.phdrs);
    let d = Limits::default();
    let pages_ok = Limits {
        max_total_pages: w.pages,
        ..d
    };
    let pages_low = Limits {
        max_total_pages: w.pages - 1,
        ..d
    };
    let count_ok = Limits {
        max_segments: w.phdrs.len(),
        ..d
    };
    let count_low = Limits {
        max_segments: w.phdrs.len() - 1,
        ..d
    };
    elf::parse(&b, &pages_ok).is_ok()
        && elf::parse(&b, &pages_low) == Err(ElfError::TooLarge)
        && elf::parse(&b, &count_ok).is_ok()
        && elf::parse(&b, &count_low) == Err(ElfError::TooManySegments)
}

/// Breaking one rule in a well-formed image yields exactly that rule's error.
/// `rule` selects the rule, `pick_load` the segment (or header) to break,
/// `other` a second segment where one is needed.
fn prop_wellformed_one_rule_broken(
    w: WellFormed,
    rule: u8,
    pick_load: usize,
    other: usize,
) -> TestResult {
    // Half the time with no upper limit of its own: USER_END still applies.
    let limits = Limits {
        max_vaddr: if other % 4 < 2 {
            u64::MAX
        } else {
            Limits::default().max_vaddr
        },
        ..Limits::default()
    };
    let loads: Vec<usize> = (0..w.phdrs.len())
        .filter(|&i| w.phdrs[i].p_type == PT_LOAD && w.phdrs[i].memsz > 0)
        .collect();
    let index = loads[pick_load % loads.len()];
    let mut phdrs = w.phdrs.clone();
    let mut entry = w.entry;
    let p = &mut phdrs[index];
    let lead = p.vaddr % PAGE_SIZE;
    let expected = match rule % 12 {
        0 => {
            p.flags |= PF_W | PF_X;
            ElfError::WriteAndExecute { index }
        }
        1 => {
            p.filesz = p.memsz + 1;
            ElfError::FileSizeExceedsMemSize { index }
        }
        2 => {
            p.align = pick_load as u64 % 0x1000 * 2 + 3; // odd, > 1
            ElfError::MisalignedSegment { index }
        }
        3 => {
            p.offset -= 1; // offsets start at page 1, so this stays in the file
            ElfError::MisalignedSegment { index }
        }
        4 => {
            let index = pick_load % w.phdrs.len();
            let p_type = [PT_DYNAMIC, PT_INTERP, PT_TLS, 5, 0x6000_0000, 8][other % 6];
            phdrs[index].p_type = p_type;
            ElfError::UnsupportedSegment { index, p_type }
        }
        5 => {
            p.vaddr = limits.min_vaddr - PAGE_SIZE + lead;
            ElfError::SegmentOutsideUserRange { index }
        }
        6 => {
            p.vaddr = limits.max_vaddr.min(USER_END) + lead;
            ElfError::SegmentOutsideUserRange { index }
        }
        7 => {
            p.vaddr = u64::MAX - (PAGE_SIZE - 1) + lead;
            ElfError::AddressOverflow { index }
        }
        8 => {
            p.filesz = p.filesz.max(1);
            p.offset += 1 << 40;
            ElfError::SegmentOutOfFile { index }
        }
        9 => {
            entry = [0, limits.min_vaddr - 1, u64::MAX][other % 3];
            ElfError::EntryOutsideExecutableSegment
        }
        10 => {
            // Move the segment onto another one's first page.
            let mut rest: Vec<usize> = loads.clone();
            rest.retain(|&j| j != index);
            if rest.is_empty() {
                return TestResult::discard();
            }
            let j = rest[other % rest.len()];
            let target = w.phdrs[j].vaddr - w.phdrs[j].vaddr % PAGE_SIZE;
            let p = &mut phdrs[index];
            p.vaddr = target + lead;
            if (p.vaddr + p.memsz).div_ceil(PAGE_SIZE) * PAGE_SIZE > limits.max_vaddr.min(USER_END)
            {
                return TestResult::discard();
            }
            let got = elf::parse(&build(entry, &phdrs), &limits);
            // Any reported pair involves the moved segment (the others
            // never overlapped).
            return TestResult::from_bool(matches!(
                got,
                Err(ElfError::OverlappingSegments { a, b }) if a < b && (a == index || b == index)
            ));
        }
        _ => {
            let mut b = build(entry, &phdrs);
            if other.is_multiple_of(2) {
                let e_type: u16 = [0, 1, 3, 4, 0xfe00][pick_load % 5];
                b[16..18].copy_from_slice(&e_type.to_le_bytes());
                return TestResult::from_bool(
                    elf::parse(&b, &limits) == Err(ElfError::NotExecutable),
                );
            }
            let machine: u16 = [0, 3, 40, 183][pick_load % 4];
            b[18..20].copy_from_slice(&machine.to_le_bytes());
            return TestResult::from_bool(elf::parse(&b, &limits) == Err(ElfError::WrongMachine));
        }
    };
    let got = elf::parse(&build(entry, &phdrs), &limits);
    if got == Err(expected) {
        TestResult::passed()
    } else {
        TestResult::error(format!(
            "rule {}: want {expected:?}, got {got:?}",
            rule % 12
        ))
    }
}

#[test]
fn wellformed_images_are_accepted() {
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop_wellformed_accepted as fn(WellFormed) -> TestResult);
}

#[test]
fn wellformed_limits_are_exact() {
    quickcheck(prop_wellformed_limits_are_exact as fn(WellFormed) -> bool);
}

#[test]
fn wellformed_one_rule_broken() {
    QuickCheck::new().tests(2000).quickcheck(
        prop_wellformed_one_rule_broken as fn(WellFormed, u8, usize, usize) -> TestResult,
    );
}

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

/// A value likely to sit on a boundary the parser checks.
fn edgy(g: &mut Gen, near: u64) -> u64 {
    let d = Limits::default();
    let base = pick!(
        g,
        0,
        near,
        PAGE_SIZE,
        d.min_vaddr,
        d.max_vaddr,
        USER_END,
        u64::MAX,
        u64::MAX - PAGE_SIZE,
        1 << 32,
        u64::arbitrary(g)
    );
    base.wrapping_add(pick!(g, 0, 1, u64::MAX, 0xfff, 0x1000, 56))
}

/// Limits, usually the defaults.
#[derive(Clone, Copy, Debug)]
struct AnyLimits(Limits);

impl Arbitrary for AnyLimits {
    fn arbitrary(g: &mut Gen) -> Self {
        if bool::arbitrary(g) {
            return AnyLimits(Limits::default());
        }
        AnyLimits(Limits {
            max_segments: below(g, 20) as usize,
            min_vaddr: pick!(g, 0, 0x1000, 0x10_0000, u64::arbitrary(g)),
            max_vaddr: pick!(g, USER_END, u64::MAX, 0x7000_0000_0000, u64::arbitrary(g)),
            max_total_pages: pick!(g, 0, 1, 4, 16384, u64::MAX),
        })
    }
}

/// One edit to an image.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR a byte of the headers.
    Flip { pos: usize, mask: u8 },
    /// Cut the file to this length.
    Truncate(usize),
    /// Overwrite an 8-, 4- or 2-byte little-endian field.
    Field {
        pos: usize,
        width: usize,
        value: u64,
    },
    /// Add a small signed amount to the 8-byte field at `pos`.
    Nudge { pos: usize, delta: i64 },
    /// Copy the 8-byte field at `from` over the one at `to` (for example one
    /// segment's address into another's, making them collide).
    Copy { from: usize, to: usize },
}

/// Offset of a random program header field (of the first 8 headers).
fn ph_field(g: &mut Gen, fields: &[usize]) -> usize {
    EHDR + PHENT * below(g, 8) as usize + pick(g, fields)
}

/// Program header fields: type/flags (4 bytes) and the 8-byte ones.
const PH_FIELDS: [usize; 7] = [0, 4, 8, 16, 32, 40, 48];
const PH_WIDE_FIELDS: [usize; 5] = [8, 16, 32, 40, 48];

impl Arbitrary for Mutation {
    fn arbitrary(g: &mut Gen) -> Self {
        let header_span = (EHDR + 8 * PHENT) as u64;
        match below(g, 10) {
            0 => Mutation::Truncate(below(g, 0x8000) as usize),
            1 => Mutation::Flip {
                pos: below(g, header_span) as usize,
                mask: u8::arbitrary(g) | 1,
            },
            2..=4 => {
                // Mostly program header fields; sometimes e_entry, e_phoff,
                // e_phnum or another header field.
                let pos = if below(g, 4) == 0 {
                    pick!(g, 16usize, 18, 20, 24, 24, 32, 32, 52, 54, 56, 56)
                } else {
                    ph_field(g, &PH_FIELDS)
                };
                let is_type = pos >= EHDR && (pos - EHDR).is_multiple_of(PHENT);
                if is_type && bool::arbitrary(g) {
                    let p_type = pick!(g, PT_DYNAMIC, PT_INTERP, PT_TLS, PT_LOAD, PT_NULL, 5);
                    return Mutation::Field {
                        pos,
                        width: 4,
                        value: u64::from(p_type),
                    };
                }
                let width = pick!(g, 2usize, 4, 8, 8);
                Mutation::Field {
                    pos,
                    width,
                    value: edgy(g, pos as u64),
                }
            }
            5..=7 => Mutation::Nudge {
                pos: if below(g, 6) == 0 {
                    24
                } else {
                    ph_field(g, &PH_WIDE_FIELDS)
                },
                delta: pick!(g, 1i64, -1, 0xfff, 0x1000, -0x1000, 0x2000, -0x2000),
            },
            _ => {
                let field = pick(g, &PH_WIDE_FIELDS);
                Mutation::Copy {
                    from: if below(g, 6) == 0 {
                        24
                    } else {
                        EHDR + PHENT * below(g, 8) as usize + field
                    },
                    to: EHDR + PHENT * below(g, 8) as usize + field,
                }
            }
        }
    }
}

fn read8(b: &[u8], pos: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(pos..pos + 8)?.try_into().ok()?))
}

fn write(b: &mut [u8], pos: usize, width: usize, value: u64) {
    for (k, v) in value.to_le_bytes().iter().take(width).enumerate() {
        if let Some(x) = b.get_mut(pos + k) {
            *x = *v;
        }
    }
}

fn apply(b: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Flip { pos, mask } => {
            if let Some(x) = b.get_mut(pos) {
                *x ^= mask;
            }
        }
        Mutation::Truncate(len) => b.truncate(len),
        Mutation::Field { pos, width, value } => write(b, pos, width, value),
        Mutation::Nudge { pos, delta } => {
            if let Some(v) = read8(b, pos) {
                write(b, pos, 8, v.wrapping_add_signed(delta));
            }
        }
        Mutation::Copy { from, to } => {
            if let Some(v) = read8(b, from) {
                write(b, to, 8, v);
            }
        }
    }
}

/// One to four mutations (a single one a quarter of the time).
fn prop_mutated_images(
    w: WellFormed,
    first: Mutation,
    more: Vec<Mutation>,
    limits: AnyLimits,
) -> TestResult {
    let mut b = build(w.entry, &w.phdrs);
    apply(&mut b, &first);
    for m in more.iter().take(more.len() % 4) {
        apply(&mut b, m);
    }
    verdict(&b, &limits.0)
}

fn prop_arbitrary_bytes(bytes: Vec<u8>, limits: AnyLimits) -> TestResult {
    verdict(&bytes, &limits.0)
}

/// A valid header over a table of random program headers biased towards
/// boundary values, and a random amount of random data.
#[derive(Clone, Debug)]
struct HeaderShaped {
    bytes: Vec<u8>,
}

impl Arbitrary for HeaderShaped {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = below(g, 8) as usize;
        let phdrs: Vec<Ph> = (0..n)
            .map(|_| {
                let base = Limits::default().min_vaddr;
                Ph {
                    p_type: pick!(
                        g,
                        PT_LOAD,
                        PT_LOAD,
                        PT_LOAD,
                        PT_TLS,
                        PT_NOTE,
                        u32::arbitrary(g)
                    ),
                    flags: below(g, 8) as u32,
                    offset: pick!(g, 0, PAGE_SIZE, edgy(g, 0)),
                    vaddr: pick!(g, base, base + PAGE_SIZE, edgy(g, base)),
                    filesz: pick!(g, 0, 0x10, 0x1000, edgy(g, 0)),
                    memsz: pick!(g, 0, 0x10, 0x1000, 0x2000, edgy(g, 0)),
                    align: pick!(g, 0, 1, PAGE_SIZE, edgy(g, 0)),
                }
            })
            .collect();
        let entry = pick!(g, 0x10_0000, 0x10_0010, 0x10_1000, edgy(g, 0x10_0000));
        let mut bytes = build(entry, &phdrs);
        let extra = below(g, 3 * PAGE_SIZE) as usize;
        bytes.extend((0..extra).map(|_| u8::arbitrary(g)));
        HeaderShaped { bytes }
    }
}

fn prop_header_shaped(h: HeaderShaped, limits: AnyLimits) -> TestResult {
    verdict(&h.bytes, &limits.0)
}

#[test]
fn arbitrary_bytes_never_panic() {
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop_arbitrary_bytes as fn(Vec<u8>, AnyLimits) -> TestResult);
}

#[test]
fn mutated_images_fail_or_hold_invariants() {
    QuickCheck::new().tests(3000).quickcheck(
        prop_mutated_images as fn(WellFormed, Mutation, Vec<Mutation>, AnyLimits) -> TestResult,
    );
}

#[test]
fn header_shaped_input_fails_or_holds_invariants() {
    QuickCheck::new()
        .tests(3000)
        .quickcheck(prop_header_shaped as fn(HeaderShaped, AnyLimits) -> TestResult);
}

/// Some header-shaped inputs are accepted, so the invariant check above is
/// not vacuous.
#[test]
fn header_shaped_input_is_sometimes_accepted() {
    let mut g = Gen::new(64);
    let accepted = (0..3000)
        .filter(|_| elf::parse(&HeaderShaped::arbitrary(&mut g).bytes, &Limits::default()).is_ok())
        .count();
    assert!(accepted > 0);
}

/// The default limits match the process ABI's fixed addresses.
#[test]
fn default_limits_match_process_abi() {
    use capos_ring::process::{
        CAPSET_ADDR, RING_ADDR, STACK_PAGES, STACK_TOP, USER_IMAGE_END, USER_IMAGE_MIN,
    };
    let d = Limits::default();
    assert_eq!(d.min_vaddr, USER_IMAGE_MIN);
    assert_eq!(d.max_vaddr, USER_IMAGE_END);
    // The ring, CapSet page, stack and its guard page all lie above the image range.
    let stack_guard = STACK_TOP - (STACK_PAGES + 1) * PAGE_SIZE;
    assert!(d.max_vaddr <= RING_ADDR.min(CAPSET_ADDR).min(stack_guard));
}
