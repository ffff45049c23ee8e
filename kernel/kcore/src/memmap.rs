//! Normalising a firmware memory map into sorted, disjoint usable ranges,
//! and choosing the low page the AP trampoline is copied to.

use crate::frame::{FRAME_SIZE, LOW_MEMORY_LIMIT};
use crate::range::PhysRange;
use alloc::vec::Vec;

/// Where the AP trampoline goes when that page is free (the traditional
/// choice; any page in `0x1000..0x100000` works, since the startup IPI names
/// the page by number).
pub const PREFERRED_TRAMPOLINE: u64 = 0x8000;

/// Chooses the page the AP trampoline is copied to: a 4 KiB page below
/// 1 MiB (a startup IPI can only name those), never page 0, entirely inside
/// `usable` RAM and overlapping none of `taken` (the kernel image, the boot
/// information and the accepted boot modules, wherever the loader put
/// them). [`PREFERRED_TRAMPOLINE`] if it qualifies, else the lowest page
/// that does; `None` if no page does (the kernel then runs on the boot CPU
/// alone).
pub fn trampoline_page(usable: &[PhysRange], taken: &[PhysRange]) -> Option<u64> {
    let fits = |page: u64| {
        let r = PhysRange::from_start_len(page, FRAME_SIZE);
        covered(&r, usable) && !taken.iter().any(|t| t.overlaps(&r))
    };
    if fits(PREFERRED_TRAMPOLINE) {
        return Some(PREFERRED_TRAMPOLINE);
    }
    (1..LOW_MEMORY_LIMIT / FRAME_SIZE)
        .map(|n| n * FRAME_SIZE)
        .find(|&page| fits(page))
}

/// Turns raw memory-map entries `(range, usable)` into the sorted, merged,
/// non-empty list of ranges that are usable and not covered by any reserved
/// entry. Reserved wins wherever the two overlap, whatever the entry order.
///
/// `out` is cleared first. Ranges are byte-exact; frame rounding is left to
/// [`crate::frame::FrameBitmap`].
pub fn usable_ranges(entries: &[(PhysRange, bool)], out: &mut Vec<PhysRange>) {
    out.clear();
    out.extend(
        entries
            .iter()
            .filter(|(r, usable)| *usable && !r.is_empty())
            .map(|(r, _)| *r),
    );
    sort_and_merge(out);
    for (reserved, _) in entries
        .iter()
        .filter(|(r, usable)| !*usable && !r.is_empty())
    {
        subtract(out, reserved);
    }
}

/// True when every byte of `r` lies in the union of `cover` (which may be
/// unsorted, overlapping or touching).
pub fn covered(r: &PhysRange, cover: &[PhysRange]) -> bool {
    let mut at = r.start;
    while at < r.end {
        match cover.iter().filter(|c| c.contains(at)).map(|c| c.end).max() {
            Some(end) => at = end,
            None => return false,
        }
    }
    true
}

/// Sorts `ranges` by start and merges ranges that overlap or touch.
pub fn sort_and_merge(ranges: &mut Vec<PhysRange>) {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_unstable_by_key(|r| r.start);
    let mut merged: usize = 0;
    for i in 0..ranges.len() {
        let r = ranges[i];
        if merged > 0 && r.start <= ranges[merged - 1].end {
            let last = &mut ranges[merged - 1];
            last.end = last.end.max(r.end);
        } else {
            ranges[merged] = r;
            merged += 1;
        }
    }
    ranges.truncate(merged);
}

/// Removes `hole` from every range in the sorted, disjoint list `ranges`,
/// keeping it sorted and disjoint.
pub fn subtract(ranges: &mut Vec<PhysRange>, hole: &PhysRange) {
    if hole.is_empty() {
        return;
    }
    let mut i = 0;
    while i < ranges.len() {
        let r = ranges[i];
        if !r.overlaps(hole) {
            i += 1;
            continue;
        }
        let left = PhysRange::new(r.start, hole.start.min(r.end));
        let right = PhysRange::new(hole.end.max(r.start), r.end);
        match (left.is_empty(), right.is_empty()) {
            (true, true) => {
                ranges.remove(i);
            }
            (false, true) => {
                ranges[i] = left;
                i += 1;
            }
            (true, false) => {
                ranges[i] = right;
                i += 1;
            }
            (false, false) => {
                ranges[i] = left;
                ranges.insert(i + 1, right);
                i += 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn r(s: u64, e: u64) -> PhysRange {
        PhysRange::new(s, e)
    }

    #[test]
    fn sorts_merges_and_drops_empty() {
        let mut out = Vec::new();
        usable_ranges(
            &[
                (r(0x5000, 0x6000), true),
                (r(0x1000, 0x2000), true),
                (r(0x2000, 0x3000), true),
                (r(0x7000, 0x7000), true),
                (r(0x1800, 0x2800), true),
            ],
            &mut out,
        );
        assert_eq!(out, vec![r(0x1000, 0x3000), r(0x5000, 0x6000)]);
    }

    #[test]
    fn reserved_wins_regardless_of_order() {
        let mut out = vec![r(1, 2)];
        usable_ranges(
            &[
                (r(0x3000, 0x4000), false),
                (r(0x0, 0x10000), true),
                (r(0x8000, 0x20000), false),
                (r(0x0, 0x1000), false),
            ],
            &mut out,
        );
        assert_eq!(out, vec![r(0x1000, 0x3000), r(0x4000, 0x8000)]);
    }

    #[test]
    fn trampoline_prefers_0x8000_then_the_lowest_free_page() {
        let low = [r(0, 0x9_f000)];
        assert_eq!(trampoline_page(&low, &[]), Some(0x8000));
        // A module over 0x8000 (as GRUB's EFI loader may place one).
        assert_eq!(
            trampoline_page(&low, &[r(0x1000, 0x3000), r(0x7fff, 0x26690)]),
            Some(0x3000)
        );
        // Page 0 is never chosen, and a page must be whole.
        assert_eq!(trampoline_page(&[r(0, 0x1800)], &[]), None);
        assert_eq!(trampoline_page(&[r(0x2001, 0x3fff)], &[]), None);
        // Nothing free below 1 MiB.
        assert_eq!(
            trampoline_page(
                &[r(0, 0x9_f000), r(0x10_0000, 0x200_0000)],
                &[r(0x1000, 0x9_f000)]
            ),
            None
        );
    }

    #[test]
    fn fully_reserved_map_is_empty() {
        let mut out = Vec::new();
        usable_ranges(
            &[(r(0x1000, 0x2000), true), (r(0, 0x9000), false)],
            &mut out,
        );
        assert!(out.is_empty());
    }
}
