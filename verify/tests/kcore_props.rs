//! quickcheck properties for capos-kcore: frame bitmap, address windows, boot module checks, memory map, clock, command line and parsers.

use capos_kcore::acpi::{self, AcpiError, PhysMemory};
use capos_kcore::bootcheck::{check_modules, ModuleInfo, ModuleVerdict};
use capos_kcore::clock::{self, Scale, NS_PER_SEC};
use capos_kcore::cmdline::{self, BootOptions, FaultKind, Injections, LogLevel, TestMode};
use capos_kcore::frame::{FrameBitmap, FreeError, FRAME_SIZE, LOW_MEMORY_LIMIT};
use capos_kcore::memmap;
use capos_kcore::range::PhysRange;
use capos_kcore::window::{Window, PAGE};
use quickcheck::{quickcheck, Arbitrary, Gen, QuickCheck, TestResult};
use std::collections::BTreeSet;

fn below(g: &mut Gen, n: u64) -> u64 {
    u64::arbitrary(g) % n
}

// ---------------------------------------------------------------------------
// Frame bitmap
// ---------------------------------------------------------------------------

/// A physical memory layout: limit, usable map, and reserved ranges standing
/// for the kernel image, boot modules and the boot information block.
#[derive(Clone, Debug)]
struct Layout {
    limit: u64,
    usable: Vec<PhysRange>,
    reserved: Vec<PhysRange>,
}

/// A byte range with unaligned ends somewhere in `[0, span)`.
fn any_range(g: &mut Gen, span: u64) -> PhysRange {
    let start = below(g, span);
    let len = below(g, span / 4 + 1);
    PhysRange::new(start, start.saturating_add(len))
}

impl Arbitrary for Layout {
    fn arbitrary(g: &mut Gen) -> Self {
        // 0..8 MiB, often not frame aligned, spanning low memory.
        let limit = below(g, 2048 * FRAME_SIZE);
        // Ranges may reach past the limit.
        let span = limit + limit / 4 + FRAME_SIZE;
        let usable = (0..1 + below(g, 6)).map(|_| any_range(g, span)).collect();
        let reserved = (0..below(g, 6)).map(|_| any_range(g, span)).collect();
        Layout {
            limit,
            usable,
            reserved,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.clone();
        let fewer_reserved = (0..self.reserved.len()).map(move |i| {
            let mut l = me.clone();
            l.reserved.remove(i);
            l
        });
        let me = self.clone();
        let fewer_usable = (0..self.usable.len()).map(move |i| {
            let mut l = me.clone();
            l.usable.remove(i);
            l
        });
        Box::new(fewer_reserved.chain(fewer_usable))
    }
}

impl Layout {
    /// Independent answer to "may the frame at `addr` ever be handed out?".
    fn oracle_usable(&self, addr: u64) -> bool {
        let frame = PhysRange::new(addr, addr + FRAME_SIZE);
        frame.end <= self.limit
            && addr >= LOW_MEMORY_LIMIT
            && self
                .usable
                .iter()
                .any(|u| u.start <= frame.start && frame.end <= u.end)
            && !self.reserved.iter().any(|r| r.overlaps(&frame))
    }

    fn storage(&self) -> Vec<u64> {
        vec![0; FrameBitmap::words_needed(self.limit)]
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Alloc,
    /// Free the n-th currently held frame (modulo the count).
    FreeHeld(usize),
    /// Free an arbitrary frame-aligned address.
    FreeAny(u64),
    /// Allocate 1..=8 physically consecutive frames.
    AllocRun(u64),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        match below(g, 5) {
            0 | 1 => Op::Alloc,
            2 => Op::FreeHeld(usize::arbitrary(g)),
            3 => Op::AllocRun(1 + below(g, 8)),
            _ => Op::FreeAny(u64::arbitrary(g)),
        }
    }
}

/// Usable-frame count, allocation safety, and free results all match the
/// oracle through an arbitrary sequence of operations.
fn prop_frame_ops(layout: Layout, ops: Vec<Op>) -> bool {
    let mut storage = layout.storage();
    let mut bm = FrameBitmap::new(&mut storage, layout.limit, &layout.usable, &layout.reserved);
    let frames = layout.limit / FRAME_SIZE;
    let expected_usable = (0..frames)
        .filter(|f| layout.oracle_usable(f * FRAME_SIZE))
        .count() as u64;
    assert_eq!(bm.usable_frames(), expected_usable);
    assert_eq!(bm.free_frames(), expected_usable);

    let mut held: Vec<u64> = Vec::new();
    let mut held_set = BTreeSet::new();
    for op in ops {
        match op {
            Op::Alloc => match bm.alloc() {
                Some(a) => {
                    assert_eq!(a % FRAME_SIZE, 0);
                    assert!(layout.oracle_usable(a), "handed out {a:#x}");
                    assert!(held_set.insert(a), "{a:#x} handed out twice");
                    assert!(bm.is_allocated(a));
                    held.push(a);
                }
                None => assert_eq!(held.len() as u64, expected_usable),
            },
            Op::FreeHeld(i) if !held.is_empty() => {
                let a = held.swap_remove(i % held.len());
                held_set.remove(&a);
                assert_eq!(bm.free(a), Ok(()));
                assert!(!bm.is_allocated(a));
                assert_eq!(bm.free(a), Err(FreeError::NotAllocated));
            }
            Op::FreeHeld(_) => {}
            Op::AllocRun(count) => {
                let free_at = |f: u64| {
                    layout.oracle_usable(f * FRAME_SIZE) && !held_set.contains(&(f * FRAME_SIZE))
                };
                // The oracle's first fit: the lowest run of `count` free frames.
                let expect = (0..frames.saturating_sub(count - 1))
                    .find(|&f| (f..f + count).all(free_at))
                    .map(|f| f * FRAME_SIZE);
                let got = bm.alloc_contiguous(count);
                assert_eq!(got, expect, "alloc_contiguous({count})");
                if let Some(a) = got {
                    for i in 0..count {
                        let f = a + i * FRAME_SIZE;
                        assert!(bm.is_allocated(f));
                        held_set.insert(f);
                        held.push(f);
                    }
                }
            }
            Op::FreeAny(raw) => {
                let a = (raw % (frames + 2)) * FRAME_SIZE;
                let want = if a / FRAME_SIZE >= frames {
                    Err(FreeError::OutOfRange)
                } else if !layout.oracle_usable(a) {
                    Err(FreeError::Reserved)
                } else if held_set.contains(&a) {
                    Ok(())
                } else {
                    Err(FreeError::NotAllocated)
                };
                assert_eq!(bm.free(a), want, "free({a:#x})");
                if want.is_ok() {
                    held_set.remove(&a);
                    held.retain(|h| *h != a);
                }
                assert_eq!(bm.free(a + 1), Err(FreeError::Misaligned));
            }
        }
        assert_eq!(bm.free_frames(), expected_usable - held.len() as u64);
    }
    true
}

/// Exhausting memory hands out every usable frame exactly once, and freeing
/// them all restores the initial free count.
fn prop_frame_exhaust_and_restore(layout: Layout) -> bool {
    let mut storage = layout.storage();
    let mut bm = FrameBitmap::new(&mut storage, layout.limit, &layout.usable, &layout.reserved);
    let initial = bm.free_frames();
    let mut got = BTreeSet::new();
    while let Some(a) = bm.alloc() {
        assert!(got.insert(a), "{a:#x} handed out twice");
        assert!(a >= LOW_MEMORY_LIMIT);
        assert!(!layout.reserved.iter().any(|r| r.contains(a)));
    }
    assert_eq!(got.len() as u64, initial);
    assert_eq!(bm.free_frames(), 0);
    for a in &got {
        assert_eq!(bm.free(*a), Ok(()));
    }
    bm.free_frames() == initial && bm.alloc().is_some() == (initial > 0)
}

#[test]
fn frame_bitmap_ops_match_oracle() {
    quickcheck(prop_frame_ops as fn(Layout, Vec<Op>) -> bool);
}

#[test]
fn frame_bitmap_exhaust_and_restore() {
    quickcheck(prop_frame_exhaust_and_restore as fn(Layout) -> bool);
}

// ---------------------------------------------------------------------------
// Address windows

/// Place (hint page, pages) or remove (the n-th range).
#[derive(Clone, Copy, Debug)]
enum WinOp {
    Place(u64, u64),
    Remove(usize),
}

impl Arbitrary for WinOp {
    fn arbitrary(g: &mut Gen) -> Self {
        if below(g, 3) == 0 {
            WinOp::Remove(usize::arbitrary(g))
        } else {
            // Hints: none, or any page of a slightly larger span, sometimes
            // misaligned.
            let hint = match below(g, 3) {
                0 => 0,
                1 => WIN_BASE + below(g, WIN_PAGES + 4) * PAGE,
                _ => WIN_BASE + below(g, WIN_PAGES * PAGE),
            };
            WinOp::Place(hint, 1 + below(g, 6))
        }
    }
}

const WIN_BASE: u64 = 0x4000_0000;
const WIN_PAGES: u64 = 24;

/// Placements never overlap or leave the window, a free hint is honoured,
/// and a placement fails only when no free run of that size exists.
fn prop_window_ops(ops: Vec<WinOp>) -> bool {
    let end = WIN_BASE + WIN_PAGES * PAGE;
    let mut w: Window<u64> = Window::new(WIN_BASE, end);
    let mut used = [false; WIN_PAGES as usize];
    let free_run = |used: &[bool], at: u64, pages: u64| {
        at.is_multiple_of(PAGE)
            && at >= WIN_BASE
            && at + pages * PAGE <= end
            && (0..pages).all(|i| !used[((at - WIN_BASE) / PAGE + i) as usize])
    };
    for op in ops {
        match op {
            WinOp::Place(hint, pages) => {
                let any = (0..WIN_PAGES).any(|p| free_run(&used, WIN_BASE + p * PAGE, pages));
                match w.place(hint, pages) {
                    Some(at) => {
                        assert!(free_run(&used, at, pages), "{at:#x} is not free");
                        if hint != 0 && free_run(&used, hint, pages) {
                            assert_eq!(at, hint);
                        }
                        for i in 0..pages {
                            used[((at - WIN_BASE) / PAGE + i) as usize] = true;
                        }
                        w.insert(at, pages, pages);
                    }
                    None => assert!(!any, "room for {pages} pages was missed"),
                }
            }
            WinOp::Remove(n) => {
                let ranges: Vec<(u64, u64)> = w.iter().collect();
                if let Some(&(start, pages)) = ranges.get(n % ranges.len().max(1)) {
                    assert_eq!(w.remove(start), Some(pages));
                    for i in 0..pages {
                        used[((start - WIN_BASE) / PAGE + i) as usize] = false;
                    }
                }
            }
        }
    }
    true
}

#[test]
fn window_placement_matches_oracle() {
    quickcheck(prop_window_ops as fn(Vec<WinOp>) -> bool);
}

// ---------------------------------------------------------------------------
// Boot module checks
// ---------------------------------------------------------------------------

/// Coordinates are whole units so the oracle can reason point by point.
const UNIT: u64 = 0x8000;
const UNITS: u64 = 96; // 3 MiB; LOW_MEMORY_LIMIT is unit 32, the first page lies in unit 0

fn unit_range(g: &mut Gen) -> PhysRange {
    let a = below(g, UNITS);
    let b = below(g, UNITS);
    // Mostly ordered; sometimes inverted or empty.
    let (s, e) = if below(g, 8) == 0 {
        (a, b)
    } else {
        (a.min(b), a.max(b))
    };
    PhysRange::new(s * UNIT, e * UNIT)
}

#[derive(Clone, Debug)]
struct BootScene {
    kernel: PhysRange,
    info: PhysRange,
    usable: Vec<PhysRange>,
    modules: Vec<PhysRange>,
}

impl Arbitrary for BootScene {
    fn arbitrary(g: &mut Gen) -> Self {
        let usable: Vec<PhysRange> = (0..below(g, 5)).map(|_| unit_range(g)).collect();
        // Module ends often coincide with usable-range ends, where
        // off-by-one coverage mistakes would show.
        let edges: Vec<u64> = usable.iter().flat_map(|r| [r.start, r.end]).collect();
        let point = |g: &mut Gen| match g.choose(&edges) {
            Some(e) if below(g, 2) == 0 => *e,
            _ => below(g, UNITS) * UNIT,
        };
        let modules = (0..below(g, 5))
            .map(|_| {
                let (a, b) = (point(g), point(g));
                if below(g, 8) == 0 {
                    PhysRange::new(a, b)
                } else {
                    PhysRange::new(a.min(b), a.max(b))
                }
            })
            .collect();
        // Kernel and boot info are small, so they do not shadow every other check.
        let small = |g: &mut Gen| {
            let s = below(g, UNITS);
            PhysRange::new(s * UNIT, (s + below(g, 4)) * UNIT)
        };
        BootScene {
            kernel: small(g),
            info: small(g),
            usable,
            modules,
        }
    }
}

fn units(r: &PhysRange) -> BTreeSet<u64> {
    (r.start / UNIT..r.end.max(r.start) / UNIT).collect()
}

fn oracle_verdict(s: &BootScene, i: usize) -> ModuleVerdict {
    let m = units(&s.modules[i]);
    let meets = |other: &PhysRange| !units(other).is_disjoint(&m);
    let usable: BTreeSet<u64> = s.usable.iter().flat_map(units).collect();
    if s.modules[i].end < s.modules[i].start {
        ModuleVerdict::EndsBeforeStart
    } else if m.is_empty() {
        ModuleVerdict::Empty
    } else if m.contains(&0) {
        // Unit 0 holds the first page.
        ModuleVerdict::FirstPage
    } else if meets(&s.kernel) {
        ModuleVerdict::OverlapsKernel
    } else if meets(&s.info) {
        ModuleVerdict::OverlapsBootInfo
    } else if let Some(other) = (0..s.modules.len()).find(|&j| j != i && meets(&s.modules[j])) {
        ModuleVerdict::OverlapsModule { other }
    } else if !m.is_subset(&usable) {
        ModuleVerdict::OutsideUsableMemory
    } else {
        ModuleVerdict::Ok
    }
}

fn prop_bootcheck_matches_oracle(s: BootScene) -> bool {
    let modules: Vec<ModuleInfo> = s
        .modules
        .iter()
        .map(|r| ModuleInfo {
            name: "m",
            range: *r,
        })
        .collect();
    let got = check_modules(s.kernel, s.info, &s.usable, &modules);
    let want: Vec<ModuleVerdict> = (0..s.modules.len())
        .map(|i| oracle_verdict(&s, i))
        .collect();
    if got != want {
        eprintln!("{s:?}: got {got:?}, oracle {want:?}");
    }
    got == want
}

#[test]
fn bootcheck_matches_oracle() {
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop_bootcheck_matches_oracle as fn(BootScene) -> bool);
}

/// Accepted modules, fed to the frame bitmap as reserved, are never handed out.
fn prop_accepted_modules_never_allocated(s: BootScene) -> bool {
    let modules: Vec<ModuleInfo> = s
        .modules
        .iter()
        .map(|r| ModuleInfo {
            name: "m",
            range: *r,
        })
        .collect();
    let verdicts = check_modules(s.kernel, s.info, &s.usable, &modules);
    let mut reserved = vec![s.kernel, s.info];
    reserved.extend(
        modules
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| v.is_ok())
            .map(|(m, _)| m.range),
    );
    let limit = UNITS * UNIT;
    let mut storage = vec![0; FrameBitmap::words_needed(limit)];
    let mut bm = FrameBitmap::new(&mut storage, limit, &s.usable, &reserved);
    while let Some(a) = bm.alloc() {
        if reserved.iter().any(|r| r.contains(a)) || a < LOW_MEMORY_LIMIT {
            return false;
        }
    }
    true
}

#[test]
fn accepted_modules_never_allocated() {
    quickcheck(prop_accepted_modules_never_allocated as fn(BootScene) -> bool);
}

/// The AP trampoline page is a whole usable page below 1 MiB other than
/// page 0, clear of the kernel, the boot information and every accepted
/// module; 0x8000 when that qualifies, else the lowest that does; and none
/// only when no page qualifies.
fn prop_trampoline_page_is_free(s: BootScene, pages: Vec<u8>) -> bool {
    // Sub-unit detail: page-granular usable holes and taken pages below 1 MiB.
    let mut usable = s.usable.clone();
    usable.extend(
        pages
            .iter()
            .map(|&p| PhysRange::from_start_len(u64::from(p) * FRAME_SIZE, FRAME_SIZE)),
    );
    let modules: Vec<ModuleInfo> = s
        .modules
        .iter()
        .map(|r| ModuleInfo {
            name: "m",
            range: *r,
        })
        .collect();
    let verdicts = check_modules(s.kernel, s.info, &usable, &modules);
    let mut taken = vec![s.kernel, s.info];
    taken.extend(
        modules
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| v.is_ok())
            .map(|(m, _)| m.range),
    );
    let qualifies = |page: u64| {
        page != 0
            && page < LOW_MEMORY_LIMIT
            && (page..page + FRAME_SIZE)
                .step_by(256)
                .all(|b| usable.iter().any(|u| u.contains(b)))
            && !taken
                .iter()
                .any(|t| t.overlaps(&PhysRange::from_start_len(page, FRAME_SIZE)))
    };
    let want = if qualifies(memmap::PREFERRED_TRAMPOLINE) {
        Some(memmap::PREFERRED_TRAMPOLINE)
    } else {
        (0..LOW_MEMORY_LIMIT / FRAME_SIZE)
            .map(|n| n * FRAME_SIZE)
            .find(|&p| qualifies(p))
    };
    let got = memmap::trampoline_page(&usable, &taken);
    if got != want {
        eprintln!("usable {usable:?} taken {taken:?}: got {got:?}, want {want:?}");
    }
    got == want
}

#[test]
fn trampoline_page_is_free() {
    QuickCheck::new()
        .tests(1000)
        .quickcheck(prop_trampoline_page_is_free as fn(BootScene, Vec<u8>) -> bool);
}

// ---------------------------------------------------------------------------
// Memory map normalisation
// ---------------------------------------------------------------------------

/// A small firmware memory map on a coarse grid, so that touching,
/// overlapping and nested entries are common.
#[derive(Clone, Debug)]
struct MapEntries(Vec<(PhysRange, bool)>);

impl Arbitrary for MapEntries {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = below(g, 9);
        MapEntries(
            (0..n)
                .map(|_| {
                    let a = below(g, 32);
                    let b = below(g, 32);
                    let (s, e) = if below(g, 8) == 0 {
                        (a, b)
                    } else {
                        (a.min(b), a.max(b))
                    };
                    (PhysRange::new(s * UNIT, e * UNIT), below(g, 3) != 0)
                })
                .collect(),
        )
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.0.clone();
        Box::new((0..me.len()).map(move |i| {
            let mut v = me.clone();
            v.remove(i);
            MapEntries(v)
        }))
    }
}

fn prop_memmap_matches_points(entries: MapEntries) -> bool {
    let entries = entries.0;
    let mut out = vec![PhysRange::new(1, 2)]; // stale contents are discarded
    memmap::usable_ranges(&entries, &mut out);
    // Sorted, non-empty, disjoint and not touching (fully merged).
    if out.windows(2).any(|w| w[0].end >= w[1].start) || out.iter().any(PhysRange::is_empty) {
        return false;
    }
    (0..32u64).all(|u| {
        let p = u * UNIT;
        let want = entries.iter().any(|(r, us)| *us && r.contains(p))
            && !entries.iter().any(|(r, us)| !*us && r.contains(p));
        out.iter().any(|r| r.contains(p)) == want
    })
}

#[test]
fn memmap_matches_points() {
    QuickCheck::new()
        .tests(1000)
        .quickcheck(prop_memmap_matches_points as fn(MapEntries) -> bool);
}

// ---------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------

/// A counter frequency drawn from tiny, realistic and extreme ranges.
#[derive(Clone, Copy, Debug)]
struct Hz(u64);

impl Arbitrary for Hz {
    fn arbitrary(g: &mut Gen) -> Self {
        let raw = u64::arbitrary(g);
        Hz(match below(g, 3) {
            0 => 1 + raw % 10_000,
            1 => 1_000_000 + raw % 20_000_000_000,
            _ => raw.max(1),
        })
    }
}

/// `got` is `x * num / den` rounded down or up (or saturated).
fn close(got: u64, x: u64, num: u64, den: u64) -> bool {
    let p = u128::from(x) * u128::from(num);
    let (q, r) = (p / u128::from(den), p % u128::from(den));
    if q >= u128::from(u64::MAX) {
        return got == u64::MAX;
    }
    let got = u128::from(got);
    got == q || (r != 0 && got == q + 1)
}

fn prop_clock_close_to_exact(hz: Hz, x: u64) -> bool {
    let s = Scale::from_hz(hz.0);
    close(s.ticks_to_ns(x), x, NS_PER_SEC, hz.0) && close(s.ns_to_ticks(x), x, hz.0, NS_PER_SEC)
}

fn prop_clock_monotonic(hz: Hz, a: u64, b: u64) -> bool {
    let s = Scale::from_hz(hz.0);
    let (lo, hi) = (a.min(b), a.max(b));
    s.ticks_to_ns(lo) <= s.ticks_to_ns(hi) && s.ns_to_ticks(lo) <= s.ns_to_ticks(hi)
}

fn prop_calibration_recovers_hz(hz: Hz, ref_ms: u16) -> TestResult {
    // A calibration window of 1..=65 ms, as with a PIT countdown.
    let ref_ns = (u64::from(ref_ms) + 1) * 1_000_000;
    let ticks = match u64::try_from(u128::from(hz.0) * u128::from(ref_ns) / 1_000_000_000) {
        Ok(t) => t,
        Err(_) => return TestResult::discard(),
    };
    match clock::hz_from_sample(ticks, ref_ns) {
        // Truncating `ticks` loses under one tick, i.e. 1e9 / ref_ns Hz.
        Some(got) => TestResult::from_bool(got <= hz.0 && hz.0 - got <= NS_PER_SEC / ref_ns + 1),
        None => TestResult::from_bool(ticks == 0 || hz.0 < NS_PER_SEC / ref_ns + 1),
    }
}

/// Calibration windows: however the held-up minority of windows is off
/// (too many ticks or too few), the chosen window is one of the good
/// ones' range.
fn prop_median_window_outvotes_stalls(
    base: u32,
    jitter: Vec<u8>,
    stalls: Vec<u64>,
    five: bool,
) -> TestResult {
    let n = if five { 5 } else { 3 };
    let bad = stalls.len().min((n - 1) / 2);
    let base = u64::from(base) + 1_000;
    // Good windows agree within 1%.
    let good: Vec<u64> = (0..n - bad)
        .map(|i| base + base * u64::from(jitter.get(i).copied().unwrap_or(0) % 10) / 1000)
        .collect();
    let mut windows = good.clone();
    windows.extend(stalls.iter().take(bad));
    // Any order.
    let rot = jitter.first().map_or(0, |&j| usize::from(j)) % n;
    windows.rotate_left(rot);
    let Some(i) = clock::median_window(&windows) else {
        return TestResult::failed();
    };
    let (lo, hi) = (*good.iter().min().unwrap(), *good.iter().max().unwrap());
    TestResult::from_bool(lo <= windows[i] && windows[i] <= hi)
}

#[test]
fn median_window_outvotes_stalls() {
    quickcheck(
        prop_median_window_outvotes_stalls as fn(u32, Vec<u8>, Vec<u64>, bool) -> TestResult,
    );
}

#[test]
fn clock_close_to_exact() {
    quickcheck(prop_clock_close_to_exact as fn(Hz, u64) -> bool);
}

#[test]
fn clock_monotonic() {
    quickcheck(prop_clock_monotonic as fn(Hz, u64, u64) -> bool);
}

#[test]
fn clock_calibration_recovers_hz() {
    quickcheck(prop_calibration_recovers_hz as fn(Hz, u16) -> TestResult);
}

fn prop_pit_reload_close(ns: u64) -> bool {
    let ns = ns % 60_000_000;
    match clock::pit_reload_for_ns(ns) {
        Some(r) => {
            assert_ne!(r, 0);
            // Within half a PIT tick (~419 ns) of the request.
            clock::pit_ns_for_reload(r).abs_diff(ns) <= 420
        }
        None => {
            let count = ns as f64 * clock::PIT_HZ as f64 / 1e9;
            !(0.5..65535.5).contains(&count) || (count - 0.5).abs() < 1e-6
        }
    }
}

#[test]
fn pit_reload_close() {
    quickcheck(prop_pit_reload_close as fn(u64) -> bool);
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

fn prop_cmdline_never_panics(s: String) -> bool {
    let (_, warnings) = cmdline::parse(&s);
    let words = s.split_ascii_whitespace().count();
    warnings.len() <= words
        && warnings
            .iter()
            .all(|w| s.contains(&*strip_warning_word(&w.to_string())))
}

/// The word a warning names, from its Display text (between backticks).
fn strip_warning_word(text: &str) -> String {
    let start = text.find('`').unwrap() + 1;
    let end = text[start..].find('`').unwrap() + start;
    // Display escapes control characters; compare the unescaped word instead.
    let shown = &text[start..end];
    if shown.contains('\\') {
        String::new()
    } else {
        shown.to_string()
    }
}

#[derive(Clone, Copy, Debug)]
struct Opts(BootOptions);

impl Arbitrary for Opts {
    fn arbitrary(g: &mut Gen) -> Self {
        let log = *g
            .choose(&[
                LogLevel::Error,
                LogLevel::Warn,
                LogLevel::Info,
                LogLevel::Debug,
                LogLevel::Trace,
            ])
            .unwrap();
        let test = match below(g, 3) {
            0 => None,
            1 => Some(TestMode::Boot),
            _ => Some(TestMode::Fault(g.choose(&FaultKind::ALL).unwrap().0)),
        };
        Opts(BootOptions {
            log,
            test,
            max_cpus: (below(g, 2) == 0).then(|| 1 + below(g, 4096) as u32),
            inject: Injections {
                no_memory_map: bool::arbitrary(g),
                module_overlap: bool::arbitrary(g),
                module_on_trampoline: bool::arbitrary(g),
                bad_acpi_checksum: bool::arbitrary(g),
                ap_no_start: bool::arbitrary(g),
                lock_reentry: bool::arbitrary(g),
                lock_inversion: bool::arbitrary(g),
                lock_irq_unsafe: bool::arbitrary(g),
                calibration_stall: bool::arbitrary(g),
            },
            ap_timeout_ms: 1 + below(g, 10_000) as u32,
        })
    }
}

fn render(o: &BootOptions) -> String {
    let mut words = vec![format!("log={}", o.log.name())];
    match o.test {
        None => {}
        Some(TestMode::Boot) => words.push("test=boot".into()),
        Some(TestMode::Fault(k)) => words.push(format!("test=fault:{}", k.name())),
    }
    if let Some(n) = o.max_cpus {
        words.push(format!("maxcpus={n}"));
    }
    let i = &o.inject;
    let names: Vec<&str> = Injections::NAMES
        .iter()
        .zip([
            i.no_memory_map,
            i.module_overlap,
            i.module_on_trampoline,
            i.bad_acpi_checksum,
            i.ap_no_start,
            i.lock_reentry,
            i.lock_inversion,
            i.lock_irq_unsafe,
            i.calibration_stall,
        ])
        .filter_map(|(n, on)| on.then_some(*n))
        .collect();
    if !names.is_empty() {
        words.push(format!("inject={}", names.join(",")));
    }
    words.push(format!("aptimeout={}", o.ap_timeout_ms));
    words.join(" ")
}

fn prop_cmdline_round_trips(o: Opts) -> bool {
    let line = render(&o.0);
    let (parsed, warnings) = cmdline::parse(&line);
    parsed == o.0 && warnings.is_empty()
}

#[test]
fn cmdline_never_panics() {
    quickcheck(prop_cmdline_never_panics as fn(String) -> bool);
}

#[test]
fn cmdline_round_trips() {
    quickcheck(prop_cmdline_round_trips as fn(Opts) -> bool);
}

// ---------------------------------------------------------------------------
// Hostile firmware bytes
// ---------------------------------------------------------------------------

struct Flat {
    base: u64,
    bytes: Vec<u8>,
}

impl PhysMemory for Flat {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), AcpiError> {
        let off = phys
            .checked_sub(self.base)
            .ok_or(AcpiError::Unreadable { phys })? as usize;
        let src = self
            .bytes
            .get(off..off.saturating_add(buf.len()))
            .ok_or(AcpiError::Unreadable { phys })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn prop_rsdp_never_panics(bytes: Vec<u8>, fix_sig: bool) -> bool {
    let mut bytes = bytes;
    if fix_sig && bytes.len() >= 8 {
        bytes[..8].copy_from_slice(b"RSD PTR ");
    }
    let _ = acpi::parse_rsdp(&bytes);
    true
}

/// Arbitrary MADT entry bytes behind a valid header and checksum: the
/// parser returns a result (never panics), and accepted tables account for
/// every byte.
fn prop_madt_never_panics(entries: Vec<u8>, length_delta: i8) -> bool {
    let mut t = b"APIC".to_vec();
    let len = (44 + entries.len()) as i64 + i64::from(length_delta);
    t.extend_from_slice(&(len.max(0) as u32).to_le_bytes());
    t.extend_from_slice(&[3, 0]);
    t.extend_from_slice(b"CAPOS CAPOSTBL");
    t.extend_from_slice(&[0; 12]);
    t.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&entries);
    let covered = (len.max(0) as usize).min(t.len());
    let s = t[..covered].iter().fold(0u8, |a, b| a.wrapping_add(*b));
    t[9] = t[9].wrapping_sub(s);
    let mem = Flat {
        base: 0x8000,
        bytes: t,
    };
    match acpi::parse_madt(&mem, 0x8000) {
        Ok(m) => m.cpus.len() + m.io_apics.len() + m.irq_overrides.len() <= entries.len() / 2,
        Err(e) => !e.to_string().is_empty(),
    }
}

#[test]
fn rsdp_never_panics() {
    quickcheck(prop_rsdp_never_panics as fn(Vec<u8>, bool) -> bool);
}

#[test]
fn madt_never_panics() {
    quickcheck(prop_madt_never_panics as fn(Vec<u8>, i8) -> bool);
}
