//! Session logic that needs no machine: label checks, and the caller
//! reference an endpoint's server sees for a session (docs/sessions.md).
//!
//! The reference is the first 16 bytes of
//! `HMAC-SHA256(boot secret, "capOS caller reference" ‖ endpoint scope (u64
//! LE) ‖ session identity)`: stable for one session at one endpoint within
//! a boot, different between endpoints and between sessions, and
//! meaningless after a reboot (a new boot secret).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of a session identity.
pub const IDENTITY_LEN: usize = 16;
/// Bytes of a caller reference.
pub const REFERENCE_LEN: usize = 16;
/// Bytes of the boot secret.
pub const SECRET_LEN: usize = 32;
/// Longest principal or profile label, in bytes.
pub const MAX_LABEL: usize = 64;

/// The domain separator hashed before the endpoint scope.
pub const REFERENCE_DOMAIN: &[u8] = b"capOS caller reference";

/// The reference of session `identity` at endpoint `scope`.
pub fn caller_reference(
    secret: &[u8; SECRET_LEN],
    scope: u64,
    identity: &[u8; IDENTITY_LEN],
) -> [u8; REFERENCE_LEN] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(REFERENCE_DOMAIN);
    mac.update(&scope.to_le_bytes());
    mac.update(identity);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; REFERENCE_LEN];
    out.copy_from_slice(&full[..REFERENCE_LEN]);
    out
}

/// One endpoint's last computed reference: a stream of calls from one
/// session costs one HMAC.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferenceCache {
    last: Option<([u8; IDENTITY_LEN], [u8; REFERENCE_LEN])>,
}

impl ReferenceCache {
    /// An empty cache.
    pub const fn new() -> Self {
        ReferenceCache { last: None }
    }

    /// The reference of `identity` at `scope`, computed only if it is not
    /// the last one asked for. Returns it and whether it was computed.
    pub fn get(
        &mut self,
        secret: &[u8; SECRET_LEN],
        scope: u64,
        identity: &[u8; IDENTITY_LEN],
    ) -> ([u8; REFERENCE_LEN], bool) {
        if let Some((id, r)) = &self.last {
            if id == identity {
                return (*r, false);
            }
        }
        let r = caller_reference(secret, scope, identity);
        self.last = Some((*identity, r));
        (r, true)
    }
}

/// Why a label is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelTooLong {
    /// Its length in bytes.
    pub len: usize,
}

/// Checks a principal or profile label's length.
pub fn check_label(label: &str) -> Result<(), LabelTooLong> {
    if label.len() > MAX_LABEL {
        Err(LabelTooLong { len: label.len() })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = {
        let mut s = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            s[i] = i as u8;
            i += 1;
        }
        s
    };
    const ID: [u8; 16] = {
        let mut s = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            s[i] = 0x40 + i as u8;
            i += 1;
        }
        s
    };

    #[test]
    fn known_answer() {
        // hmac.new(bytes(range(32)), b"capOS caller reference"
        //   + (7).to_bytes(8, "little") + bytes(range(0x40, 0x50)),
        //   hashlib.sha256).hexdigest()[:32], computed with Python.
        let r = caller_reference(&SECRET, 7, &ID);
        let hex: alloc::string::String = r.iter().map(|b| alloc::format!("{b:02x}")).collect();
        assert_eq!(hex, "3cb59215473b569444e08faaf05733ee");
    }

    #[test]
    fn stable_for_the_same_inputs() {
        assert_eq!(
            caller_reference(&SECRET, 3, &ID),
            caller_reference(&SECRET, 3, &ID)
        );
    }

    #[test]
    fn differs_per_scope_session_and_secret() {
        let base = caller_reference(&SECRET, 3, &ID);
        assert_ne!(base, caller_reference(&SECRET, 4, &ID));
        let mut other = ID;
        other[15] ^= 1;
        assert_ne!(base, caller_reference(&SECRET, 3, &other));
        let mut secret = SECRET;
        secret[0] ^= 1;
        assert_ne!(base, caller_reference(&secret, 3, &ID));
    }

    #[test]
    fn cache_computes_once_per_run_of_one_session() {
        let mut c = ReferenceCache::new();
        let (a, fresh) = c.get(&SECRET, 3, &ID);
        assert!(fresh);
        let (b, fresh) = c.get(&SECRET, 3, &ID);
        assert!(!fresh);
        assert_eq!(a, b);
        let mut other = ID;
        other[0] ^= 1;
        let (o, fresh) = c.get(&SECRET, 3, &other);
        assert!(fresh);
        assert_ne!(o, a);
        assert_eq!(o, caller_reference(&SECRET, 3, &other));
    }

    #[test]
    fn labels_are_bounded() {
        assert!(check_label("").is_ok());
        assert!(check_label(&"a".repeat(64)).is_ok());
        assert_eq!(
            check_label(&"a".repeat(1024)),
            Err(LabelTooLong { len: 1024 })
        );
    }
}
