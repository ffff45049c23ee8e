//! The kernel's entropy pool ([`capos_kcore::entropy::Pool`]) fed by the
//! best source the boot CPU has: RDSEED, else RDRAND, else TSC jitter.
//! Every request mixes a fresh sample; a hardware instruction that keeps
//! answering "no value" ([`capos_kcore::entropy::HW_RETRIES`] times) is
//! replaced by jitter for that word. Also holds the boot secret that caller
//! references are keyed with (drawn once, at [`init`]).

use crate::sync::SpinLock;
use capos_kcore::entropy::{self, Pool, Source, SAMPLE_WORDS};
use capos_kcore::session::SECRET_LEN;

static POOL: SpinLock<Pool> = SpinLock::new(Pool::new());
static SOURCE: spin::Once<Source> = spin::Once::new();
static BOOT_SECRET: spin::Once<[u8; SECRET_LEN]> = spin::Once::new();

/// Chooses the source, seeds the pool, draws the boot secret and logs the
/// source (`entropy: rdrand`). Called once on the boot CPU before any
/// process exists.
pub fn init() {
    let source = *SOURCE
        .call_once(|| Source::choose(capos_arch::rng::has_rdseed(), capos_arch::rng::has_rdrand()));
    {
        let mut pool = POOL.lock();
        for _ in 0..4 {
            pool.mix(&entropy::sample_bytes(&sample(source)));
        }
    }
    BOOT_SECRET.call_once(|| {
        let mut s = [0u8; SECRET_LEN];
        fill(&mut s);
        s
    });
    crate::info!("entropy: {}", source.name());
}

/// The source chosen at boot.
pub fn source() -> Source {
    *SOURCE.get().unwrap_or(&Source::TscJitter)
}

/// The boot secret caller references are keyed with.
pub fn boot_secret() -> &'static [u8; SECRET_LEN] {
    BOOT_SECRET
        .get()
        .expect("entropy::init runs before any process")
}

/// One jitter word.
fn jitter() -> u64 {
    entropy::jitter_word(capos_arch::cpu::rdtsc, 64)
}

/// One sample of `source`, taken with no lock held.
fn sample(source: Source) -> [u64; SAMPLE_WORDS] {
    let mut words = [0u64; SAMPLE_WORDS];
    for w in &mut words {
        *w = match source {
            Source::Rdseed => entropy::retry(capos_arch::rng::rdseed64)
                .or_else(|| entropy::retry(capos_arch::rng::rdrand64_if_present))
                .unwrap_or_else(jitter),
            Source::Rdrand => entropy::retry(capos_arch::rng::rdrand64).unwrap_or_else(jitter),
            Source::TscJitter => jitter(),
        } ^ capos_arch::cpu::rdtsc().rotate_left(32);
    }
    words
}

/// Fills `out` (any length; callers bound it) with pool output.
pub fn fill(out: &mut [u8]) {
    let s = entropy::sample_bytes(&sample(source()));
    POOL.lock().fill(&s, out);
}

/// A fresh 16-byte value (session identities).
pub fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    fill(&mut b);
    b
}
