//! The session manager's state, kept apart from its service loop so that it
//! is tested on the host (`cargo test -p sessiond --lib`): the profiles and
//! accounts of the manifest's `sessions` section, the table of live
//! sessions (found by the caller reference each of the manager's endpoints
//! sees), and the append-only audit log.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use capos_rt::capnp;
use capos_rt::caps::schema::manifest_capnp::sessions_config;

/// The manager's endpoints, in the order a session's references are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// `SessionManager`.
    Sessions = 0,
    /// The restricted `Launcher`.
    Launcher = 1,
    /// `AuditLog`.
    Audit = 2,
}

/// How many doors ([`Door`]).
pub const DOORS: usize = 3;

/// A caller reference: what an endpoint's server sees of a session.
pub type Reference = [u8; 16];

/// The profile anonymous sessions get.
pub const ANONYMOUS: &str = "anonymous";
/// The profile of the account `setup` gives a password to.
pub const OPERATOR: &str = "operator";
/// The bundle name of the manager's own audit log.
pub const AUDIT: &str = "audit";

/// An account as the session manager knows it (never its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// What `login` asks for.
    pub name: String,
    /// The principal, for audit.
    pub principal: String,
    /// Its profile.
    pub profile: String,
}

/// What a profile's sessions receive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// Binaries its launcher starts.
    pub launchable: Vec<String>,
    /// Names of the manager's caps its bundle holds ([`AUDIT`]: the log).
    pub bundle: Vec<String>,
}

/// The manifest's `sessions` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Every account.
    pub accounts: Vec<Account>,
    /// Every profile.
    pub profiles: Vec<Profile>,
}

/// Why the configuration could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn text(t: capnp::Result<capnp::text::Reader<'_>>, what: &str) -> Result<String, ConfigError> {
    t.ok()
        .and_then(|t| t.to_str().ok())
        .map(String::from)
        .ok_or_else(|| ConfigError(alloc::format!("{what} is not UTF-8 text")))
}

fn texts(
    l: capnp::Result<capnp::text_list::Reader<'_>>,
    what: &str,
) -> Result<Vec<String>, ConfigError> {
    let l = l.map_err(|e| ConfigError(alloc::format!("{what}: {e}")))?;
    l.iter().map(|t| text(t, what)).collect()
}

impl Config {
    /// Reads the configuration from the bytes of the `config` memory: a
    /// little-endian u64 length, then a `SessionsConfig` message.
    pub fn from_framed(bytes: &[u8]) -> Result<Config, ConfigError> {
        let len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
            .ok_or_else(|| ConfigError("the configuration is shorter than its length".into()))?;
        let body = bytes
            .get(8..8usize.saturating_add(len))
            .ok_or_else(|| ConfigError("the configuration's length runs past its memory".into()))?;
        Config::decode(body)
    }

    /// Reads a `SessionsConfig` message.
    pub fn decode(message: &[u8]) -> Result<Config, ConfigError> {
        let words = aligned(message);
        let reader = capnp::serialize::read_message_from_flat_slice(
            &mut capnp::Word::words_to_bytes(&words),
            capnp::message::ReaderOptions::new(),
        )
        .map_err(|e| ConfigError(alloc::format!("the configuration does not decode: {e}")))?;
        let root: sessions_config::Reader<'_> = reader
            .get_root()
            .map_err(|e| ConfigError(alloc::format!("the configuration does not decode: {e}")))?;
        let mut config = Config::default();
        let accounts = root
            .get_accounts()
            .map_err(|e| ConfigError(alloc::format!("accounts: {e}")))?;
        for a in accounts.iter() {
            config.accounts.push(Account {
                name: text(a.get_name(), "an account name")?,
                principal: text(a.get_principal(), "a principal")?,
                profile: text(a.get_profile(), "an account's profile")?,
            });
        }
        let profiles = root
            .get_profiles()
            .map_err(|e| ConfigError(alloc::format!("profiles: {e}")))?;
        for p in profiles.iter() {
            config.profiles.push(Profile {
                name: text(p.get_name(), "a profile name")?,
                launchable: texts(p.get_launchable(), "a launchable binary")?,
                bundle: texts(p.get_bundle(), "a bundle entry")?,
            });
        }
        Ok(config)
    }

    /// The profile named `name`; an unknown one (or `anonymous` when the
    /// manifest does not describe it) grants nothing.
    pub fn profile(&self, name: &str) -> Profile {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .unwrap_or_else(|| Profile {
                name: name.to_string(),
                ..Profile::default()
            })
    }

    /// The account with principal `principal`.
    pub fn by_principal(&self, principal: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.principal == principal)
    }

    /// The operator account, if the manifest has one.
    pub fn operator(&self) -> Option<&Account> {
        self.accounts.iter().find(|a| a.profile == OPERATOR)
    }
}

/// `bytes` copied into words, so that a message decodes whatever its
/// alignment in memory.
fn aligned(bytes: &[u8]) -> Vec<capnp::Word> {
    let mut words = alloc::vec![capnp::word(0, 0, 0, 0, 0, 0, 0, 0); bytes.len().div_ceil(8)];
    capnp::Word::words_to_bytes_mut(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

impl Profile {
    /// Whether its launcher may start `binary`.
    pub fn may_launch(&self, binary: &str) -> bool {
        self.launchable.iter().any(|b| b == binary)
    }

    /// Whether its bundle holds the audit log.
    pub fn reads_audit(&self) -> bool {
        self.bundle.iter().any(|b| b == AUDIT)
    }
}

/// One live session: its labels, the caller reference each door sees for
/// it, and the manager's handle on it (`S`: the UserSession capability).
pub struct Session<S> {
    /// The account's principal ("" for anonymous).
    pub principal: String,
    /// Its profile.
    pub profile: String,
    /// The reference each [`Door`] sees for calls in it.
    pub references: [Reference; DOORS],
    /// The manager's UserSession capability.
    pub handle: S,
}

/// The live sessions the manager made.
pub struct Table<S> {
    sessions: Vec<Session<S>>,
    limit: usize,
}

/// The table is full.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl<S> Table<S> {
    /// An empty table holding at most `limit` sessions.
    pub fn new(limit: usize) -> Self {
        Table {
            sessions: Vec::new(),
            limit,
        }
    }

    /// Adds `session`, unless `limit` sessions are live.
    pub fn insert(&mut self, session: Session<S>) -> Result<(), Full> {
        if self.sessions.len() >= self.limit {
            return Err(Full);
        }
        self.sessions.push(session);
        Ok(())
    }

    /// The session a call through `door` with caller reference `reference`
    /// belongs to.
    pub fn find(&self, door: Door, reference: &Reference) -> Option<&Session<S>> {
        self.sessions
            .iter()
            .find(|s| s.references[door as usize] == *reference)
    }

    /// Takes the session `door` sees as `reference` out of the table.
    pub fn remove(&mut self, door: Door, reference: &Reference) -> Option<Session<S>> {
        let at = self
            .sessions
            .iter()
            .position(|s| s.references[door as usize] == *reference)?;
        Some(self.sessions.swap_remove(at))
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// What an audit record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A password was accepted.
    LoginSuccess,
    /// A password was refused.
    LoginFailure,
    /// `setup` set the volatile operator password.
    Setup,
    /// A session began.
    SessionStart,
    /// A session ended.
    SessionEnd,
    /// A process was launched.
    Launch,
    /// A launch was refused.
    LaunchRefused,
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number (from 0, never reused).
    pub seq: u64,
    /// When (monotonic nanoseconds).
    pub nanos: u64,
    /// What happened.
    pub event: Event,
    /// The session's reference as the manager's `sessions` door sees it.
    pub session: Reference,
    /// The principal, where one is known.
    pub principal: String,
    /// Binary, reason, delay.
    pub detail: String,
}

/// The append-only audit log. It keeps the newest `capacity` records:
/// older ones are dropped whole, and readers see the gap in `seq`.
pub struct Audit {
    records: VecDeque<Record>,
    next: u64,
    capacity: usize,
}

impl Audit {
    /// An empty log keeping at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Audit {
            records: VecDeque::new(),
            next: 0,
            capacity: capacity.max(1),
        }
    }

    /// Appends a record; returns its seq.
    pub fn append(
        &mut self,
        nanos: u64,
        event: Event,
        session: Reference,
        principal: &str,
        detail: &str,
    ) -> u64 {
        let seq = self.next;
        self.next += 1;
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(Record {
            seq,
            nanos,
            event,
            session,
            principal: principal.to_string(),
            detail: detail.to_string(),
        });
        seq
    }

    /// At most `max` records with `seq >= from`, and the seq to read from
    /// next.
    pub fn read(&self, from: u64, max: usize) -> (Vec<&Record>, u64) {
        let out: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.seq >= from)
            .take(max)
            .collect();
        let next = out.last().map_or(from.max(self.first()), |r| r.seq + 1);
        (out, next)
    }

    /// The oldest seq still kept.
    fn first(&self) -> u64 {
        self.records.front().map_or(self.next, |r| r.seq)
    }
}

/// A reference as short hex, for logs (the first 8 bytes).
pub fn short_hex(r: &Reference) -> String {
    let mut s = String::with_capacity(16);
    for b in &r[..8] {
        s.push_str(&alloc::format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;


    fn sample() -> Vec<u8> {
        let mut m = capnp::message::Builder::new_default();
        let mut root = m.init_root::<sessions_config::Builder<'_>>();
        let mut accounts = root.reborrow().init_accounts(2);
        let mut a = accounts.reborrow().get(0);
        a.set_name("operator");
        a.set_principal("op-1");
        a.set_profile("operator");
        a.set_password_hash("$argon2id$...");
        let mut g = accounts.get(1);
        g.set_name("guest");
        g.set_principal("guest-1");
        g.set_profile("guest");
        let mut profiles = root.init_profiles(1);
        let mut p = profiles.reborrow().get(0);
        p.set_name("operator");
        let mut l = p.reborrow().init_launchable(1);
        l.set(0, "hello");
        let mut b = p.init_bundle(2);
        b.set(0, "systemInfo");
        b.set(1, "audit");
        capnp::serialize::write_message_to_words(&m)
    }

    #[test]
    fn config_decodes_framed_and_never_keeps_hashes() {
        let body = sample();
        let mut framed = (body.len() as u64).to_le_bytes().to_vec();
        framed.extend_from_slice(&body);
        framed.extend_from_slice(&[0xAA; 40]); // the rest of the page
        let c = Config::from_framed(&framed).unwrap();
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.operator().unwrap().principal, "op-1");
        assert_eq!(c.by_principal("guest-1").unwrap().name, "guest");
        let op = c.profile("operator");
        assert!(op.may_launch("hello") && !op.may_launch("shell"));
        assert!(op.reads_audit());
        assert!(format!("{c:?}").find("argon2").is_none());
    }

    #[test]
    fn unknown_and_anonymous_profiles_grant_nothing() {
        let c = Config::decode(&sample()).unwrap();
        for name in [ANONYMOUS, "guest", "nobody"] {
            let p = c.profile(name);
            assert_eq!(p.name, name);
            assert!(p.launchable.is_empty() && p.bundle.is_empty());
            assert!(!p.may_launch("hello") && !p.reads_audit());
        }
    }

    #[test]
    fn config_refuses_short_lying_and_garbage_input() {
        assert!(Config::from_framed(&[1, 2, 3]).is_err());
        let mut lying = 4096u64.to_le_bytes().to_vec();
        lying.extend_from_slice(&sample());
        assert!(Config::from_framed(&lying).is_err());
        assert!(Config::decode(&[0xFF; 64]).is_err());
        assert!(Config::decode(&[]).is_err());
    }

    fn session(n: u8) -> Session<u8> {
        Session {
            principal: String::new(),
            profile: ANONYMOUS.into(),
            references: [[n; 16], [n + 100; 16], [n + 200; 16]],
            handle: n,
        }
    }

    #[test]
    fn table_finds_by_each_doors_reference_and_is_bounded() {
        let mut t = Table::new(2);
        t.insert(session(1)).unwrap();
        t.insert(session(2)).unwrap();
        assert_eq!(t.insert(session(3)), Err(Full));
        assert_eq!(t.find(Door::Sessions, &[2; 16]).unwrap().handle, 2);
        assert_eq!(t.find(Door::Launcher, &[102; 16]).unwrap().handle, 2);
        assert_eq!(t.find(Door::Audit, &[201; 16]).unwrap().handle, 1);
        // A reference one door sees means nothing at another.
        assert!(t.find(Door::Launcher, &[2; 16]).is_none());
        assert_eq!(t.remove(Door::Sessions, &[1; 16]).unwrap().handle, 1);
        assert!(t.find(Door::Audit, &[201; 16]).is_none());
        assert_eq!(t.len(), 1);
        t.insert(session(3)).unwrap();
    }

    #[test]
    fn audit_is_append_only_in_order_and_shows_gaps() {
        let mut a = Audit::new(3);
        for i in 0..5u64 {
            assert_eq!(
                a.append(i * 10, Event::Launch, [0; 16], "p", &format!("n{i}")),
                i
            );
        }
        let (r, next) = a.read(0, 10);
        assert_eq!(r.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(next, 5);
        let (r, next) = a.read(3, 1);
        assert_eq!((r[0].seq, next), (3, 4));
        let (r, next) = a.read(9, 5);
        assert!(r.is_empty());
        assert_eq!(next, 9);
        let empty = Audit::new(4);
        let (r, next) = empty.read(0, 5);
        assert!(r.is_empty());
        assert_eq!(next, 0);
    }
}
