//! Converting between counter ticks and nanoseconds, and PIT arithmetic.
//!
//! A [`Scale`] holds the ratio `1e9 / hz` (and its inverse) as a 64.64
//! fixed-point number, computed once with `u128` division. Each conversion
//! is then one 64x64 multiply for the integer part and one 64x64->128
//! multiply for the fraction, with no division on the hot path. (The 128-bit
//! product is a single `mul` on x86_64.)
//!
//! Accuracy: the ratio is rounded up to the next 2^-64, which is less than
//! one unit of error over any `u64` input. So for every input the result is
//! the exact quotient rounded down or up (never further off), exactly the
//! quotient whenever that is a whole number, and conversions are monotonic. A result that
//! does not fit in `u64` saturates to `u64::MAX`. Nanoseconds in a `u64` last
//! 584 years; a 10 GHz tick counter itself wraps after about 58 years, so
//! uptime is limited by the counter, never by the conversion.

/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// Input clock of the 8253/8254 programmable interval timer, in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Multiplication by `int + frac / 2^64`, rounded down, saturating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ratio {
    int: u64,
    frac: u64,
}

impl Ratio {
    /// `num / den` in 64.64 fixed point, rounded up; `den` must be non-zero.
    fn new(num: u64, den: u64) -> Self {
        let den = u128::from(den);
        let whole = (u128::from(num) << 64).div_ceil(den);
        Self {
            int: u64::try_from(whole >> 64).unwrap_or(u64::MAX),
            frac: whole as u64,
        }
    }

    fn apply(self, x: u64) -> u64 {
        let frac = ((u128::from(x) * u128::from(self.frac)) >> 64) as u64;
        x.checked_mul(self.int)
            .and_then(|i| i.checked_add(frac))
            .unwrap_or(u64::MAX)
    }
}

/// Fixed-point ticks<->nanoseconds conversion for a counter of known frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    hz: u64,
    to_ns: Ratio,
    to_ticks: Ratio,
}

impl Scale {
    /// The scale for a counter running at `hz` ticks per second.
    ///
    /// # Panics
    ///
    /// Panics if `hz` is zero; [`Scale::try_from_hz`] returns `None` instead.
    pub fn from_hz(hz: u64) -> Self {
        match Self::try_from_hz(hz) {
            Some(s) => s,
            None => panic!("clock frequency must be non-zero"),
        }
    }

    /// The scale for a counter running at `hz` ticks per second, or `None`
    /// for zero.
    pub fn try_from_hz(hz: u64) -> Option<Self> {
        (hz != 0).then(|| Self {
            hz,
            to_ns: Ratio::new(NS_PER_SEC, hz),
            to_ticks: Ratio::new(hz, NS_PER_SEC),
        })
    }

    /// Nanoseconds elapsed over `ticks` ticks: the exact value rounded down
    /// or up (exact when it is whole); saturates at `u64::MAX`.
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        self.to_ns.apply(ticks)
    }

    /// Ticks elapsed over `ns` nanoseconds: the exact value rounded down or
    /// up (exact when it is whole); saturates at `u64::MAX`.
    pub fn ns_to_ticks(&self, ns: u64) -> u64 {
        self.to_ticks.apply(ns)
    }

    /// The counter frequency in Hz.
    pub fn hz(&self) -> u64 {
        self.hz
    }
}

/// Frequency from a calibration sample: `ticks` counted while a reference
/// clock advanced `ref_ns`. Rounded to the nearest Hz; `None` when `ref_ns`
/// is zero or the frequency would be zero or exceed `u64::MAX`.
pub fn hz_from_sample(ticks: u64, ref_ns: u64) -> Option<u64> {
    if ref_ns == 0 {
        return None;
    }
    let num = u128::from(ticks) * u128::from(NS_PER_SEC) + u128::from(ref_ns / 2);
    let hz = u64::try_from(num / u128::from(ref_ns)).ok()?;
    (hz != 0).then_some(hz)
}

/// How far (in parts per thousand of the median) a calibration window may
/// stray before it is reported as held up.
pub const WINDOW_TOLERANCE_PERMILLE: u64 = 20;

/// Picks the calibration window to trust among several measurements of the
/// same reference interval: the one whose TSC count is the median. A CPU
/// held up while it waits for the reference clock (a host that deschedules
/// a virtual CPU, a firmware SMI) sees the interval end late and counts too
/// many ticks, which would make every later deadline run slow by the same
/// factor; the median ignores up to `(n - 1) / 2` such windows. `None` for
/// no windows.
pub fn median_window(tsc_ticks: &[u64]) -> Option<usize> {
    let mut order: [usize; 16] = core::array::from_fn(|i| i);
    let n = tsc_ticks.len().min(order.len());
    if n == 0 {
        return None;
    }
    let order = &mut order[..n];
    order.sort_unstable_by_key(|&i| (tsc_ticks[i], i));
    Some(order[(n - 1) / 2])
}

/// True when `ticks` is within [`WINDOW_TOLERANCE_PERMILLE`] of `median`.
pub fn window_agrees(ticks: u64, median: u64) -> bool {
    let diff = u128::from(ticks.abs_diff(median));
    diff * 1000 <= u128::from(median) * u128::from(WINDOW_TOLERANCE_PERMILLE)
}

/// PIT reload value whose countdown lasts closest to `ns` nanoseconds.
///
/// `None` when that count is 0 (too short) or above 65535 (longer than about
/// 54.9 ms); the PIT's "0 means 65536" encoding is never produced.
pub fn pit_reload_for_ns(ns: u64) -> Option<u16> {
    let count =
        (u128::from(ns) * u128::from(PIT_HZ) + u128::from(NS_PER_SEC / 2)) / u128::from(NS_PER_SEC);
    match u16::try_from(count) {
        Ok(0) | Err(_) => None,
        Ok(c) => Some(c),
    }
}

/// Exact duration in nanoseconds (rounded to nearest) of a PIT countdown
/// from `reload` (where 0 means 65536, as on the hardware).
pub fn pit_ns_for_reload(reload: u16) -> u64 {
    let count = if reload == 0 {
        65536
    } else {
        u64::from(reload)
    };
    (count * NS_PER_SEC + PIT_HZ / 2) / PIT_HZ
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(x: u64, num: u64, den: u64) -> u128 {
        u128::from(x) * u128::from(num) / u128::from(den)
    }

    /// True when `got` is `x * num / den` rounded down or up.
    fn close(got: u64, x: u64, num: u64, den: u64) -> bool {
        let p = u128::from(x) * u128::from(num);
        let (q, r) = (p / u128::from(den), p % u128::from(den));
        let got = u128::from(got);
        if q >= u128::from(u64::MAX) {
            return got == u128::from(u64::MAX);
        }
        got == q || (r != 0 && got == q + 1)
    }

    #[test]
    fn round_numbers() {
        let s = Scale::from_hz(1_000_000_000);
        assert_eq!(s.ticks_to_ns(123_456_789), 123_456_789);
        assert_eq!(s.ns_to_ticks(987), 987);
        let s = Scale::from_hz(2_000_000_000);
        assert_eq!(s.ticks_to_ns(2_000_000_000), NS_PER_SEC);
        assert_eq!(s.ns_to_ticks(NS_PER_SEC), 2_000_000_000);
        let s = Scale::from_hz(1);
        assert_eq!(s.ticks_to_ns(5), 5 * NS_PER_SEC);
        assert_eq!(s.hz(), 1);
    }

    #[test]
    fn awkward_frequencies_stay_within_one() {
        for hz in [
            PIT_HZ,
            3_579_545,
            2_893_441_117,
            10_000_000_000,
            7,
            u64::MAX,
        ] {
            let s = Scale::from_hz(hz);
            for x in [0, 1, 999, 1 << 32, 1 << 50, u64::MAX / 3, u64::MAX] {
                assert!(close(s.ticks_to_ns(x), x, NS_PER_SEC, hz), "{hz} {x}");
                assert!(close(s.ns_to_ticks(x), x, hz, NS_PER_SEC), "{hz} {x}");
            }
        }
    }

    #[test]
    fn hundred_years_at_10ghz_fits() {
        // 58 years of 10 GHz ticks is all a u64 counter holds.
        let s = Scale::from_hz(10_000_000_000);
        let ns = s.ticks_to_ns(u64::MAX);
        assert!(close(ns, u64::MAX, NS_PER_SEC, 10_000_000_000));
        assert!(u128::from(ns) > exact(57 * 365 * 86_400, NS_PER_SEC, 1));
        let century_ns = 100 * 365 * 86_400 * NS_PER_SEC;
        assert_eq!(s.ns_to_ticks(century_ns), u64::MAX); // exceeds the counter
        assert_eq!(
            Scale::from_hz(1).ns_to_ticks(century_ns),
            century_ns / NS_PER_SEC
        );
    }

    #[test]
    fn zero_hz() {
        assert!(Scale::try_from_hz(0).is_none());
    }

    #[test]
    #[should_panic(expected = "non-zero")]
    fn zero_hz_panics() {
        let _ = Scale::from_hz(0);
    }

    #[test]
    fn calibration() {
        assert_eq!(hz_from_sample(2_400_000, 1_000_000), Some(2_400_000_000));
        assert_eq!(hz_from_sample(1, 3), Some(333_333_333));
        assert_eq!(hz_from_sample(2, 3), Some(666_666_667));
        assert_eq!(hz_from_sample(5, 0), None);
        assert_eq!(hz_from_sample(0, 10), None);
        assert_eq!(hz_from_sample(u64::MAX, 1), None);
    }

    #[test]
    fn a_held_up_window_is_outvoted() {
        // The stress run's boot 1068: one 20 ms window ended 1.2 s late.
        let windows = [46_110_000, 2_800_000_000, 46_100_000];
        let i = median_window(&windows).unwrap();
        assert_eq!(windows[i], 46_110_000);
        assert!(!window_agrees(windows[1], windows[i]));
        assert!(window_agrees(windows[2], windows[i]));
        // Held up at the start instead (too few ticks): outvoted as well.
        assert_eq!(median_window(&[100, 5, 101]), Some(0));
        assert_eq!(median_window(&[7]), Some(0));
        assert_eq!(median_window(&[]), None);
        assert!(window_agrees(1020, 1000) && !window_agrees(1021, 1000));
        assert!(window_agrees(0, 0) && !window_agrees(1, 0));
    }

    #[test]
    fn pit() {
        assert_eq!(pit_reload_for_ns(10_000_000), Some(11_932));
        assert_eq!(pit_reload_for_ns(1_000_000), Some(1_193));
        assert_eq!(pit_reload_for_ns(100), None);
        assert_eq!(pit_reload_for_ns(55_000_000), None);
        assert_eq!(pit_reload_for_ns(54_925_000), None); // 65535.52 rounds to 65536
        assert_eq!(pit_reload_for_ns(54_924_500), Some(65_535));
        assert_eq!(pit_ns_for_reload(11_932), 10_000_151);
        assert_eq!(pit_ns_for_reload(0), 54_925_401);
    }
}
