//! Half-open physical address ranges and the small amount of arithmetic on them.

use core::fmt;

/// Half-open physical address range `[start, end)`.
///
/// A range with `end <= start` is empty; no method treats an inverted range as
/// wrapping around the address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    /// First byte in the range.
    pub start: u64,
    /// First byte after the range.
    pub end: u64,
}

impl PhysRange {
    /// The range `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// The range of `len` bytes starting at `start`, clamped at the top of the
    /// address space instead of wrapping.
    pub const fn from_start_len(start: u64, len: u64) -> Self {
        Self {
            start,
            end: start.saturating_add(len),
        }
    }

    /// Number of bytes in the range (zero when empty or inverted).
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when the range holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// True when both ranges are non-empty and share at least one byte.
    pub fn overlaps(&self, other: &PhysRange) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }

    /// True when `addr` lies inside the range.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// True when every byte of `other` lies inside `self` (an empty `other`
    /// is contained in anything).
    pub fn contains_range(&self, other: &PhysRange) -> bool {
        other.is_empty() || (self.start <= other.start && other.end <= self.end)
    }

    /// The bytes shared by both ranges, if any.
    pub fn intersection(&self, other: &PhysRange) -> Option<PhysRange> {
        let r = PhysRange::new(self.start.max(other.start), self.end.min(other.end));
        (!r.is_empty()).then_some(r)
    }

    /// The largest range inside `self` whose ends are multiples of `align`
    /// (a power of two). May be empty.
    pub fn align_inward(&self, align: u64) -> PhysRange {
        debug_assert!(align.is_power_of_two());
        let mask = align - 1;
        let start = match self.start.checked_add(mask) {
            Some(s) => s & !mask,
            None => return PhysRange::new(self.end, self.end),
        };
        PhysRange::new(start, self.end & !mask)
    }

    /// The smallest range covering `self` whose ends are multiples of `align`
    /// (a power of two). An end that would pass the top of the address space
    /// is clamped to the last aligned address. Empty ranges stay empty.
    pub fn align_outward(&self, align: u64) -> PhysRange {
        debug_assert!(align.is_power_of_two());
        if self.is_empty() {
            return *self;
        }
        let mask = align - 1;
        let end = match self.end.checked_add(mask) {
            Some(e) => e & !mask,
            None => !mask,
        };
        PhysRange::new(self.start & !mask, end)
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}, {:#x})", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn len_and_empty() {
        assert_eq!(PhysRange::new(0x1000, 0x3000).len(), 0x2000);
        assert!(PhysRange::new(5, 5).is_empty());
        assert!(PhysRange::new(9, 5).is_empty());
        assert_eq!(PhysRange::new(9, 5).len(), 0);
        assert_eq!(PhysRange::from_start_len(u64::MAX - 1, 10).end, u64::MAX);
    }

    #[test]
    fn overlap_is_half_open() {
        let a = PhysRange::new(0x1000, 0x2000);
        assert!(a.overlaps(&PhysRange::new(0x1fff, 0x3000)));
        assert!(!a.overlaps(&PhysRange::new(0x2000, 0x3000)));
        assert!(!a.overlaps(&PhysRange::new(0x0, 0x1000)));
        assert!(!a.overlaps(&PhysRange::new(0x1800, 0x1800)));
        assert!(a.contains(0x1000));
        assert!(!a.contains(0x2000));
    }

    #[test]
    fn containment_and_intersection() {
        let a = PhysRange::new(0x1000, 0x4000);
        assert!(a.contains_range(&PhysRange::new(0x1000, 0x4000)));
        assert!(!a.contains_range(&PhysRange::new(0x1000, 0x4001)));
        assert!(a.contains_range(&PhysRange::new(0x9000, 0x9000)));
        assert_eq!(
            a.intersection(&PhysRange::new(0x3000, 0x8000)),
            Some(PhysRange::new(0x3000, 0x4000))
        );
        assert_eq!(a.intersection(&PhysRange::new(0x4000, 0x8000)), None);
    }

    #[test]
    fn alignment() {
        let r = PhysRange::new(0x1001, 0x3fff);
        assert_eq!(r.align_inward(0x1000), PhysRange::new(0x2000, 0x3000));
        assert_eq!(r.align_outward(0x1000), PhysRange::new(0x1000, 0x4000));
        assert!(PhysRange::new(0x1001, 0x1fff)
            .align_inward(0x1000)
            .is_empty());
        assert!(PhysRange::new(u64::MAX - 5, u64::MAX)
            .align_inward(0x1000)
            .is_empty());
        assert_eq!(
            PhysRange::new(u64::MAX - 5, u64::MAX).align_outward(0x1000),
            PhysRange::new(!0xfff, !0xfff)
        );
        assert_eq!(format!("{}", PhysRange::new(1, 2)), "[0x1, 0x2)");
    }
}
