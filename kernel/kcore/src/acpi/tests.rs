//! Tests for the ACPI parser over byte images laid out like real firmware tables.

use super::*;
use alloc::string::ToString;

/// Physical memory made of a few disjoint regions; anything else is unreadable.
struct FakeMem {
    regions: Vec<(u64, Vec<u8>)>,
}

impl FakeMem {
    fn new() -> Self {
        Self {
            regions: Vec::new(),
        }
    }

    fn put(&mut self, phys: u64, bytes: Vec<u8>) {
        self.regions.push((phys, bytes));
    }

    fn region_mut(&mut self, phys: u64) -> &mut Vec<u8> {
        &mut self.regions.iter_mut().find(|(p, _)| *p == phys).unwrap().1
    }
}

impl PhysMemory for FakeMem {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), AcpiError> {
        for (base, bytes) in &self.regions {
            let end = base + bytes.len() as u64;
            if phys >= *base && phys + buf.len() as u64 <= end {
                let off = (phys - base) as usize;
                buf.copy_from_slice(&bytes[off..off + buf.len()]);
                return Ok(());
            }
        }
        Err(AcpiError::Unreadable { phys })
    }
}

fn fix_checksum(bytes: &mut [u8], at: usize) {
    bytes[at] = 0;
    bytes[at] = 0u8.wrapping_sub(sum(bytes));
}

/// A system description table with a correct header and checksum.
fn sdt(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(signature);
    t.extend_from_slice(&(36 + body.len() as u32).to_le_bytes());
    t.push(1); // revision
    t.push(0); // checksum, fixed below
    t.extend_from_slice(b"CAPOS ");
    t.extend_from_slice(b"TESTTABL");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"CAPS");
    t.extend_from_slice(&1u32.to_le_bytes());
    assert_eq!(t.len(), 36);
    t.extend_from_slice(body);
    fix_checksum(&mut t, 9);
    t
}

fn rsdp_v1(rsdt: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(b"RSD PTR ");
    r.push(0);
    r.extend_from_slice(b"CAPOS ");
    r.push(0);
    r.extend_from_slice(&rsdt.to_le_bytes());
    fix_checksum(&mut r, 8);
    r
}

fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = rsdp_v1(rsdt);
    r[15] = 2;
    fix_checksum(&mut r, 8);
    r.extend_from_slice(&36u32.to_le_bytes());
    r.extend_from_slice(&xsdt.to_le_bytes());
    r.push(0);
    r.extend_from_slice(&[0; 3]);
    fix_checksum(&mut r, 32);
    r
}

const XSDT: u64 = 0x7fe_0000;
const RSDT: u64 = 0x7fe_1000;
const FACP: u64 = 0x7fe_2000;
const MADT: u64 = 0x7fe_3000;
const HPET: u64 = 0x7fe_4000;

fn entry(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut e = vec![kind, 2 + body.len() as u8];
    e.extend_from_slice(body);
    e
}

fn madt_body(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for e in entries {
        b.extend_from_slice(e);
    }
    b
}

fn standard_entries() -> Vec<Vec<u8>> {
    vec![
        // Local APIC: uid 0, id 0, enabled.
        entry(0, &[0, 0, 1, 0, 0, 0]),
        // Local APIC: uid 1, id 2, online capable only.
        entry(0, &[1, 2, 2, 0, 0, 0]),
        // I/O APIC id 3 at 0xfec00000, GSI base 0.
        entry(1, &[3, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]),
        // Interrupt source override: ISA IRQ 0 -> GSI 2, flags 0.
        entry(2, &[0, 0, 2, 0, 0, 0, 0, 0]),
        // Unknown type 0x7f with a 3-byte body: skipped.
        entry(0x7f, &[9, 9, 9]),
        // Local x2APIC: id 0x1_0000, enabled, uid 7.
        entry(9, &[0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 7, 0, 0, 0]),
    ]
}

/// Firmware image: RSDP v2 -> XSDT/RSDT -> FACP, MADT, HPET.
fn firmware(madt_entries: &[Vec<u8>]) -> (FakeMem, Rsdp) {
    let mut mem = FakeMem::new();
    let tables = [FACP, MADT, HPET];
    let xsdt_body: Vec<u8> = tables.iter().flat_map(|t| t.to_le_bytes()).collect();
    let rsdt_body: Vec<u8> = tables
        .iter()
        .flat_map(|t| (*t as u32).to_le_bytes())
        .collect();
    mem.put(XSDT, sdt(b"XSDT", &xsdt_body));
    mem.put(RSDT, sdt(b"RSDT", &rsdt_body));
    mem.put(FACP, sdt(b"FACP", &[0; 80]));
    mem.put(MADT, sdt(b"APIC", &madt_body(madt_entries)));
    mem.put(HPET, sdt(b"HPET", &[0; 20]));
    let rsdp = parse_rsdp(&rsdp_v2(RSDT as u32, XSDT)).unwrap();
    (mem, rsdp)
}

/// Rewrites the MADT (keeping its checksum right unless told otherwise).
fn set_madt(mem: &mut FakeMem, bytes: Vec<u8>) {
    *mem.region_mut(MADT) = bytes;
}

#[test]
fn rsdp_v1_and_v2_parse() {
    let r = parse_rsdp(&rsdp_v1(0x1234)).unwrap();
    assert_eq!(r.revision, 0);
    assert_eq!(&r.oem_id, b"CAPOS ");
    assert_eq!(r.rsdt_address, 0x1234);
    assert_eq!(r.xsdt_address, None);

    let r = parse_rsdp(&rsdp_v2(0x1234, 0x1_0000_0000)).unwrap();
    assert_eq!(r.revision, 2);
    assert_eq!(r.xsdt_address, Some(0x1_0000_0000));

    // A zero XSDT address in a v2 RSDP falls back to the RSDT.
    let r = parse_rsdp(&rsdp_v2(0x1234, 0)).unwrap();
    assert_eq!(r.xsdt_address, None);
}

#[test]
fn rsdp_rejections() {
    let mut bad_sig = rsdp_v1(0x1234);
    bad_sig[0] = b'X';
    fix_checksum(&mut bad_sig, 8);
    assert_eq!(parse_rsdp(&bad_sig), Err(AcpiError::BadRsdpSignature));

    let mut bad_sum = rsdp_v1(0x1234);
    bad_sum[16] ^= 0x40;
    assert_eq!(
        parse_rsdp(&bad_sum),
        Err(AcpiError::BadRsdpChecksum {
            extended: false,
            sum: 0x40
        })
    );

    let mut bad_ext = rsdp_v2(0x1234, 0x5000);
    bad_ext[24] ^= 0x01;
    let err = parse_rsdp(&bad_ext).unwrap_err();
    assert_eq!(
        err,
        AcpiError::BadRsdpChecksum {
            extended: true,
            sum: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "ACPI RSDP: bad extended checksum (sum 0x01)"
    );

    assert_eq!(
        parse_rsdp(&rsdp_v1(1)[..19]),
        Err(AcpiError::RsdpTooShort {
            len: 19,
            needed: 20
        })
    );
    // A v2 RSDP truncated to its v1 part.
    assert_eq!(
        parse_rsdp(&rsdp_v2(1, 2)[..20]),
        Err(AcpiError::RsdpTooShort {
            len: 20,
            needed: 36
        })
    );

    let mut long = rsdp_v2(1, 2);
    long[20] = 40;
    assert_eq!(
        parse_rsdp(&long),
        Err(AcpiError::BadRsdpLength {
            length: 40,
            available: 36
        })
    );

    assert_eq!(parse_rsdp(&rsdp_v1(0)), Err(AcpiError::NoRootTable));
}

#[test]
fn finds_tables_through_xsdt_and_rsdt() {
    let (mem, rsdp) = firmware(&standard_entries());
    assert_eq!(find_table(&mem, &rsdp, *b"APIC"), Ok(MADT));
    assert_eq!(find_table(&mem, &rsdp, *b"HPET"), Ok(HPET));
    assert_eq!(
        find_table(&mem, &rsdp, *b"MCFG"),
        Err(AcpiError::NotFound {
            signature: *b"MCFG"
        })
    );

    // ACPI 1.0: only the RSDT. Make the XSDT unreadable to prove it is unused.
    let mut mem = mem;
    mem.region_mut(XSDT).clear();
    let v1 = parse_rsdp(&rsdp_v1(RSDT as u32)).unwrap();
    assert_eq!(find_table(&mem, &v1, *b"APIC"), Ok(MADT));
}

#[test]
fn root_table_is_validated() {
    let (mut mem, rsdp) = firmware(&standard_entries());
    mem.region_mut(XSDT)[40] ^= 0x3c;
    let err = find_table(&mem, &rsdp, *b"APIC").unwrap_err();
    assert_eq!(
        err,
        AcpiError::BadChecksum {
            signature: *b"XSDT",
            phys: XSDT,
            sum: 0x3c
        }
    );
    assert_eq!(
        err.to_string(),
        "ACPI table XSDT at 0x7fe0000: bad checksum (sum 0x3c)"
    );

    // Length below the header.
    let (mut mem, rsdp) = firmware(&standard_entries());
    mem.region_mut(XSDT)[4..8].copy_from_slice(&20u32.to_le_bytes());
    assert!(matches!(
        find_table(&mem, &rsdp, *b"APIC"),
        Err(AcpiError::BadLength { length: 20, .. })
    ));

    // Length claiming more bytes than exist: the checksum read fails.
    let (mut mem, rsdp) = firmware(&standard_entries());
    mem.region_mut(XSDT)[4..8].copy_from_slice(&4000u32.to_le_bytes());
    assert!(matches!(
        find_table(&mem, &rsdp, *b"APIC"),
        Err(AcpiError::Unreadable { .. })
    ));

    // Absurd length: rejected before anything is read.
    let (mut mem, rsdp) = firmware(&standard_entries());
    mem.region_mut(XSDT)[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = find_table(&mem, &rsdp, *b"APIC").unwrap_err();
    assert_eq!(
        err.to_string(),
        "ACPI table XSDT at 0x7fe0000: length 4294967295 is outside 36..=4194304"
    );

    // Root pointer naming a different table.
    let (mem, _) = firmware(&standard_entries());
    let wrong = Rsdp {
        revision: 2,
        oem_id: *b"CAPOS ",
        rsdt_address: 0,
        xsdt_address: Some(FACP),
    };
    assert_eq!(
        find_table(&mem, &wrong, *b"APIC"),
        Err(AcpiError::BadSignature {
            phys: FACP,
            expected: *b"XSDT",
            found: *b"FACP"
        })
    );
}

#[test]
fn table_pointer_outside_memory() {
    let (mut mem, rsdp) = firmware(&standard_entries());
    let xsdt = mem.region_mut(XSDT);
    xsdt[36..44].copy_from_slice(&0xdead_b000u64.to_le_bytes());
    fix_checksum(xsdt, 9);
    let err = find_table(&mem, &rsdp, *b"APIC").unwrap_err();
    assert_eq!(err, AcpiError::Unreadable { phys: 0xdead_b000 });
    assert_eq!(
        err.to_string(),
        "ACPI: physical memory at 0xdeadb000 is not readable"
    );

    // A pointer that would wrap the address space is refused, not wrapped.
    let xsdt = mem.region_mut(XSDT);
    xsdt[36..44].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    fix_checksum(xsdt, 9);
    assert_eq!(
        find_table(&mem, &rsdp, *b"APIC"),
        Err(AcpiError::Unreadable { phys: u64::MAX - 1 })
    );
}

#[test]
fn matching_table_is_validated_but_others_are_not() {
    let (mut mem, rsdp) = firmware(&standard_entries());
    // Corrupt the FACP checksum: APIC lookup still works.
    mem.region_mut(FACP)[50] ^= 1;
    assert_eq!(find_table(&mem, &rsdp, *b"APIC"), Ok(MADT));
    assert_eq!(
        find_table(&mem, &rsdp, *b"FACP"),
        Err(AcpiError::BadChecksum {
            signature: *b"FACP",
            phys: FACP,
            sum: 1
        })
    );
}

#[test]
fn madt_parses_every_known_entry() {
    let (mem, rsdp) = firmware(&standard_entries());
    let phys = find_table(&mem, &rsdp, *b"APIC").unwrap();
    let madt = parse_madt(&mem, phys).unwrap();
    assert_eq!(madt.local_apic_address, 0xfee0_0000);
    assert_eq!(madt.flags, 1);
    assert!(madt.has_legacy_pics());
    assert_eq!(
        madt.cpus,
        vec![
            MadtCpu {
                apic_id: 0,
                acpi_uid: 0,
                enabled: true,
                online_capable: false,
                x2apic_entry: false
            },
            MadtCpu {
                apic_id: 2,
                acpi_uid: 1,
                enabled: false,
                online_capable: true,
                x2apic_entry: false
            },
            MadtCpu {
                apic_id: 0x1_0000,
                acpi_uid: 7,
                enabled: true,
                online_capable: false,
                x2apic_entry: true
            },
        ]
    );
    assert!(madt.cpus.iter().all(MadtCpu::is_usable));
    assert_eq!(
        madt.io_apics,
        vec![MadtIoApic {
            id: 3,
            address: 0xfec0_0000,
            gsi_base: 0
        }]
    );
    assert_eq!(
        madt.irq_overrides,
        vec![MadtIrqOverride {
            bus: 0,
            source: 0,
            gsi: 2,
            flags: 0
        }]
    );
}

#[test]
fn madt_address_override_wins() {
    let mut entries = standard_entries();
    let mut body = vec![0, 0];
    body.extend_from_slice(&0x1_fee0_0000u64.to_le_bytes());
    entries.push(entry(5, &body));
    let (mem, _) = firmware(&entries);
    assert_eq!(
        parse_madt(&mem, MADT).unwrap().local_apic_address,
        0x1_fee0_0000
    );
}

#[test]
fn madt_bad_checksum() {
    let (mut mem, _) = firmware(&standard_entries());
    mem.region_mut(MADT)[36] ^= 0x3c;
    let err = parse_madt(&mem, MADT).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ACPI table APIC at 0x7fe3000: bad checksum (sum 0x3c)"
    );
}

#[test]
fn madt_truncated_length() {
    let (mut mem, _) = firmware(&standard_entries());
    // Header claims only the SDT header: too short for the MADT fields.
    let mut t = mem.region_mut(MADT)[..36].to_vec();
    t[4..8].copy_from_slice(&36u32.to_le_bytes());
    fix_checksum(&mut t, 9);
    set_madt(&mut mem, t);
    assert_eq!(
        parse_madt(&mem, MADT),
        Err(AcpiError::BadLength {
            signature: *b"APIC",
            phys: MADT,
            length: 36,
            min: 44,
            max: MAX_TABLE_LEN
        })
    );

    // Header claims more bytes than the firmware provided.
    let (mut mem, _) = firmware(&standard_entries());
    let t = mem.region_mut(MADT);
    let len = t.len() as u32 + 16;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(t, 9);
    assert!(matches!(
        parse_madt(&mem, MADT),
        Err(AcpiError::Unreadable { phys: MADT })
    ));
}

#[test]
fn madt_wrong_signature() {
    let (mem, _) = firmware(&standard_entries());
    assert_eq!(
        parse_madt(&mem, HPET),
        Err(AcpiError::BadSignature {
            phys: HPET,
            expected: *b"APIC",
            found: *b"HPET"
        })
    );
}

#[test]
fn madt_zero_length_entry() {
    let mut entries = standard_entries();
    entries.insert(1, vec![0x7f, 0]);
    let (mem, _) = firmware(&entries);
    let err = parse_madt(&mem, MADT).unwrap_err();
    assert_eq!(
        err,
        AcpiError::BadMadtEntry {
            phys: MADT,
            offset: 52,
            entry_type: 0x7f,
            length: 0,
            problem: MadtEntryProblem::LengthBelowHeader
        }
    );
    assert_eq!(
        err.to_string(),
        "ACPI table APIC at 0x7fe3000: entry at offset 52 (type 127, length 0) is shorter than its 2-byte header"
    );
}

#[test]
fn madt_overrunning_entry() {
    let mut entries = standard_entries();
    entries.push(vec![0, 8, 1, 1]); // claims 8 bytes, table ends after 4
    let (mem, _) = firmware(&entries);
    assert!(matches!(
        parse_madt(&mem, MADT),
        Err(AcpiError::BadMadtEntry {
            entry_type: 0,
            length: 8,
            problem: MadtEntryProblem::Overruns,
            ..
        })
    ));

    // A single dangling byte after the last entry.
    let mut entries = standard_entries();
    entries.push(vec![0]);
    let (mem, _) = firmware(&entries);
    assert!(matches!(
        parse_madt(&mem, MADT),
        Err(AcpiError::BadMadtEntry {
            problem: MadtEntryProblem::Overruns,
            ..
        })
    ));
}

#[test]
fn madt_entry_too_short_for_type() {
    let mut entries = standard_entries();
    entries.push(entry(9, &[0, 0, 1, 0, 0, 0])); // x2APIC entries need 16 bytes
    let (mem, _) = firmware(&entries);
    assert!(matches!(
        parse_madt(&mem, MADT),
        Err(AcpiError::BadMadtEntry {
            entry_type: 9,
            length: 8,
            problem: MadtEntryProblem::TooShortForType,
            ..
        })
    ));
}

#[test]
fn signatures_display_safely() {
    let err = AcpiError::NotFound {
        signature: [0, 1, b'A', 0xff],
    };
    assert_eq!(
        err.to_string(),
        "ACPI table 0x000141ff is not listed in the RSDT/XSDT"
    );
}
