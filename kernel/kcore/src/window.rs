//! Placement of mappings in a window of virtual address space.
//!
//! A [`Window`] keeps non-overlapping page ranges, each with a value, inside
//! `[base, end)`. [`Window::place`] finds room for a new range (at a hint if
//! that range is free, else first fit from a cursor that only moves up, so
//! freed ranges below it are reused only through hints or after the cursor
//! has reached the end and the search wraps).

use alloc::collections::BTreeMap;

/// Size of a page.
pub const PAGE: u64 = 4096;

/// Page ranges in `[base, end)`, by start address.
#[derive(Debug)]
pub struct Window<T> {
    base: u64,
    end: u64,
    next: u64,
    ranges: BTreeMap<u64, (u64, T)>,
}

impl<T> Window<T> {
    /// An empty window over `[base, end)` (both page aligned).
    pub fn new(base: u64, end: u64) -> Self {
        debug_assert!(base.is_multiple_of(PAGE) && end.is_multiple_of(PAGE) && base <= end);
        Window {
            base,
            end,
            next: base,
            ranges: BTreeMap::new(),
        }
    }

    /// Whether `[start, start + len)` overlaps a range.
    fn overlaps(&self, start: u64, len: u64) -> bool {
        let end = start + len;
        self.ranges
            .range(..end)
            .next_back()
            .is_some_and(|(&s, (pages, _))| s + pages * PAGE > start)
    }

    /// Whether `pages` pages at `at` are inside the window and free.
    fn fits(&self, at: u64, pages: u64) -> bool {
        let Some(len) = pages.checked_mul(PAGE) else {
            return false;
        };
        at.is_multiple_of(PAGE)
            && at >= self.base
            && at.checked_add(len).is_some_and(|e| e <= self.end)
            && !self.overlaps(at, len)
    }

    /// First fit for `pages` pages from `from` upwards.
    fn first_fit(&self, from: u64, pages: u64) -> Option<u64> {
        let len = pages.checked_mul(PAGE)?;
        let mut at = from;
        loop {
            if at.checked_add(len)? > self.end {
                return None;
            }
            if self.fits(at, pages) {
                return Some(at);
            }
            // Skip past the range in the way.
            let (&s, (p, _)) = self.ranges.range(..at + len).next_back()?;
            at = s + p * PAGE;
        }
    }

    /// Where `pages` (non-zero) pages would go: at `hint` if that range is
    /// free and inside the window, else the first fit from the cursor,
    /// else the first fit from the base.
    pub fn place(&self, hint: u64, pages: u64) -> Option<u64> {
        if pages == 0 {
            return None;
        }
        if hint != 0 && self.fits(hint, pages) {
            return Some(hint);
        }
        self.first_fit(self.next, pages)
            .or_else(|| self.first_fit(self.base, pages))
    }

    /// Records `pages` pages at `start` with `value`; `start` must come
    /// from [`Window::place`] with the window unchanged since.
    pub fn insert(&mut self, start: u64, pages: u64, value: T) {
        debug_assert!(self.fits(start, pages));
        self.ranges.insert(start, (pages, value));
        self.next = self.next.max(start + pages * PAGE);
    }

    /// The range starting at `start`: its page count and value.
    pub fn get(&self, start: u64) -> Option<(u64, &T)> {
        self.ranges.get(&start).map(|(p, v)| (*p, v))
    }

    /// Removes the range starting at `start` and returns its value.
    pub fn remove(&mut self, start: u64) -> Option<T> {
        self.ranges.remove(&start).map(|(_, v)| v)
    }

    /// Removes every range.
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are no ranges.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Every range as `(start, pages)`, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, (p, _))| (s, *p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x10_0000;

    #[test]
    fn hints_are_taken_when_free_and_refused_otherwise() {
        let mut w = Window::new(BASE, BASE + 16 * PAGE);
        assert_eq!(w.place(BASE + 4 * PAGE, 2), Some(BASE + 4 * PAGE));
        w.insert(BASE + 4 * PAGE, 2, 'a');
        // Overlapping, misaligned and outside hints fall back to the cursor.
        assert_eq!(w.place(BASE + 5 * PAGE, 1), Some(BASE + 6 * PAGE));
        assert_eq!(w.place(BASE + 7, 1), Some(BASE + 6 * PAGE));
        assert_eq!(w.place(BASE - PAGE, 1), Some(BASE + 6 * PAGE));
        // Below the cursor is reached by hint.
        assert_eq!(w.place(BASE, 4), Some(BASE));
        assert_eq!(w.place(0, 0), None);
    }

    #[test]
    fn first_fit_skips_ranges_and_wraps_to_the_base() {
        let mut w = Window::new(BASE, BASE + 8 * PAGE);
        for (i, c) in ['a', 'b', 'c', 'd'].into_iter().enumerate() {
            let at = w.place(0, 2).unwrap();
            assert_eq!(at, BASE + 2 * i as u64 * PAGE);
            w.insert(at, 2, c);
        }
        assert_eq!(w.place(0, 1), None);
        assert_eq!(w.remove(BASE + 2 * PAGE), Some('b'));
        // The cursor is at the end: the search wraps and finds the hole.
        assert_eq!(w.place(0, 2), Some(BASE + 2 * PAGE));
        assert_eq!(w.place(0, 3), None);
        assert_eq!(w.get(BASE), Some((2, &'a')));
        assert_eq!(w.len(), 3);
    }
}
