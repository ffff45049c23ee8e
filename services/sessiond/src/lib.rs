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

pub use capos_rt::caps::manifest::{Profile, SessionsConfig};

/// The manifest's `sessions` section as the session manager keeps it:
/// every password hash dropped (they are the credential store's).
pub fn without_hashes(mut config: SessionsConfig) -> SessionsConfig {
    for a in &mut config.accounts {
        a.password_hash.clear();
    }
    config
}

/// The profile named `name`; an unknown one (or `anonymous` when the
/// manifest does not describe it) grants nothing.
pub fn profile(config: &SessionsConfig, name: &str) -> Profile {
    config.profile(name).cloned().unwrap_or_else(|| Profile {
        name: name.to_string(),
        ..Profile::default()
    })
}

/// Whether `profile`'s launcher may start `binary`.
pub fn may_launch(profile: &Profile, binary: &str) -> bool {
    profile.launchable.iter().any(|b| b == binary)
}

/// Whether `profile`'s bundle holds the audit log.
pub fn reads_audit(profile: &Profile) -> bool {
    profile.bundle.iter().any(|b| b == AUDIT)
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

    use capos_rt::caps::manifest::Account;

    fn sample() -> SessionsConfig {
        SessionsConfig {
            accounts: vec![
                Account {
                    name: "operator".into(),
                    principal: "op-1".into(),
                    profile: "operator".into(),
                    password_hash: "$argon2id$v=19$...".into(),
                },
                Account {
                    name: "guest".into(),
                    principal: "guest-1".into(),
                    profile: "guest".into(),
                    password_hash: String::new(),
                },
            ],
            profiles: vec![Profile {
                name: "operator".into(),
                launchable: vec!["hello".into()],
                bundle: vec!["systemInfo".into(), "audit".into()],
            }],
        }
    }

    #[test]
    fn profiles_rule_launches_and_the_audit_log_and_hashes_are_dropped() {
        let c = without_hashes(sample());
        assert!(c.accounts.iter().all(|a| a.password_hash.is_empty()));
        assert_eq!(c.operator().unwrap().principal, "op-1");
        let op = profile(&c, "operator");
        assert!(may_launch(&op, "hello") && !may_launch(&op, "shell"));
        assert!(reads_audit(&op));
    }

    #[test]
    fn unknown_and_anonymous_profiles_grant_nothing() {
        let c = sample();
        for name in [ANONYMOUS, "guest", "nobody"] {
            let p = profile(&c, name);
            assert_eq!(p.name, name);
            assert!(p.launchable.is_empty() && p.bundle.is_empty());
            assert!(!may_launch(&p, "hello") && !reads_audit(&p));
        }
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
