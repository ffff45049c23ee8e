//! What the kernel keeps from the multiboot2 information: the memory map,
//! the modules, the command line and the ACPI RSDP.
//!
//! Everything is copied into kernel-owned values while the information block
//! is still mapped, and every field is treated as hostile: a missing memory
//! map stops boot with a reason, a bad module is dropped with a message.

use crate::mem::phys_to_virt;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use capos_kcore::range::PhysRange;
use multiboot2::{BootInformation, BootInformationHeader, MemoryAreaType};

/// One region of the firmware memory map.
#[derive(Clone, Copy, Debug)]
pub struct MemoryRegion {
    /// The physical range.
    pub range: PhysRange,
    /// True for RAM the kernel may use.
    pub usable: bool,
}

/// A boot module GRUB loaded (`module2 <file> <name>`).
#[derive(Clone, Debug)]
pub struct Module {
    /// The module string, used as its name.
    pub name: String,
    /// Where GRUB put it.
    pub range: PhysRange,
}

/// The kernel's copy of the boot information.
pub struct BootInfo {
    /// Physical range of the multiboot2 information block itself.
    pub info_range: PhysRange,
    /// The firmware memory map, in firmware order.
    pub memory: Vec<MemoryRegion>,
    /// Modules, in load order (unchecked: see `capos_kcore::bootcheck`).
    pub modules: Vec<Module>,
    /// Kernel command line.
    pub cmdline: String,
    /// Raw RSDP bytes (v2 if present, else v1).
    pub rsdp: Option<Vec<u8>>,
    /// Boot loader name, for the log.
    pub loader: String,
}

/// Why the boot information cannot be used.
#[derive(Debug)]
pub enum BootInfoError {
    /// The information block is misaligned, too small or malformed.
    Unreadable,
    /// The loader gave no memory map at all.
    NoMemoryMap,
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInfoError::Unreadable => f.write_str("the multiboot2 information block is malformed"),
            BootInfoError::NoMemoryMap => {
                f.write_str("the loader passed no memory map (multiboot2 tag 6); the kernel cannot know which memory is RAM")
            }
        }
    }
}

/// Copies what the kernel needs out of the multiboot2 information at
/// physical address `phys` (below 4 GiB, so the early direct map covers it).
/// `drop_memory_map` makes the memory map look absent (an injected fault).
pub fn parse(phys: u32, drop_memory_map: bool) -> Result<BootInfo, BootInfoError> {
    let ptr = phys_to_virt(u64::from(phys)) as *const BootInformationHeader;
    // SAFETY: the loader passed this address in EBX; the early page tables
    // map all of 0..4 GiB at the direct-map offset, and `load` checks the
    // alignment and the size fields before reading tags.
    let info = unsafe { BootInformation::load(ptr) }.map_err(|_| BootInfoError::Unreadable)?;
    let info_range = PhysRange::from_start_len(u64::from(phys), info.total_size() as u64);

    let mut memory = Vec::new();
    if let Some(map) = info.memory_map_tag().filter(|_| !drop_memory_map) {
        for area in map.memory_areas() {
            let usable = area.typ() == MemoryAreaType::Available;
            let end = area.start_address().saturating_add(area.size());
            memory.push(MemoryRegion {
                range: PhysRange::new(area.start_address(), end),
                usable,
            });
        }
    }
    if memory.is_empty() {
        return Err(BootInfoError::NoMemoryMap);
    }

    let modules = info
        .module_tags()
        .map(|m| Module {
            name: m.cmdline().unwrap_or("<unnamed>").to_string(),
            range: PhysRange::new(u64::from(m.start_address()), u64::from(m.end_address())),
        })
        .collect();

    let cmdline = info
        .command_line_tag()
        .and_then(|t| t.cmdline().ok())
        .unwrap_or("")
        .to_string();
    let loader = info
        .boot_loader_name_tag()
        .and_then(|t| t.name().ok())
        .unwrap_or("unknown loader")
        .to_string();

    let rsdp = info
        .rsdp_v2_tag()
        .map(tag_payload)
        .or_else(|| info.rsdp_v1_tag().map(tag_payload));

    Ok(BootInfo {
        info_range,
        memory,
        modules,
        cmdline,
        rsdp,
        loader,
    })
}

/// The bytes of a tag after its 8-byte header (the RSDP as GRUB copied it).
fn tag_payload<T: ?Sized>(tag: &T) -> Vec<u8> {
    let size = core::mem::size_of_val(tag);
    // SAFETY: `tag` is a tag inside the information block; `size_of_val`
    // covers exactly its bytes, header included, all of which are mapped.
    let bytes = unsafe { core::slice::from_raw_parts(tag as *const T as *const u8, size) };
    bytes.get(8..).unwrap_or(&[]).to_vec()
}

/// Reads only the command line (so options such as `inject=` are known
/// before the rest of the information is interpreted). Empty if unreadable.
pub fn cmdline(phys: u32) -> String {
    let ptr = phys_to_virt(u64::from(phys)) as *const BootInformationHeader;
    // SAFETY: as in `parse`.
    match unsafe { BootInformation::load(ptr) } {
        Ok(info) => info
            .command_line_tag()
            .and_then(|t| t.cmdline().ok())
            .unwrap_or("")
            .to_string(),
        Err(_) => String::new(),
    }
}
