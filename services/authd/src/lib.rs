//! The credential store's logic, host-tested: the account table made from
//! the manifest's `sessions` section, password checks against Argon2id PHC
//! hashes (the `argon2` crate, no std), the volatile operator password
//! `setup` makes, and the per-terminal failure counter with its growing
//! delay. `main.rs` serves it as `CredentialStore` over an endpoint and
//! holds answers back on a Timer; nothing here knows about capabilities or
//! time sources (times are nanoseconds passed in).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Version};
use capos_rt::caps::manifest::phc;
use capos_rt::caps::manifest::SessionsConfig;

/// Longest password accepted, in bytes; longer ones are denied.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Bytes of salt `setup` asks the EntropySource for.
pub const SALT_BYTES: usize = 16;

/// The hash checked when the account is unknown, has no password, or the
/// attempt is refused before any check (too long, not UTF-8): Argon2id with
/// the same parameters as `mkmanifest passwd`'s, of a password nobody uses,
/// so that every attempt costs the same work.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$FmGk76NBZ8YL6Cb0ffPE8A$FwLEQsEPjZgPcgMoVqQy4AffAho/xPeb/eJ6esXRbKo";

/// The delay after the first failure, in nanoseconds (500 ms).
pub const BASE_DELAY_NANOS: u64 = 500_000_000;
/// The longest delay, in nanoseconds (16 s).
pub const MAX_DELAY_NANOS: u64 = 16_000_000_000;
/// Terminals whose failures are remembered at once; the least recently
/// seen is forgotten first.
pub const MAX_TERMINALS: usize = 64;
/// Bytes of a terminal key kept (the session manager passes a 16-byte
/// session reference); longer keys are cut to this.
pub const MAX_TERMINAL_KEY: usize = 64;

/// How a `verify` ends (`CredentialStore.VerifyOutcome`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The password is right: the account's principal and profile.
    Success {
        /// The account's principal.
        principal: String,
        /// The account's profile.
        profile: String,
    },
    /// Unknown account, wrong password, too long, not UTF-8: one answer.
    Denied,
    /// The account has no password yet.
    Unavailable,
}

/// Why `setup` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The manifest has no operator account.
    NoOperator,
    /// The operator has a password already (from the manifest or an earlier
    /// `setup`).
    AlreadySet,
    /// The password is empty or over [`MAX_PASSWORD_BYTES`].
    BadLength,
    /// Hashing failed.
    Hash,
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SetupError::NoOperator => "the manifest has no operator account",
            SetupError::AlreadySet => "the operator account has a password already",
            SetupError::BadLength => "the password must be 1 to 1024 bytes",
            SetupError::Hash => "hashing the password failed",
        })
    }
}

/// Why the account table could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

struct Account {
    name: String,
    principal: String,
    profile: String,
    /// The manifest's PHC string, if it has one.
    hash: Option<String>,
}

/// The account table and the volatile operator password.
pub struct Accounts {
    accounts: Vec<Account>,
    /// Index of the operator account.
    operator: Option<usize>,
    /// The PHC string `setup` made (RAM only).
    volatile: Option<String>,
}

/// What `status` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The operator account's name (empty without one).
    pub operator_account: String,
    /// Whether it has a password (manifest or volatile).
    pub operator_password_set: bool,
    /// Whether that password is the volatile one.
    pub volatile: bool,
}

impl Accounts {
    /// The table of `config`'s accounts. Every hash is checked again (the
    /// manifest check did it on the host; authd trusts nothing it reads).
    pub fn new(config: &SessionsConfig) -> Result<Accounts, ConfigError> {
        let mut accounts = Vec::with_capacity(config.accounts.len());
        let mut operator = None;
        for (i, a) in config.accounts.iter().enumerate() {
            if accounts.iter().any(|e: &Account| e.name == a.name) {
                return Err(ConfigError(alloc::format!(
                    "account {:?} is declared more than once",
                    a.name
                )));
            }
            let hash = if a.password_hash.is_empty() {
                None
            } else {
                phc::check(&a.password_hash).map_err(|e| {
                    ConfigError(alloc::format!("account {:?}: password hash {e}", a.name))
                })?;
                Some(a.password_hash.clone())
            };
            if a.profile == capos_rt::caps::manifest::OPERATOR_PROFILE {
                if operator.is_some() {
                    return Err(ConfigError("more than one operator account".into()));
                }
                operator = Some(i);
            }
            accounts.push(Account {
                name: a.name.clone(),
                principal: a.principal.clone(),
                profile: a.profile.clone(),
                hash,
            });
        }
        Ok(Accounts {
            accounts,
            operator,
            volatile: None,
        })
    }

    /// Checks `password` for the account named by the bytes `account`. The
    /// Argon2id work is the same whatever the outcome: a refused attempt
    /// checks [`DUMMY_HASH`] instead.
    pub fn verify(&self, account: &[u8], password: &[u8]) -> Outcome {
        let found = core::str::from_utf8(account)
            .ok()
            .and_then(|name| self.accounts.iter().position(|a| a.name == name));
        let acceptable = password.len() <= MAX_PASSWORD_BYTES;
        let hash = found.and_then(|i| self.hash_of(i));
        let Some(i) = found.filter(|_| acceptable) else {
            dummy_work(password);
            return Outcome::Denied;
        };
        let Some(hash) = hash else {
            dummy_work(password);
            return Outcome::Unavailable;
        };
        if check(hash, password) {
            let a = &self.accounts[i];
            Outcome::Success {
                principal: a.principal.clone(),
                profile: a.profile.clone(),
            }
        } else {
            Outcome::Denied
        }
    }

    fn hash_of(&self, i: usize) -> Option<&str> {
        self.accounts[i]
            .hash
            .as_deref()
            .or(if Some(i) == self.operator {
                self.volatile.as_deref()
            } else {
                None
            })
    }

    /// Sets the volatile operator password, hashed with `salt` (from the
    /// EntropySource), only while the operator has none. Answers the
    /// operator account's name.
    pub fn setup(&mut self, password: &[u8], salt: &[u8]) -> Result<&str, SetupError> {
        let i = self.operator.ok_or(SetupError::NoOperator)?;
        if self.hash_of(i).is_some() {
            return Err(SetupError::AlreadySet);
        }
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return Err(SetupError::BadLength);
        }
        self.volatile = Some(hash_password(password, salt).ok_or(SetupError::Hash)?);
        Ok(&self.accounts[i].name)
    }

    /// Whether `setup` is needed.
    pub fn status(&self) -> Status {
        match self.operator {
            None => Status {
                operator_account: String::new(),
                operator_password_set: false,
                volatile: false,
            },
            Some(i) => Status {
                operator_account: self.accounts[i].name.clone(),
                operator_password_set: self.hash_of(i).is_some(),
                volatile: self.accounts[i].hash.is_none() && self.volatile.is_some(),
            },
        }
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

/// The Argon2 context: Argon2id v19 (the parameters come from each hash).
fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        argon2::Params::default(),
    )
}

/// Whether `password` matches the PHC string `hash` (the crate compares
/// the outputs in constant time).
fn check(hash: &str, password: &[u8]) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2().verify_password(password, &parsed).is_ok(),
        Err(_) => false,
    }
}

/// The work of one check, thrown away.
fn dummy_work(password: &[u8]) {
    let password = password.get(..MAX_PASSWORD_BYTES).unwrap_or(password);
    let _ = core::hint::black_box(check(DUMMY_HASH, password));
}

/// An Argon2id PHC string of `password` with `salt` and the manifest's
/// default parameters (as `mkmanifest passwd` makes).
pub fn hash_password(password: &[u8], salt: &[u8]) -> Option<String> {
    let salt = SaltString::encode_b64(salt).ok()?;
    let d = phc::Params::DEFAULT;
    let params = argon2::Params::new(d.m, d.t, d.p, Some(32)).ok()?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    argon
        .hash_password(password, &salt)
        .ok()
        .map(|h| h.to_string())
}

/// The delay owed after `failures` consecutive failures:
/// 500 ms * 2^(failures - 1), at most 16 s; none without failures.
pub fn delay_nanos(failures: u32) -> u64 {
    match failures {
        0 => 0,
        n => BASE_DELAY_NANOS
            .checked_shl(n - 1)
            .filter(|d| *d <= MAX_DELAY_NANOS && n <= 32)
            .unwrap_or(MAX_DELAY_NANOS),
    }
}

struct Terminal {
    key: Vec<u8>,
    failures: u32,
    /// No answer to this terminal before this time.
    not_before: u64,
    /// When it was last seen (for eviction).
    seen: u64,
}

/// Consecutive failures per terminal and when each may next be answered.
#[derive(Default)]
pub struct Limiter {
    terminals: Vec<Terminal>,
}

impl Limiter {
    /// An empty table.
    pub fn new() -> Limiter {
        Limiter::default()
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        let key = &key[..key.len().min(MAX_TERMINAL_KEY)];
        self.terminals.iter().position(|t| t.key == key)
    }

    /// When an attempt from `key` that could be answered at `now` may be
    /// answered: `now`, or later while the terminal owes a delay.
    pub fn answer_at(&self, key: &[u8], now: u64) -> u64 {
        self.find(key)
            .map_or(now, |i| now.max(self.terminals[i].not_before))
    }

    /// Records an attempt from `key` answered at `answered`: a success
    /// clears the count; a failure counts, and the next answer waits for
    /// the delay that many failures owe, counted from `answered`.
    pub fn record(&mut self, key: &[u8], answered: u64, success: bool) {
        let found = self.find(key);
        if success {
            if let Some(i) = found {
                self.terminals.swap_remove(i);
            }
            return;
        }
        let i = match found {
            Some(i) => i,
            None => {
                if self.terminals.len() >= MAX_TERMINALS {
                    self.evict();
                }
                self.terminals.push(Terminal {
                    key: key[..key.len().min(MAX_TERMINAL_KEY)].to_vec(),
                    failures: 0,
                    not_before: 0,
                    seen: answered,
                });
                self.terminals.len() - 1
            }
        };
        let t = &mut self.terminals[i];
        t.failures = t.failures.saturating_add(1);
        t.not_before = answered.saturating_add(delay_nanos(t.failures));
        t.seen = answered;
    }

    /// Forgets the least recently seen terminal.
    fn evict(&mut self) {
        let oldest = self
            .terminals
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| t.seen)
            .map(|(i, _)| i);
        if let Some(i) = oldest {
            self.terminals.swap_remove(i);
        }
    }

    /// The failures counted for `key`.
    pub fn failures(&self, key: &[u8]) -> u32 {
        self.find(key).map_or(0, |i| self.terminals[i].failures)
    }

    /// How many terminals are remembered.
    pub fn len(&self) -> usize {
        self.terminals.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.terminals.is_empty()
    }
}

/// One `verify` decided: the outcome and when to answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What to answer.
    pub outcome: Outcome,
    /// No sooner than this (nanoseconds, the caller's clock).
    pub answer_at: u64,
    /// How long the answer is held back beyond `now` (`delayedMillis`).
    pub delayed_nanos: u64,
}

/// Decides one `verify` that finished its check at `now`: the outcome, and
/// when the terminal may be answered; records the attempt. A failure (and
/// `unavailable` counts as one: the password was not accepted) is held for
/// the delay its place in the run of failures owes, after the check, so
/// that each is answered later than the one before however long the check
/// itself takes; no answer comes before the delay the last failure owed.
pub fn decide(limiter: &mut Limiter, terminal: &[u8], outcome: Outcome, now: u64) -> Verdict {
    let owed = limiter.answer_at(terminal, now);
    let success = matches!(outcome, Outcome::Success { .. });
    let answer_at = if success {
        owed
    } else {
        let held = delay_nanos(limiter.failures(terminal).saturating_add(1));
        owed.max(now.saturating_add(held))
    };
    limiter.record(terminal, answer_at, success);
    Verdict {
        outcome,
        answer_at,
        delayed_nanos: answer_at - now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capos_rt::caps::manifest::Account as ManifestAccount;

    fn config(operator_hash: &str, guest_hash: &str) -> SessionsConfig {
        let account = |name: &str, profile: &str, hash: &str| ManifestAccount {
            name: name.into(),
            principal: alloc::format!("{name}-p"),
            profile: profile.into(),
            password_hash: hash.into(),
        };
        SessionsConfig {
            accounts: vec![
                account("operator", "operator", operator_hash),
                account("guest", "guest", guest_hash),
            ],
            profiles: vec![],
        }
    }

    fn mkmanifest_hash(password: &[u8]) -> String {
        capos_rt::caps::manifest::phc::hash_password(password).unwrap()
    }

    #[test]
    fn the_dummy_hash_is_acceptable_with_the_default_parameters() {
        assert_eq!(phc::check(DUMMY_HASH), Ok(phc::Params::DEFAULT));
    }

    #[test]
    fn a_mkmanifest_hash_verifies_and_wrong_passwords_are_denied() {
        let accounts = Accounts::new(&config(&mkmanifest_hash(b"hunter2"), "")).unwrap();
        assert_eq!(
            accounts.verify(b"operator", b"hunter2"),
            Outcome::Success {
                principal: "operator-p".into(),
                profile: "operator".into()
            }
        );
        assert_eq!(accounts.verify(b"operator", b"hunter3"), Outcome::Denied);
        assert_eq!(accounts.verify(b"operator", b""), Outcome::Denied);
        // Unknown accounts: the same answer.
        assert_eq!(accounts.verify(b"root", b"hunter2"), Outcome::Denied);
        assert_eq!(accounts.verify(b"", b"hunter2"), Outcome::Denied);
        // No password yet.
        assert_eq!(accounts.verify(b"guest", b"anything"), Outcome::Unavailable);
    }

    #[test]
    fn long_passwords_and_non_utf8_names_are_denied() {
        let long = vec![b'a'; MAX_PASSWORD_BYTES + 1];
        let hash = mkmanifest_hash(&long);
        let accounts = Accounts::new(&config(&hash, "")).unwrap();
        // Even the right one, over the limit.
        assert_eq!(accounts.verify(b"operator", &long), Outcome::Denied);
        assert_eq!(
            accounts.verify(b"operator", &vec![0u8; 1 << 20]),
            Outcome::Denied
        );
        assert_eq!(accounts.verify(b"oper\xffator", b"x"), Outcome::Denied);
        assert_eq!(accounts.verify(b"\xc3", b"x"), Outcome::Denied);
        // Exactly 1024 bytes is fine.
        let edge = vec![b'b'; MAX_PASSWORD_BYTES];
        let accounts = Accounts::new(&config(&mkmanifest_hash(&edge), "")).unwrap();
        assert!(matches!(
            accounts.verify(b"operator", &edge),
            Outcome::Success { .. }
        ));
    }

    #[test]
    fn refused_attempts_do_argon2_work_too() {
        // Not a timing proof (that needs a quiet machine), but a check that
        // the unknown-account path is not a shortcut: it takes at least a
        // third of a real check's time.
        let accounts = Accounts::new(&config(&mkmanifest_hash(b"pw"), "")).unwrap();
        let time = |f: &dyn Fn()| {
            let t = std::time::Instant::now();
            f();
            t.elapsed()
        };
        let known = time(&|| {
            accounts.verify(b"operator", b"nope");
        });
        let unknown = time(&|| {
            accounts.verify(b"nobody", b"nope");
        });
        let unavailable = time(&|| {
            accounts.verify(b"guest", b"nope");
        });
        assert!(unknown * 3 > known, "{unknown:?} vs {known:?}");
        assert!(unavailable * 3 > known, "{unavailable:?} vs {known:?}");
    }

    #[test]
    fn bad_config_hashes_are_refused() {
        assert!(Accounts::new(&config("$2b$12$abc", "")).is_err());
        let weak = DUMMY_HASH.replace("t=2", "t=1");
        let e = Accounts::new(&config(&weak, "")).err().unwrap();
        assert!(e
            .0
            .starts_with("account \"operator\": password hash has parameters"));
    }

    #[test]
    fn setup_works_once_and_only_without_a_password() {
        let mut accounts = Accounts::new(&config("", "")).unwrap();
        assert_eq!(
            accounts.status(),
            Status {
                operator_account: "operator".into(),
                operator_password_set: false,
                volatile: false
            }
        );
        assert_eq!(accounts.verify(b"operator", b"pw"), Outcome::Unavailable);
        assert_eq!(
            accounts.setup(b"", &[7; SALT_BYTES]),
            Err(SetupError::BadLength)
        );
        assert_eq!(
            accounts.setup(&[1; MAX_PASSWORD_BYTES + 1], &[7; SALT_BYTES]),
            Err(SetupError::BadLength)
        );
        assert_eq!(accounts.setup(b"first", &[7; SALT_BYTES]), Ok("operator"));
        assert_eq!(
            accounts.setup(b"second", &[8; SALT_BYTES]),
            Err(SetupError::AlreadySet)
        );
        assert!(matches!(
            accounts.verify(b"operator", b"first"),
            Outcome::Success { .. }
        ));
        assert_eq!(accounts.verify(b"operator", b"second"), Outcome::Denied);
        // The guest account is not the operator's: still unavailable.
        assert_eq!(accounts.verify(b"guest", b"first"), Outcome::Unavailable);
        assert_eq!(
            accounts.status(),
            Status {
                operator_account: "operator".into(),
                operator_password_set: true,
                volatile: true
            }
        );

        // With a manifest password, never.
        let mut set = Accounts::new(&config(&mkmanifest_hash(b"pw"), "")).unwrap();
        assert_eq!(
            set.setup(b"x", &[7; SALT_BYTES]),
            Err(SetupError::AlreadySet)
        );
        assert!(!set.status().volatile);
        assert!(set.status().operator_password_set);
        // Without an operator, never.
        let mut none = Accounts::new(&SessionsConfig::default()).unwrap();
        assert_eq!(
            none.setup(b"x", &[7; SALT_BYTES]),
            Err(SetupError::NoOperator)
        );
        assert_eq!(none.status().operator_account, "");
    }

    #[test]
    fn delays_double_from_half_a_second_to_sixteen() {
        let ms: Vec<u64> = (0..9).map(|n| delay_nanos(n) / 1_000_000).collect();
        assert_eq!(ms, [0, 500, 1000, 2000, 4000, 8000, 16000, 16000, 16000]);
        assert_eq!(delay_nanos(u32::MAX), MAX_DELAY_NANOS);
        assert_eq!(delay_nanos(64), MAX_DELAY_NANOS);
    }

    #[test]
    fn the_rate_limiter_holds_answers_back() {
        const S: u64 = 1_000_000_000;
        let mut l = Limiter::new();
        let fail = || Outcome::Denied;
        // A first failure is held 500 ms after its check.
        let v = decide(&mut l, b"tty", fail(), 10 * S);
        assert_eq!((v.answer_at, v.delayed_nanos), (10 * S + S / 2, S / 2));
        // Retried at once: held 1 s after its own check, which is later
        // than the 500 ms owed after the first answer.
        let v = decide(&mut l, b"tty", fail(), 10 * S + S / 2 + 100);
        assert_eq!(v.answer_at, 11 * S + S / 2 + 100);
        assert_eq!(v.delayed_nanos, S);
        // A retry before the owed time waits for it: 1 s owed after the
        // second answer, 2 s held after this check.
        let v = decide(&mut l, b"tty", fail(), 11 * S + S / 2 + 100);
        assert_eq!(v.answer_at, 13 * S + S / 2 + 100);
        // Long after: only its own hold, 4 s.
        let v = decide(&mut l, b"tty", fail(), 30 * S);
        assert_eq!((v.answer_at, v.delayed_nanos), (34 * S, 4 * S));
        assert_eq!(l.failures(b"tty"), 4);
        // Another terminal starts from its own first failure.
        let v = decide(&mut l, b"other", fail(), 30 * S);
        assert_eq!(v.delayed_nanos, S / 2);
        // A success waits for what the last failure owed (4 s after it),
        // is not held beyond that, and clears the count.
        let ok = Outcome::Success {
            principal: "p".into(),
            profile: "q".into(),
        };
        let v = decide(&mut l, b"tty", ok.clone(), 35 * S);
        assert_eq!(v.delayed_nanos, 3 * S);
        assert_eq!(l.failures(b"tty"), 0);
        let v = decide(&mut l, b"tty", ok, 60 * S);
        assert_eq!(v.delayed_nanos, 0);
        let v = decide(&mut l, b"tty", fail(), 70 * S);
        assert_eq!(v.delayed_nanos, S / 2);
        // Failures pile up to the 16 s cap.
        let mut now = 100 * S;
        for _ in 0..10 {
            now = decide(&mut l, b"x", fail(), now).answer_at;
        }
        let v = decide(&mut l, b"x", fail(), now);
        assert_eq!(v.delayed_nanos, 16 * S);
        // `unavailable` counts as a failure.
        decide(&mut l, b"u", Outcome::Unavailable, 0);
        assert_eq!(l.failures(b"u"), 1);
    }

    #[test]
    fn the_terminal_table_is_bounded_and_forgets_the_oldest() {
        const S: u64 = 1_000_000_000;
        let mut l = Limiter::new();
        for i in 0..(2 * MAX_TERMINALS as u64) {
            decide(&mut l, &i.to_le_bytes(), Outcome::Denied, i * S);
        }
        assert_eq!(l.len(), MAX_TERMINALS);
        assert_eq!(l.failures(&0u64.to_le_bytes()), 0);
        assert_eq!(l.failures(&(2 * MAX_TERMINALS as u64 - 1).to_le_bytes()), 1);
        // A terminal that keeps failing is seen recently and stays.
        let mut now = 1000 * S;
        for _ in 0..6 {
            now = decide(&mut l, b"victim", Outcome::Denied, now).answer_at;
        }
        for i in 0..(MAX_TERMINALS as u64 - 1) {
            decide(&mut l, &(i + 1000).to_le_bytes(), Outcome::Denied, now);
        }
        assert_eq!(l.failures(b"victim"), 6);
        // Long keys are cut, not stored whole.
        let long = vec![9u8; 4096];
        decide(&mut l, &long, Outcome::Denied, 2000 * S);
        assert_eq!(l.failures(&long[..MAX_TERMINAL_KEY]), 1);
        assert_eq!(l.len(), MAX_TERMINALS);
    }
}
