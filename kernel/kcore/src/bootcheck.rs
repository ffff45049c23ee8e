//! Sanity checks on the boot modules GRUB hands the kernel.
//!
//! Module addresses come from the multiboot2 information block, which the
//! kernel treats as hostile until checked: a module must not overlap the kernel
//! image, the information block itself, the first page of memory or another
//! module, and it must lie entirely inside usable RAM.
//!
//! Modules may lie below 1 MiB: GRUB's EFI loader puts them wherever the
//! firmware has free memory, often in low memory. The frame allocator never
//! hands out low memory, and the AP trampoline is placed on a low page no
//! module uses ([`crate::memmap::trampoline_page`]).

use crate::memmap::covered;
use crate::range::PhysRange;
use alloc::vec::Vec;
use core::fmt;

/// One boot module as described by the bootloader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModuleInfo<'a> {
    /// The module string (GRUB `module2` arguments).
    pub name: &'a str,
    /// Physical bytes the module occupies.
    pub range: PhysRange,
}

/// Verdict for one module.
///
/// When several problems apply, the first of these is reported:
/// `EndsBeforeStart`, `Empty`, `FirstPage`, `OverlapsKernel`,
/// `OverlapsBootInfo`, `OverlapsModule`, `OutsideUsableMemory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleVerdict {
    /// The module may be used.
    Ok,
    /// The module's end address lies below its start (a wrapped range).
    EndsBeforeStart,
    /// The module has no bytes (`end == start`).
    Empty,
    /// The module reaches into the first page of physical memory (page 0:
    /// the real-mode interrupt table, never a module's place).
    FirstPage,
    /// The module overlaps the kernel image.
    OverlapsKernel,
    /// The module overlaps the multiboot information block.
    OverlapsBootInfo,
    /// The module overlaps module number `other` (the lowest such index).
    OverlapsModule {
        /// Index of the other module in the slice passed to [`check_modules`].
        other: usize,
    },
    /// Some byte of the module is not inside a usable memory range.
    OutsideUsableMemory,
}

impl ModuleVerdict {
    /// True for [`ModuleVerdict::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, ModuleVerdict::Ok)
    }
}

impl fmt::Display for ModuleVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleVerdict::Ok => f.write_str("ok"),
            ModuleVerdict::EndsBeforeStart => f.write_str("module ends before it starts"),
            ModuleVerdict::Empty => f.write_str("module is empty"),
            ModuleVerdict::FirstPage => {
                write!(
                    f,
                    "module reaches into the first page (below {FIRST_PAGE_END:#x})"
                )
            }
            ModuleVerdict::OverlapsKernel => f.write_str("module overlaps the kernel image"),
            ModuleVerdict::OverlapsBootInfo => {
                f.write_str("module overlaps the multiboot information block")
            }
            ModuleVerdict::OverlapsModule { other } => {
                write!(f, "module overlaps module {other}")
            }
            ModuleVerdict::OutsideUsableMemory => {
                f.write_str("module is not entirely inside usable memory")
            }
        }
    }
}

/// End of the first page of physical memory, which no module may touch.
pub const FIRST_PAGE_END: u64 = 0x1000;

/// Checks each module against the kernel image, the multiboot info block, the
/// other modules, the first page and the usable memory map; the kernel drops a
/// rejected module and reports it. Returns one verdict per module, in order.
///
/// Overlap between two modules rejects both. `usable` may be unsorted and its
/// ranges may touch or overlap; a module spanning adjacent usable ranges is
/// accepted.
pub fn check_modules(
    kernel: PhysRange,
    boot_info: PhysRange,
    usable: &[PhysRange],
    modules: &[ModuleInfo],
) -> Vec<ModuleVerdict> {
    let first_page = PhysRange::new(0, FIRST_PAGE_END);
    modules
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let r = m.range;
            if r.end < r.start {
                ModuleVerdict::EndsBeforeStart
            } else if r.is_empty() {
                ModuleVerdict::Empty
            } else if r.overlaps(&first_page) {
                ModuleVerdict::FirstPage
            } else if r.overlaps(&kernel) {
                ModuleVerdict::OverlapsKernel
            } else if r.overlaps(&boot_info) {
                ModuleVerdict::OverlapsBootInfo
            } else if let Some(other) = modules
                .iter()
                .enumerate()
                .position(|(j, o)| j != i && o.range.overlaps(&r))
            {
                ModuleVerdict::OverlapsModule { other }
            } else if !covered(&r, usable) {
                ModuleVerdict::OutsideUsableMemory
            } else {
                ModuleVerdict::Ok
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    const MIB: u64 = 0x10_0000;

    fn m(name: &str, s: u64, e: u64) -> ModuleInfo<'_> {
        ModuleInfo {
            name,
            range: PhysRange::new(s, e),
        }
    }

    fn check(mods: &[ModuleInfo]) -> Vec<ModuleVerdict> {
        let kernel = PhysRange::new(MIB, 3 * MIB);
        let info = PhysRange::new(8 * MIB, 8 * MIB + 0x1000);
        let usable = [
            PhysRange::new(0, 0x9_f000),
            PhysRange::new(MIB, 16 * MIB),
            PhysRange::new(16 * MIB, 32 * MIB),
        ];
        check_modules(kernel, info, &usable, mods)
    }

    #[test]
    fn verdicts() {
        use ModuleVerdict::*;
        let v = check(&[
            m("ok", 4 * MIB, 5 * MIB),
            m("empty", 5 * MIB, 5 * MIB),
            m("kernel", 2 * MIB, 4 * MIB),
            m("info", 7 * MIB, 8 * MIB + 1),
            m("a", 10 * MIB, 11 * MIB),
            m("b", 10 * MIB + 0x800, 10 * MIB + 0x900),
            m("spans", 15 * MIB, 17 * MIB),
            m("past", 31 * MIB, 33 * MIB),
            m("low", 0x9_0000, 0x9_1000),
            m("inverted", 6 * MIB, 5 * MIB),
            m("page0", 0, 0x800),
            m("page0-tail", 0xfff, 0x1000),
            m("after-page0", 0x1001, 0x3000),
            m("low-past-ram", 0x9_e000, 0xa_0000),
            m("wrapped", u64::from(u32::MAX), 0x10),
        ]);
        assert_eq!(
            v,
            vec![
                Ok,
                Empty,
                OverlapsKernel,
                OverlapsBootInfo,
                OverlapsModule { other: 5 },
                OverlapsModule { other: 4 },
                Ok,
                OutsideUsableMemory,
                Ok,
                EndsBeforeStart,
                FirstPage,
                FirstPage,
                Ok,
                OutsideUsableMemory,
                EndsBeforeStart,
            ]
        );
    }

    #[test]
    fn messages_are_words() {
        assert_eq!(
            ModuleVerdict::OverlapsModule { other: 3 }.to_string(),
            "module overlaps module 3"
        );
        assert_eq!(
            ModuleVerdict::FirstPage.to_string(),
            "module reaches into the first page (below 0x1000)"
        );
        assert_eq!(
            ModuleVerdict::EndsBeforeStart.to_string(),
            "module ends before it starts"
        );
        assert!(ModuleVerdict::Ok.is_ok());
        assert!(!ModuleVerdict::Empty.is_ok());
    }
}
