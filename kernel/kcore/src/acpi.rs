//! ACPI table discovery and MADT parsing over an abstract view of physical memory.
//!
//! Firmware tables are input like any other: every length is bounded before
//! it is used, every table this module returns or parses has its checksum
//! verified, and every read goes through [`PhysMemory`], which may refuse.
//!
//! Layouts (all little-endian, ACPI 6.x):
//!
//! * RSDP: `"RSD PTR "`, checksum, OEM id (6), revision, RSDT address (u32)
//!   — 20 bytes; revision 2+ adds length (u32), XSDT address (u64),
//!   extended checksum and 3 reserved bytes — 36 bytes.
//! * Every other table starts with a 36-byte header: signature (4),
//!   length (u32, covering the header), revision, checksum, OEM id (6),
//!   OEM table id (8), OEM revision, creator id, creator revision.
//! * RSDT / XSDT: header followed by 32-bit / 64-bit table addresses.
//! * MADT (`"APIC"`): header, local APIC address (u32), flags (u32), then
//!   variable-length entries of `type (u8), length (u8), body`.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Length of the common system description table header.
pub const SDT_HEADER_LEN: u32 = 36;

/// Largest table length accepted (4 MiB); anything longer is treated as
/// corrupt rather than read.
pub const MAX_TABLE_LEN: u32 = 4 << 20;

/// Length of an ACPI 1.0 RSDP.
pub const RSDP_V1_LEN: usize = 20;

/// Length of an ACPI 2.0+ RSDP.
pub const RSDP_V2_LEN: usize = 36;

const RSDP_SIGNATURE: [u8; 8] = *b"RSD PTR ";
const MADT_SIGNATURE: [u8; 4] = *b"APIC";
/// MADT header: SDT header plus local APIC address and flags.
const MADT_FIXED_LEN: u32 = SDT_HEADER_LEN + 8;

/// Read-only access to physical memory (the kernel implements it over its direct map; tests over a Vec).
pub trait PhysMemory {
    /// Fills `buf` with the bytes at `phys..phys + buf.len()`, or fails
    /// (typically with [`AcpiError::Unreadable`]) if any of them is not
    /// readable RAM or firmware memory.
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), AcpiError>;
}

/// A table signature, displayed as text when printable and as hex otherwise.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Sig<'a>(&'a [u8]);

impl fmt::Display for Sig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            for &b in self.0 {
                write!(f, "{}", b as char)?;
            }
            Ok(())
        } else {
            f.write_str("0x")?;
            for &b in self.0 {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
}

/// Why an ACPI structure was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// The RSDP bytes are shorter than its revision requires.
    RsdpTooShort {
        /// Bytes supplied.
        len: usize,
        /// Bytes required.
        needed: usize,
    },
    /// The RSDP does not start with `"RSD PTR "`.
    BadRsdpSignature,
    /// An RSDP checksum does not sum to zero.
    BadRsdpChecksum {
        /// True for the ACPI 2.0 extended checksum over the whole structure.
        extended: bool,
        /// The byte sum that should have been zero.
        sum: u8,
    },
    /// The ACPI 2.0 RSDP length field is below 36 or beyond the bytes given.
    BadRsdpLength {
        /// The length field.
        length: u32,
        /// Bytes supplied.
        available: usize,
    },
    /// The RSDP names neither an RSDT nor an XSDT.
    NoRootTable,
    /// A table does not carry the signature it was expected to.
    BadSignature {
        /// Physical address of the table.
        phys: u64,
        /// The signature looked for.
        expected: [u8; 4],
        /// The signature found.
        found: [u8; 4],
    },
    /// A table's bytes do not sum to zero.
    BadChecksum {
        /// The table's signature.
        signature: [u8; 4],
        /// Physical address of the table.
        phys: u64,
        /// The byte sum that should have been zero.
        sum: u8,
    },
    /// A table's length field is implausible.
    BadLength {
        /// The table's signature.
        signature: [u8; 4],
        /// Physical address of the table.
        phys: u64,
        /// The length field.
        length: u32,
        /// Smallest acceptable length.
        min: u32,
        /// Largest acceptable length.
        max: u32,
    },
    /// No table with this signature is listed in the root table.
    NotFound {
        /// The signature looked for.
        signature: [u8; 4],
    },
    /// Physical memory at this address could not be read.
    Unreadable {
        /// First address of the failed read.
        phys: u64,
    },
    /// A MADT entry is malformed.
    BadMadtEntry {
        /// Physical address of the MADT.
        phys: u64,
        /// Offset of the entry from the start of the table.
        offset: u32,
        /// The entry's type byte.
        entry_type: u8,
        /// The entry's length byte (0 if it could not be read).
        length: u8,
        /// What is wrong with it.
        problem: MadtEntryProblem,
    },
}

/// What is wrong with a MADT entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtEntryProblem {
    /// Its length is below the 2-byte entry header (0 or 1), so the walk
    /// could not advance.
    LengthBelowHeader,
    /// Its length is too small for the fields of its type.
    TooShortForType,
    /// It extends past the end of the table.
    Overruns,
}

impl fmt::Display for MadtEntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MadtEntryProblem::LengthBelowHeader => "is shorter than its 2-byte header",
            MadtEntryProblem::TooShortForType => "is too short for its type",
            MadtEntryProblem::Overruns => "runs past the end of the table",
        })
    }
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AcpiError::RsdpTooShort { len, needed } => {
                write!(f, "ACPI RSDP: {len} bytes, need at least {needed}")
            }
            AcpiError::BadRsdpSignature => f.write_str("ACPI RSDP: bad signature"),
            AcpiError::BadRsdpChecksum { extended, sum } => write!(
                f,
                "ACPI RSDP: bad {}checksum (sum {sum:#04x})",
                if extended { "extended " } else { "" }
            ),
            AcpiError::BadRsdpLength { length, available } => write!(
                f,
                "ACPI RSDP: length field {length} is outside {RSDP_V2_LEN}..={available}"
            ),
            AcpiError::NoRootTable => f.write_str("ACPI RSDP names neither an RSDT nor an XSDT"),
            AcpiError::BadSignature {
                phys,
                expected,
                found,
            } => write!(
                f,
                "ACPI table at {phys:#x}: expected signature {}, found {}",
                Sig(&expected),
                Sig(&found)
            ),
            AcpiError::BadChecksum {
                signature,
                phys,
                sum,
            } => write!(
                f,
                "ACPI table {} at {phys:#x}: bad checksum (sum {sum:#04x})",
                Sig(&signature)
            ),
            AcpiError::BadLength {
                signature,
                phys,
                length,
                min,
                max,
            } => write!(
                f,
                "ACPI table {} at {phys:#x}: length {length} is outside {min}..={max}",
                Sig(&signature)
            ),
            AcpiError::NotFound { signature } => write!(
                f,
                "ACPI table {} is not listed in the RSDT/XSDT",
                Sig(&signature)
            ),
            AcpiError::Unreadable { phys } => {
                write!(f, "ACPI: physical memory at {phys:#x} is not readable")
            }
            AcpiError::BadMadtEntry {
                phys,
                offset,
                entry_type,
                length,
                problem,
            } => write!(
                f,
                "ACPI table APIC at {phys:#x}: entry at offset {offset} (type {entry_type}, length {length}) {problem}"
            ),
        }
    }
}

/// The parts of the Root System Description Pointer the kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// 0 for ACPI 1.0, 2 for ACPI 2.0 and later.
    pub revision: u8,
    /// OEM identifier.
    pub oem_id: [u8; 6],
    /// Physical address of the RSDT (may be 0 on 2.0+ firmware).
    pub rsdt_address: u32,
    /// Physical address of the XSDT; `None` for ACPI 1.0 or when zero.
    pub xsdt_address: Option<u64>,
}

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn sig_at(b: &[u8], off: usize) -> [u8; 4] {
    [b[off], b[off + 1], b[off + 2], b[off + 3]]
}

/// Parses the RSDP bytes GRUB copies into the multiboot2 ACPI tag (v1: 20 bytes, v2: 36 bytes), checking signature and both checksums.
///
/// Revision 2 and later must supply at least 36 bytes and a length field no
/// larger than the bytes given; the extended checksum covers that length.
pub fn parse_rsdp(bytes: &[u8]) -> Result<Rsdp, AcpiError> {
    if bytes.len() < RSDP_V1_LEN {
        return Err(AcpiError::RsdpTooShort {
            len: bytes.len(),
            needed: RSDP_V1_LEN,
        });
    }
    if bytes[..8] != RSDP_SIGNATURE {
        return Err(AcpiError::BadRsdpSignature);
    }
    let s = sum(&bytes[..RSDP_V1_LEN]);
    if s != 0 {
        return Err(AcpiError::BadRsdpChecksum {
            extended: false,
            sum: s,
        });
    }
    let revision = bytes[15];
    let mut oem_id = [0u8; 6];
    oem_id.copy_from_slice(&bytes[9..15]);
    let rsdt_address = u32_at(bytes, 16);
    let mut xsdt_address = None;
    if revision >= 2 {
        if bytes.len() < RSDP_V2_LEN {
            return Err(AcpiError::RsdpTooShort {
                len: bytes.len(),
                needed: RSDP_V2_LEN,
            });
        }
        let length = u32_at(bytes, 20);
        if (length as usize) < RSDP_V2_LEN || length as usize > bytes.len() {
            return Err(AcpiError::BadRsdpLength {
                length,
                available: bytes.len(),
            });
        }
        let s = sum(&bytes[..length as usize]);
        if s != 0 {
            return Err(AcpiError::BadRsdpChecksum {
                extended: true,
                sum: s,
            });
        }
        xsdt_address = Some(u64_at(bytes, 24)).filter(|a| *a != 0);
    }
    if rsdt_address == 0 && xsdt_address.is_none() {
        return Err(AcpiError::NoRootTable);
    }
    Ok(Rsdp {
        revision,
        oem_id,
        rsdt_address,
        xsdt_address,
    })
}

/// Reads `buf.len()` bytes at `phys`, refusing reads that wrap the address space.
fn read_at(mem: &impl PhysMemory, phys: u64, buf: &mut [u8]) -> Result<(), AcpiError> {
    phys.checked_add(buf.len() as u64)
        .ok_or(AcpiError::Unreadable { phys })?;
    mem.read(phys, buf)
}

/// Signature and length of the table at `phys`, with the length checked
/// against `min..=MAX_TABLE_LEN` and the signature against `expected`.
fn read_header(
    mem: &impl PhysMemory,
    phys: u64,
    expected: Option<[u8; 4]>,
    min: u32,
) -> Result<([u8; 4], u32), AcpiError> {
    let mut hdr = [0u8; SDT_HEADER_LEN as usize];
    read_at(mem, phys, &mut hdr)?;
    let signature = sig_at(&hdr, 0);
    if let Some(expected) = expected {
        if signature != expected {
            return Err(AcpiError::BadSignature {
                phys,
                expected,
                found: signature,
            });
        }
    }
    let length = u32_at(&hdr, 4);
    if length < min || length > MAX_TABLE_LEN {
        return Err(AcpiError::BadLength {
            signature,
            phys,
            length,
            min,
            max: MAX_TABLE_LEN,
        });
    }
    Ok((signature, length))
}

/// Verifies the checksum of `length` bytes at `phys` without allocating.
fn verify_checksum(
    mem: &impl PhysMemory,
    phys: u64,
    signature: [u8; 4],
    length: u32,
) -> Result<(), AcpiError> {
    let mut chunk = [0u8; 256];
    let mut total = 0u8;
    let mut done = 0u32;
    while done < length {
        let n = (length - done).min(chunk.len() as u32);
        let at = phys + u64::from(done);
        read_at(mem, at, &mut chunk[..n as usize])?;
        total = total.wrapping_add(sum(&chunk[..n as usize]));
        done += n;
    }
    if total != 0 {
        return Err(AcpiError::BadChecksum {
            signature,
            phys,
            sum: total,
        });
    }
    Ok(())
}

/// Walks the XSDT (or RSDT), validating every header it reads (length sane and bounded, checksum), and returns the physical address of the first table with `signature`.
///
/// The XSDT is used when the RSDP provides one, otherwise the RSDT. The root
/// table is fully validated (signature, length, checksum). Of the tables it
/// lists, each header is read (an unreadable pointer is an error) but only
/// the table that matches `signature` has its length and checksum validated,
/// so a corrupt table the kernel does not need cannot hide the one it does.
/// Null entries are skipped; a trailing partial entry is ignored.
pub fn find_table(
    mem: &impl PhysMemory,
    rsdp: &Rsdp,
    signature: [u8; 4],
) -> Result<u64, AcpiError> {
    let (root, root_sig, entry_len) = match rsdp.xsdt_address {
        Some(x) if x != 0 => (x, *b"XSDT", 8u32),
        _ if rsdp.rsdt_address != 0 => (u64::from(rsdp.rsdt_address), *b"RSDT", 4u32),
        _ => return Err(AcpiError::NoRootTable),
    };
    let (_, length) = read_header(mem, root, Some(root_sig), SDT_HEADER_LEN)?;
    verify_checksum(mem, root, root_sig, length)?;
    let count = (length - SDT_HEADER_LEN) / entry_len;
    for i in 0..count {
        let mut raw = [0u8; 8];
        let at = root + u64::from(SDT_HEADER_LEN + i * entry_len);
        read_at(mem, at, &mut raw[..entry_len as usize])?;
        let table = u64::from_le_bytes(raw);
        if table == 0 {
            continue;
        }
        let mut sig = [0u8; 4];
        read_at(mem, table, &mut sig)?;
        if sig == signature {
            let (_, len) = read_header(mem, table, Some(signature), SDT_HEADER_LEN)?;
            verify_checksum(mem, table, signature, len)?;
            return Ok(table);
        }
    }
    Err(AcpiError::NotFound { signature })
}

/// One processor listed in the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadtCpu {
    /// Local APIC id (x2APIC id for type-9 entries).
    pub apic_id: u32,
    /// ACPI processor UID.
    pub acpi_uid: u32,
    /// The processor is ready to use (flags bit 0).
    pub enabled: bool,
    /// The processor is disabled but may be brought online (flags bit 1).
    pub online_capable: bool,
    /// Listed by a local x2APIC entry (type 9) rather than a local APIC entry.
    pub x2apic_entry: bool,
}

impl MadtCpu {
    /// True when the processor may be started: enabled, or online capable.
    pub fn is_usable(&self) -> bool {
        self.enabled || self.online_capable
    }
}

/// One I/O APIC listed in the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadtIoApic {
    /// I/O APIC id.
    pub id: u8,
    /// Physical MMIO base.
    pub address: u32,
    /// First global system interrupt it handles.
    pub gsi_base: u32,
}

/// An interrupt source override (MADT type 2): an ISA IRQ that is not
/// identity-mapped to a GSI, or has non-default polarity or trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadtIrqOverride {
    /// Bus (0 = ISA).
    pub bus: u8,
    /// Bus-relative IRQ.
    pub source: u8,
    /// Global system interrupt it is wired to.
    pub gsi: u32,
    /// MPS INTI flags: polarity in bits 0-1, trigger mode in bits 2-3.
    pub flags: u16,
}

/// The parsed Multiple APIC Description Table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Madt {
    /// Local APIC MMIO base (the 64-bit override, if present, wins).
    pub local_apic_address: u64,
    /// Processors, in table order.
    pub cpus: Vec<MadtCpu>,
    /// I/O APICs, in table order.
    pub io_apics: Vec<MadtIoApic>,
    /// MADT flags (bit 0: legacy 8259 PICs are present).
    pub flags: u32,
    /// Interrupt source overrides, in table order.
    pub irq_overrides: Vec<MadtIrqOverride>,
}

impl Madt {
    /// Flags bit 0: the system also has dual 8259 PICs, which must be masked
    /// before the APICs are used.
    pub fn has_legacy_pics(&self) -> bool {
        self.flags & 1 != 0
    }
}

/// Parses the MADT at `phys` (local APIC type 0, IO APIC 1, LAPIC address override 5, local x2APIC 9), validating its checksum and every entry length; entries of unknown type are skipped; a zero-length or overrunning entry is an error.
///
/// Interrupt source overrides (type 2) are collected too. An entry of a known
/// type whose length is too small for its fields is an error.
pub fn parse_madt(mem: &impl PhysMemory, phys: u64) -> Result<Madt, AcpiError> {
    let (_, length) = read_header(mem, phys, Some(MADT_SIGNATURE), MADT_FIXED_LEN)?;
    let mut t = vec![0u8; length as usize];
    read_at(mem, phys, &mut t)?;
    let s = sum(&t);
    if s != 0 {
        return Err(AcpiError::BadChecksum {
            signature: MADT_SIGNATURE,
            phys,
            sum: s,
        });
    }
    let mut madt = Madt {
        local_apic_address: u64::from(u32_at(&t, 36)),
        cpus: Vec::new(),
        io_apics: Vec::new(),
        flags: u32_at(&t, 40),
        irq_overrides: Vec::new(),
    };
    let mut off = MADT_FIXED_LEN as usize;
    while off < t.len() {
        let entry_type = t[off];
        let bad = |length: u8, problem| AcpiError::BadMadtEntry {
            phys,
            offset: off as u32,
            entry_type,
            length,
            problem,
        };
        if off + 2 > t.len() {
            return Err(bad(0, MadtEntryProblem::Overruns));
        }
        let len = t[off + 1];
        if len < 2 {
            return Err(bad(len, MadtEntryProblem::LengthBelowHeader));
        }
        if off + usize::from(len) > t.len() {
            return Err(bad(len, MadtEntryProblem::Overruns));
        }
        let e = &t[off..off + usize::from(len)];
        let min = match entry_type {
            0 => 8,
            1 | 5 => 12,
            2 => 10,
            9 => 16,
            _ => 2,
        };
        if e.len() < min {
            return Err(bad(len, MadtEntryProblem::TooShortForType));
        }
        match entry_type {
            0 => {
                let flags = u32_at(e, 4);
                madt.cpus.push(MadtCpu {
                    apic_id: u32::from(e[3]),
                    acpi_uid: u32::from(e[2]),
                    enabled: flags & 1 != 0,
                    online_capable: flags & 2 != 0,
                    x2apic_entry: false,
                });
            }
            1 => madt.io_apics.push(MadtIoApic {
                id: e[2],
                address: u32_at(e, 4),
                gsi_base: u32_at(e, 8),
            }),
            2 => madt.irq_overrides.push(MadtIrqOverride {
                bus: e[2],
                source: e[3],
                gsi: u32_at(e, 4),
                flags: u16_at(e, 8),
            }),
            5 => madt.local_apic_address = u64_at(e, 4),
            9 => {
                let flags = u32_at(e, 8);
                madt.cpus.push(MadtCpu {
                    apic_id: u32_at(e, 4),
                    acpi_uid: u32_at(e, 12),
                    enabled: flags & 1 != 0,
                    online_capable: flags & 2 != 0,
                    x2apic_entry: true,
                });
            }
            _ => {}
        }
        off += usize::from(len);
    }
    Ok(madt)
}

#[cfg(test)]
mod tests;
