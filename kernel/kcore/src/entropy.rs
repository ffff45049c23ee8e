//! The kernel's entropy pool: pure mixing logic, so the host can test it.
//!
//! The pool keeps a 32-byte key and a counter. Each output block is
//! `SHA-256("capOS pool out" ‖ key ‖ counter ‖ sample)`, where `sample` is
//! whatever the hardware gave for this request (RDSEED or RDRAND words, or
//! TSC jitter samples); after every request the key is replaced by
//! `SHA-256("capOS pool rekey" ‖ key ‖ counter)`, so a later compromise of
//! the key does not reveal earlier output. A sample never replaces the
//! key alone: [`Pool::mix`] hashes it into the old key, so a weak sample
//! cannot make the pool weaker than it was.

use sha2::{Digest, Sha256};

/// Where the hardware half of each sample comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// RDSEED (the CPU's conditioned entropy source).
    Rdseed,
    /// RDRAND (the CPU's DRBG, reseeded from the same source).
    Rdrand,
    /// Jitter between reads of the time-stamp counter.
    TscJitter,
}

impl Source {
    /// The name the kernel log and the schema use.
    pub const fn name(self) -> &'static str {
        match self {
            Source::Rdseed => "rdseed",
            Source::Rdrand => "rdrand",
            Source::TscJitter => "tsc-jitter",
        }
    }

    /// The best source a CPU with these features offers.
    pub const fn choose(rdseed: bool, rdrand: bool) -> Source {
        if rdseed {
            Source::Rdseed
        } else if rdrand {
            Source::Rdrand
        } else {
            Source::TscJitter
        }
    }
}

/// Times a hardware instruction is retried when it reports no value
/// (CF = 0) before the caller falls back to jitter.
pub const HW_RETRIES: u32 = 10;

/// Largest request [`Pool::fill`] serves in one call (bytes).
pub const MAX_READ: usize = 256;

/// Words of hardware output (or jitter samples) mixed into each request.
pub const SAMPLE_WORDS: usize = 4;

/// Calls `step` until it gives a value, at most [`HW_RETRIES`] times.
pub fn retry(mut step: impl FnMut() -> Option<u64>) -> Option<u64> {
    (0..HW_RETRIES).find_map(|_| step())
}

/// A jitter sample: the low bits of the differences between `reads`
/// successive readings of `tsc`, folded into one word. Each difference
/// depends on caches, interrupts and the timing of the instructions
/// between the reads; the hash that consumes the sample does the
/// conditioning.
pub fn jitter_word(mut tsc: impl FnMut() -> u64, reads: u32) -> u64 {
    let mut acc = 0u64;
    let mut last = tsc();
    for i in 0..reads {
        let now = tsc();
        let delta = now.wrapping_sub(last);
        last = now;
        acc = acc.rotate_left(7) ^ delta ^ u64::from(i);
    }
    acc ^ last
}

/// The pool.
#[derive(Clone)]
pub struct Pool {
    key: [u8; 32],
    counter: u64,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    /// An unseeded pool (all zero key): mix samples in before use.
    pub const fn new() -> Self {
        Pool {
            key: [0; 32],
            counter: 0,
        }
    }

    /// Hashes `sample` into the key.
    pub fn mix(&mut self, sample: &[u8]) {
        let mut h = Sha256::new();
        h.update(b"capOS pool mix");
        h.update(self.key);
        h.update(sample);
        self.key = h.finalize().into();
    }

    /// Fills `out` with output conditioned on `sample`, then rekeys.
    pub fn fill(&mut self, sample: &[u8], out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            self.counter = self.counter.wrapping_add(1);
            let mut h = Sha256::new();
            h.update(b"capOS pool out");
            h.update(self.key);
            h.update(self.counter.to_le_bytes());
            h.update(sample);
            let block: [u8; 32] = h.finalize().into();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        self.counter = self.counter.wrapping_add(1);
        let mut h = Sha256::new();
        h.update(b"capOS pool rekey");
        h.update(self.key);
        h.update(self.counter.to_le_bytes());
        self.key = h.finalize().into();
    }
}

/// A sample's bytes: `words` little-endian, one after another.
pub fn sample_bytes(words: &[u64; SAMPLE_WORDS]) -> [u8; SAMPLE_WORDS * 8] {
    let mut b = [0u8; SAMPLE_WORDS * 8];
    for (chunk, w) in b.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_prefers_rdseed_then_rdrand() {
        assert_eq!(Source::choose(true, true), Source::Rdseed);
        assert_eq!(Source::choose(false, true), Source::Rdrand);
        assert_eq!(Source::choose(false, false), Source::TscJitter);
        assert_eq!(Source::TscJitter.name(), "tsc-jitter");
    }

    #[test]
    fn successive_outputs_differ_even_with_the_same_sample() {
        let mut p = Pool::new();
        p.mix(b"seed");
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        p.fill(&[0; 32], &mut a);
        p.fill(&[0; 32], &mut b);
        assert_ne!(a, b);
        assert_ne!(a[..32], a[32..]);
    }

    #[test]
    fn output_depends_on_seed_and_sample() {
        let (mut p, mut q) = (Pool::new(), Pool::new());
        p.mix(b"one");
        q.mix(b"two");
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        p.clone().fill(b"x", &mut a);
        q.fill(b"x", &mut b);
        assert_ne!(a, b);
        p.fill(b"y", &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn identical_pools_agree_and_partial_blocks_are_prefixes() {
        let mut p = Pool::new();
        p.mix(b"s");
        let mut q = p.clone();
        let (mut a, mut b) = ([0u8; 40], [0u8; 7]);
        p.fill(b"z", &mut a);
        q.fill(b"z", &mut b);
        assert_eq!(a[..7], b);
    }

    #[test]
    fn known_answer_for_the_first_block() {
        // SHA-256("capOS pool out" ‖ 0^32 ‖ 1u64 LE ‖ "abc"), computed with
        // Python's hashlib.
        let mut p = Pool::new();
        let mut out = [0u8; 32];
        p.fill(b"abc", &mut out);
        assert_eq!(hex(&out), KAT_FIRST_BLOCK);
    }

    const KAT_FIRST_BLOCK: &str =
        "db5faec372bb9e07d0f2f25cfbed41dad6e7a0f3ee7c32f119c6922ceb636f96";

    fn hex(b: &[u8]) -> alloc::string::String {
        b.iter().map(|x| alloc::format!("{x:02x}")).collect()
    }

    #[test]
    fn retry_stops_after_the_limit_or_the_first_value() {
        let mut calls = 0;
        assert_eq!(
            retry(|| {
                calls += 1;
                None
            }),
            None
        );
        assert_eq!(calls, HW_RETRIES);
        calls = 0;
        assert_eq!(
            retry(|| {
                calls += 1;
                (calls == 3).then_some(9)
            }),
            Some(9)
        );
        assert_eq!(calls, 3);
    }

    #[test]
    fn jitter_word_depends_on_the_readings() {
        let mut t = 0u64;
        let a = jitter_word(
            || {
                t += 10;
                t
            },
            8,
        );
        let mut t = 0u64;
        let b = jitter_word(
            || {
                t += 11;
                t
            },
            8,
        );
        assert_ne!(a, b);
    }

    #[test]
    fn sample_bytes_are_little_endian_words() {
        let b = sample_bytes(&[1, 2, 3, 0x0102]);
        assert_eq!(b[0], 1);
        assert_eq!(b[8], 2);
        assert_eq!(b[24..26], [2, 1]);
    }
}
