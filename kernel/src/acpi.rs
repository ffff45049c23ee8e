//! ACPI glue: the kernel side of `capos_kcore::acpi`, reading tables
//! through the direct map.

use crate::mem::phys_to_virt;
use capos_kcore::acpi::{self, AcpiError, Madt, PhysMemory};

/// Physical memory as the direct map shows it, refusing addresses beyond the
/// mapped end.
struct DirectMap {
    end: u64,
}

impl PhysMemory for DirectMap {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), AcpiError> {
        let len = buf.len() as u64;
        if phys.checked_add(len).is_none_or(|e| e > self.end) {
            return Err(AcpiError::Unreadable { phys });
        }
        // SAFETY: [phys, phys + len) lies below the end of the direct map,
        // which maps all of it readable; firmware tables are not written by
        // anyone while the kernel reads them.
        unsafe {
            core::ptr::copy_nonoverlapping(
                phys_to_virt(phys) as *const u8,
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
        Ok(())
    }
}

/// Finds and parses the MADT from the RSDP bytes the loader passed.
pub fn read_madt(rsdp_bytes: &[u8], direct_map_end: u64) -> Result<Madt, AcpiError> {
    let mem = DirectMap {
        end: direct_map_end,
    };
    let rsdp = acpi::parse_rsdp(rsdp_bytes)?;
    let phys = acpi::find_table(&mem, &rsdp, *b"APIC")?;
    acpi::parse_madt(&mem, phys)
}
