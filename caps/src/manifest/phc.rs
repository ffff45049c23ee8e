//! Argon2id PHC strings: the check the manifest applies to every account's
//! `passwordHash` (and authd again when it loads them).
//!
//! A hash is accepted when it is a well-formed PHC string
//! `$argon2id$v=19$m=M,t=T,p=P$SALT$HASH` (parsed by the `password-hash`
//! crate, which needs neither std nor an allocator), with a salt of at least
//! 8 bytes, an output of at least 16 bytes, and parameters within
//! [`MIN_MEMORY_KIB`]..=[`MAX_MEMORY_KIB`], [`MIN_PASSES`]..=[`MAX_PASSES`]
//! and exactly [`LANES`] lane: at least the OWASP minimum, and at most what
//! authd's frame quota and a login's latency allow.

use core::fmt;
use password_hash::PasswordHash;

/// The only algorithm accepted.
pub const ALGORITHM: &str = "argon2id";
/// The only Argon2 version accepted (0x13).
pub const VERSION: u32 = 19;
/// Least memory cost, in KiB (19 MiB).
pub const MIN_MEMORY_KIB: u32 = 19456;
/// Most memory cost, in KiB (64 MiB): what authd can be given at most.
pub const MAX_MEMORY_KIB: u32 = 65536;
/// Least number of passes.
pub const MIN_PASSES: u32 = 2;
/// Most passes.
pub const MAX_PASSES: u32 = 10;
/// The number of lanes (authd runs one thread).
pub const LANES: u32 = 1;
/// Least salt length, in bytes.
pub const MIN_SALT_BYTES: usize = 8;
/// Least hash output length, in bytes.
pub const MIN_OUTPUT_BYTES: usize = 16;
/// Most hash output length, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 64;

/// The cost parameters of an Argon2id hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Memory, in KiB.
    pub m: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Params {
    /// The parameters `mkmanifest passwd` and authd use: the floor.
    pub const DEFAULT: Params = Params {
        m: MIN_MEMORY_KIB,
        t: MIN_PASSES,
        p: LANES,
    };

    /// Whether these are within the accepted range.
    pub const fn acceptable(&self) -> bool {
        self.m >= MIN_MEMORY_KIB
            && self.m <= MAX_MEMORY_KIB
            && self.t >= MIN_PASSES
            && self.t <= MAX_PASSES
            && self.p == LANES
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={},t={},p={}", self.m, self.t, self.p)
    }
}

/// Why a string is not an acceptable hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhcError {
    /// Not a well-formed Argon2id (v=19) PHC string with salt and output.
    Malformed,
    /// Well-formed, with cost parameters outside the accepted range.
    Params(Params),
}

impl fmt::Display for PhcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhcError::Malformed => f.write_str("is not a valid Argon2id PHC string"),
            PhcError::Params(p) => write!(
                f,
                "has parameters {p}; accepted are m from {MIN_MEMORY_KIB} to {MAX_MEMORY_KIB} KiB, t from {MIN_PASSES} to {MAX_PASSES}, p = {LANES}"
            ),
        }
    }
}

/// Checks `s` is an acceptable Argon2id PHC string; answers its parameters.
pub fn check(s: &str) -> Result<Params, PhcError> {
    let hash = PasswordHash::new(s).map_err(|_| PhcError::Malformed)?;
    if hash.algorithm.as_str() != ALGORITHM || hash.version != Some(VERSION) {
        return Err(PhcError::Malformed);
    }
    // Exactly m, t and p, each once (the parser refuses repeats).
    if hash.params.iter().count() != 3 {
        return Err(PhcError::Malformed);
    }
    let decimal = |name: &str| hash.params.get_decimal(name).ok_or(PhcError::Malformed);
    let params = Params {
        m: decimal("m")?,
        t: decimal("t")?,
        p: decimal("p")?,
    };
    let salt = hash.salt.ok_or(PhcError::Malformed)?;
    let mut buf = [0u8; 64];
    let salt_len = salt
        .decode_b64(&mut buf)
        .map_err(|_| PhcError::Malformed)?
        .len();
    if salt_len < MIN_SALT_BYTES {
        return Err(PhcError::Malformed);
    }
    let output = hash.hash.ok_or(PhcError::Malformed)?;
    if !(MIN_OUTPUT_BYTES..=MAX_OUTPUT_BYTES).contains(&output.len()) {
        return Err(PhcError::Malformed);
    }
    if !params.acceptable() {
        return Err(PhcError::Params(params));
    }
    Ok(params)
}

/// Hashes `password` as `mkmanifest passwd` does: Argon2id with
/// [`Params::DEFAULT`], a 16-byte salt from the operating system's
/// generator and a 32-byte output. Host only.
#[cfg(feature = "std")]
pub fn hash_password(password: &[u8]) -> Result<alloc::string::String, alloc::string::String> {
    use alloc::string::ToString;
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let params = argon2::Params::new(
        Params::DEFAULT.m,
        Params::DEFAULT.t,
        Params::DEFAULT.p,
        Some(32),
    )
    .map_err(|e| e.to_string())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}
