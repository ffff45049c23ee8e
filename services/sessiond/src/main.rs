//! sessiond, the session manager (`docs/sessions.md`). It holds the
//! kernel's SessionAuthority and serves three doors, each its own endpoint:
//!
//! - `sessions` (`SessionManager`): anonymous sessions for terminals,
//!   `login` and `setup` (checked by the credential store, answered once it
//!   answers, while other calls go on being served), `logout`, `current`,
//!   `bundle`;
//! - `launcher` (the restricted `Launcher`): starts only what the caller's
//!   session's profile allows, with exactly the grants named, in that
//!   session;
//! - `audit` (`AuditLog`): the append-only record of the above, for
//!   profiles whose bundle names `audit`.
//!
//! Who calls is the caller reference the kernel delivers with each call
//! (`RECV_FLAG_CALLER_SESSION`), never a parameter: every capability handed
//! to a session is scoped to it, so its calls carry it.
//!
//! Capabilities: `authority` (SessionAuthority), `spawner` (a copy of
//! init's ProcessSpawner), `credentials` (a CredentialStore client),
//! `config` (the manifest's `sessions`, a MemoryObject), `timer`, the three
//! door endpoints, optionally `console`, and whatever the profiles'
//! bundles name.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use capos_rt::api::{CredentialStore, SessionAuthority, UserSession};
use capos_rt::caps::api::{audit_log, credential_store, launcher, session_manager};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::schema::services_capnp::{
    audit_log as audit_proto, audit_record, credential_store as cred_proto,
    launcher as launch_proto, session_manager as proto,
};
use capos_rt::ring::{TRANSFER_COPY, TRANSFER_MOVE};
use capos_rt::{
    capnp, Answer, Cap, CapHandle, ClientEndpoint, Console, Endpoint, IncomingCall, Interface,
    Owned, ProcessSpawner, Runtime, ServerCall, SpawnOptions, Ticket, Timer,
};
use core::cell::RefCell;
use sessiond::{
    may_launch, profile as profile_of, reads_audit, short_hex, without_hashes, Audit, Door, Event,
    Reference, Session, SessionsConfig, Table, ANONYMOUS, AUDIT, DOORS,
};

capos_rt::entry!(main);

use capos_rt::serve::PARAMS_CAPACITY;
/// Live sessions at most.
const MAX_SESSIONS: usize = 64;
/// Audit records kept.
const AUDIT_RECORDS: usize = 1024;
/// Logins and setups waiting for the credential store at most.
const MAX_PENDING: usize = 8;
/// Audit records one `read` answers at most.
const AUDIT_READ_MAX: usize = 64;
/// Names the manager's own door facets carry in a bundle.
const LAUNCHER_NAME: &str = "launcher";
const SESSIONS_NAME: &str = "sessions";

/// Exit codes.
mod code {
    pub const MISSING_CAP: i32 = 2;
    pub const BAD_CONFIG: i32 = 3;
    pub const RING: i32 = 4;
}

fn main(rt: &mut Runtime) -> i32 {
    let console = rt.cap::<Console>("console").ok();
    let say = |s: &str| {
        if let Some(c) = &console {
            let _ = c.write_line(s);
        }
    };
    let manager = match Manager::new(rt) {
        Ok(m) => m,
        Err((code, why)) => {
            say(&format!("sessiond: cannot start: {why}"));
            return code;
        }
    };
    say(&format!(
        "sessiond: serving {} accounts, {} profiles",
        manager.config.accounts.len(),
        manager.config.profiles.len()
    ));
    match manager.serve(&say) {
        Ok(()) => 0,
        Err(e) => {
            say(&format!("sessiond: the ring failed: {e}"));
            code::RING
        }
    }
}

/// A login or setup waiting for the credential store.
struct Pending {
    ticket: Ticket,
    call_id: u64,
    /// The caller's reference at the `sessions` door (its terminal).
    terminal: Reference,
    what: Waiting,
}

enum Waiting {
    Login { account: String },
    Setup,
}

struct State {
    table: Table<Owned<UserSession>>,
    audit: Audit,
    pending: Vec<Pending>,
    /// The caller reference of the call being served.
    caller: Reference,
}

struct Manager<'a> {
    rt: &'a Runtime,
    timer: Timer,
    authority: SessionAuthority,
    spawner: ProcessSpawner,
    credentials: CredentialStore,
    doors: [Endpoint; DOORS],
    config: SessionsConfig,
    state: RefCell<State>,
}

fn need<T: Interface>(rt: &Runtime, name: &str) -> Result<T, (i32, String)> {
    rt.cap::<T>(name)
        .map_err(|e| (code::MISSING_CAP, format!("{name}: {e}")))
}

impl<'a> Manager<'a> {
    fn new(rt: &'a Runtime) -> Result<Self, (i32, String)> {
        let config = capos_rt::config::sessions(rt)
            .map(without_hashes)
            .map_err(|e| (code::BAD_CONFIG, e))?;
        Ok(Manager {
            rt,
            timer: need(rt, "timer")?,
            authority: need(rt, "authority")?,
            spawner: need(rt, "spawner")?,
            credentials: need::<ClientEndpoint>(rt, "credentials")?.protocol(),
            doors: [
                need(rt, "sessions")?,
                need(rt, "launcher")?,
                need(rt, "audit")?,
            ],
            config,
            state: RefCell::new(State {
                table: Table::new(MAX_SESSIONS),
                audit: Audit::new(AUDIT_RECORDS),
                pending: Vec::new(),
                caller: [0; 16],
            }),
        })
    }

    /// Serves the three doors and the credential store's answers, forever.
    fn serve(&self, say: &dyn Fn(&str)) -> Result<(), capos_rt::CallError> {
        let ring = self.rt.ring().clone();
        let mut recvs: Vec<Ticket> = Vec::with_capacity(DOORS);
        for d in &self.doors {
            recvs.push(d.start_recv_with_session(PARAMS_CAPACITY)?);
        }
        loop {
            let waiting: Vec<Ticket> = recvs
                .iter()
                .copied()
                .chain(self.state.borrow().pending.iter().map(|p| p.ticket))
                .collect();
            let ready = ring.wait_any(&waiting)?;
            let Some(done) = ring.take(ready) else {
                continue;
            };
            if let Some(door) = recvs.iter().position(|t| *t == ready) {
                let ep = &self.doors[door];
                let outcome = ep
                    .finish_recv(done)
                    .and_then(|call| self.serve_call(door, call));
                if let Err(e) = outcome {
                    say(&format!("sessiond: a call was not answered: {e}"));
                }
                recvs[door] = ep.start_recv_with_session(PARAMS_CAPACITY)?;
                continue;
            }
            let pending = {
                let mut st = self.state.borrow_mut();
                let at = st.pending.iter().position(|p| p.ticket == ready);
                at.map(|at| st.pending.swap_remove(at))
            };
            if let Some(p) = pending {
                let call_id = p.call_id;
                let answer = self.finish_pending(p, done);
                self.answer(Door::Sessions, call_id, answer, say);
            }
        }
    }

    /// Answers `call_id` on `door` (see [`capos_rt::serve::answer_call`]).
    fn answer(&self, door: Door, call_id: u64, answer: Answer, say: &dyn Fn(&str)) {
        if let Err(e) = capos_rt::serve::answer_call(&self.doors[door as usize], call_id, answer) {
            say(&format!("sessiond: an answer was refused: {e}"));
        }
    }

    fn serve_call(&self, door: usize, call: IncomingCall) -> Result<(), capos_rt::CallError> {
        self.state.borrow_mut().caller = call.caller_reference.unwrap_or([0; 16]);
        let ep = &self.doors[door];
        match door {
            0 => capos_rt::serve::serve(ep, call, self, session_manager::dispatch),
            1 => capos_rt::serve::serve(ep, call, self, launcher::dispatch),
            _ => capos_rt::serve::serve(ep, call, self, audit_log::dispatch),
        }
    }

    fn now(&self) -> u64 {
        self.timer.now().unwrap_or(0)
    }

    fn audit(&self, event: Event, session: Reference, principal: &str, detail: &str) {
        let nanos = self.now();
        self.state
            .borrow_mut()
            .audit
            .append(nanos, event, session, principal, detail);
    }

    /// The caller's session as `door` sees it: (principal, profile).
    fn caller(&self, door: Door) -> Result<(String, String, Reference), CapException> {
        let st = self.state.borrow();
        st.table
            .find(door, &st.caller)
            .map(|s| (s.principal.clone(), s.profile.clone(), s.references[0]))
            .ok_or_else(|| {
                CapException::failed("the caller's session is not one this session manager made")
            })
    }

    /// A new session with these labels, in the table; its `sessions`-door
    /// reference.
    fn open(&self, principal: &str, profile: &str) -> Result<Reference, CapException> {
        if self.state.borrow().table.len() >= MAX_SESSIONS {
            return Err(CapException::overloaded("too many live sessions"));
        }
        let fail = |e: capos_rt::CallError| CapException::failed(format!("{e}"));
        let handle = self.authority.create(principal, profile).map_err(fail)?;
        let mut references = [[0u8; 16]; DOORS];
        for (i, door) in self.doors.iter().enumerate() {
            references[i] = self.authority.reference_at(&handle, door).map_err(fail)?;
        }
        let reference = references[0];
        self.state
            .borrow_mut()
            .table
            .insert(Session {
                principal: principal.to_string(),
                profile: profile.to_string(),
                references,
                handle,
            })
            .map_err(|_| CapException::overloaded("too many live sessions"))?;
        let detail = format!("profile {profile}");
        self.audit(Event::SessionStart, reference, principal, &detail);
        Ok(reference)
    }

    /// `cap` scoped to the session `reference` names.
    fn scoped(&self, session: &Cap, cap: &Cap) -> Result<CapHandle, CapException> {
        let fail = |e: capos_rt::CallError| CapException::failed(format!("scoping failed: {e}"));
        let mut reply = self
            .authority
            .call_scope(|_| {}, &[(session, TRANSFER_COPY), (cap, TRANSFER_COPY)])
            .map_err(fail)?;
        let index = reply.get().map_err(fail)?.get_scoped();
        reply.take_any(index).map_err(fail)
    }

    /// The bundle of the session `door` sees as `reference`: the two door
    /// facets and the profile's capabilities, each scoped to it, with a
    /// copy of the UserSession first when `with_session`.
    #[allow(clippy::type_complexity)]
    fn bundle_of(
        &self,
        reference: &Reference,
        with_session: bool,
    ) -> Result<(Vec<(String, CapHandle)>, Option<Cap>), CapException> {
        let st = self.state.borrow();
        let s = st
            .table
            .find(Door::Sessions, reference)
            .ok_or_else(|| CapException::failed("the session has ended"))?;
        let session = s.handle.cap().clone();
        let profile = profile_of(&self.config, &s.profile);
        drop(st);
        let fail = |e: capos_rt::CallError| CapException::failed(format!("{e}"));
        let mut out = Vec::new();
        for (name, door) in [
            (SESSIONS_NAME, Door::Sessions),
            (LAUNCHER_NAME, Door::Launcher),
        ] {
            let facet = self.doors[door as usize].client_facet().map_err(fail)?;
            out.push((name.to_string(), self.scoped(&session, facet.cap())?));
        }
        for name in &profile.bundle {
            let scoped = if name == AUDIT {
                let facet = self.doors[Door::Audit as usize]
                    .client_facet()
                    .map_err(fail)?;
                self.scoped(&session, facet.cap())?
            } else {
                let cap = self.rt.cap_any(name).map_err(|_| {
                    CapException::failed(format!(
                        "profile {}: bundle entry {name:?} is not a capability of the session manager",
                        profile.name
                    ))
                })?;
                self.scoped(&session, &cap)?
            };
            out.push((name.clone(), scoped));
        }
        Ok((out, with_session.then_some(session)))
    }

    /// An answer carrying a bundle: `bundle` in the result message, the
    /// capabilities moved (and the session copied) with it.
    fn bundle_answer(
        &self,
        cx: &mut ServerCall,
        outcome: Option<proto::LoginOutcome>,
        bundle: Vec<(String, CapHandle)>,
        session: Option<Cap>,
    ) -> Answer {
        let mut out = capnp::message::Builder::new_default();
        let mut caps: Vec<(Cap, u32)> = Vec::new();
        let first = u16::from(session.is_some());
        {
            let list_of = |list: capnp::struct_list::Builder<
                '_,
                capos_rt::caps::schema::services_capnp::bundle_cap::Owned,
            >| {
                let mut list = list;
                for (i, (name, cap)) in bundle.iter().enumerate() {
                    let mut e = list.reborrow().get(i as u32);
                    e.set_name(name.as_str());
                    e.set_cap(first + i as u16);
                    e.set_interface_id(cap.interface_id());
                    e.set_protocol(door_protocol(name));
                }
            };
            match outcome {
                Some(o) => {
                    let mut r = out.init_root::<proto::login_results::Builder<'_>>();
                    r.set_outcome(o);
                    r.set_session(0);
                    list_of(r.init_bundle(bundle.len() as u32));
                }
                None => {
                    let r = out.init_root::<proto::bundle_results::Builder<'_>>();
                    list_of(r.init_bundle(bundle.len() as u32));
                }
            }
        }
        if let Some(s) = session {
            caps.push((s, TRANSFER_COPY));
        }
        for (_, cap) in bundle {
            caps.push((cap.into_cap(), TRANSFER_MOVE));
        }
        cx.result_with_caps(&out, caps)
    }

    /// A login's answer once the credential store answered.
    fn finish_pending(&self, p: Pending, done: capos_rt::Completion) -> Answer {
        let mut cx = ServerCall {
            call_id: p.call_id,
            caller_pid: 0,
            caps: Vec::new(),
        };
        match p.what {
            Waiting::Login { account } => self.finish_login(&mut cx, p.terminal, &account, done),
            Waiting::Setup => self.finish_setup(&mut cx, p.terminal, done),
        }
    }

    fn finish_login(
        &self,
        cx: &mut ServerCall,
        terminal: Reference,
        account: &str,
        done: capos_rt::Completion,
    ) -> Answer {
        let verdict = done.into_result().and_then(|bytes| {
            let reply =
                capos_rt::Reply::<cred_proto::verify_results::Owned>::new(&bytes, Vec::new())?;
            let r = reply.get()?;
            let text = |t: capnp::Result<capnp::text::Reader<'_>>| {
                t.ok()
                    .and_then(|t| t.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            Ok((
                r.get_outcome().ok(),
                text(r.get_principal()),
                text(r.get_profile()),
                r.get_delayed_millis(),
            ))
        });
        let (outcome, principal, profile, delayed) = match verdict {
            Ok((Some(o), principal, profile, delayed)) => (o, principal, profile, delayed),
            _ => (
                cred_proto::VerifyOutcome::Unavailable,
                String::new(),
                String::new(),
                0,
            ),
        };
        let held = if delayed > 0 {
            format!(", answer held {delayed} ms")
        } else {
            String::new()
        };
        if outcome != cred_proto::VerifyOutcome::Success {
            let why = match outcome {
                cred_proto::VerifyOutcome::Unavailable => "unavailable",
                _ => "denied",
            };
            self.audit(
                Event::LoginFailure,
                terminal,
                "",
                &format!("account {account:?}: {why}{held}"),
            );
            let login = match outcome {
                cred_proto::VerifyOutcome::Unavailable => proto::LoginOutcome::Unavailable,
                _ => proto::LoginOutcome::Denied,
            };
            return self.bundle_answer(cx, Some(login), Vec::new(), None);
        }
        self.audit(
            Event::LoginSuccess,
            terminal,
            &principal,
            &format!(
                "account {account:?} from terminal {}{held}",
                short_hex(&terminal)
            ),
        );
        self.login_answer(cx, &principal, &profile)
    }

    fn finish_setup(
        &self,
        cx: &mut ServerCall,
        terminal: Reference,
        done: capos_rt::Completion,
    ) -> Answer {
        let account = done.into_result().and_then(|bytes| {
            let reply =
                capos_rt::Reply::<cred_proto::setup_results::Owned>::new(&bytes, Vec::new())?;
            Ok(reply
                .get()?
                .get_account()?
                .to_str()
                .map_err(|_| capos_rt::CallError::Protocol("account is not UTF-8"))?
                .to_string())
        });
        let account = match account {
            Ok(a) => a,
            Err(capos_rt::CallError::Exception(x)) => return Answer::Exception(x),
            Err(e) => return Answer::Exception(CapException::failed(format!("setup failed: {e}"))),
        };
        let Some(a) = self.config.accounts.iter().find(|a| a.name == account) else {
            return Answer::Exception(CapException::failed(
                "setup named an account the manifest does not have",
            ));
        };
        let (principal, profile) = (a.principal.clone(), a.profile.clone());
        self.audit(
            Event::Setup,
            terminal,
            &principal,
            "volatile operator password set (kept in memory until reboot)",
        );
        self.login_answer(cx, &principal, &profile)
    }

    /// A new session for `principal` and its bundle, as a login answer.
    fn login_answer(&self, cx: &mut ServerCall, principal: &str, profile: &str) -> Answer {
        let made = self
            .open(principal, profile)
            .and_then(|reference| self.bundle_of(&reference, true));
        match made {
            Ok((bundle, session)) => {
                self.bundle_answer(cx, Some(proto::LoginOutcome::Success), bundle, session)
            }
            Err(e) => Answer::Exception(e),
        }
    }

    /// Submits `method` on the credential store and waits for its answer in
    /// the loop.
    fn defer(
        &self,
        cx: &ServerCall,
        method: u16,
        params: Vec<u8>,
        what: Waiting,
    ) -> Result<Answer, CapException> {
        let mut st = self.state.borrow_mut();
        if st.pending.len() >= MAX_PENDING {
            return Err(CapException::overloaded(
                "too many logins in progress; try again",
            ));
        }
        let cap = self.credentials.cap();
        let ticket = cap
            .ring()
            .submit(cap.id(), method, params, 4096)
            .map_err(|e| CapException::failed(format!("the credential store: {e}")))?;
        let terminal = st.caller;
        st.pending.push(Pending {
            ticket,
            call_id: cx.call_id,
            terminal,
            what,
        });
        Ok(Answer::Later)
    }
}

impl session_manager::Server<ServerCall> for Manager<'_> {
    fn anonymous(&self, cx: &mut ServerCall) -> Answer {
        // Sessions are minted for terminals by whoever starts their shells
        // (init, a gateway), never by a session: a shell cannot fill the
        // table with anonymous sessions of its own.
        if self.caller(Door::Sessions).is_ok() {
            return Answer::Exception(CapException::failed(
                "a session cannot open anonymous sessions",
            ));
        }
        let made = self.open("", ANONYMOUS).and_then(|reference| {
            let st = self.state.borrow();
            st.table
                .find(Door::Sessions, &reference)
                .map(|s| s.handle.cap().clone())
                .ok_or_else(|| CapException::failed("the session vanished"))
        });
        match made {
            Ok(session) => {
                let mut out = capnp::message::Builder::new_default();
                out.init_root::<proto::anonymous_results::Builder<'_>>()
                    .set_session(0);
                cx.result_with_caps(&out, alloc::vec![(session, TRANSFER_COPY)])
            }
            Err(e) => Answer::Exception(e),
        }
    }

    fn login(&self, cx: &mut ServerCall, p: proto::login_params::Reader<'_>) -> Answer {
        // A name that is not text cannot be an account: the store denies it
        // like any other unknown name, after the same work.
        let account = p
            .get_account()
            .ok()
            .and_then(|t| t.to_str().ok())
            .unwrap_or("\u{fffd}")
            .to_string();
        let mut m = capnp::message::Builder::new_default();
        {
            let mut v = m.init_root::<cred_proto::verify_params::Builder<'_>>();
            v.set_account(account.as_str());
            v.set_password(p.get_password().unwrap_or(&[]));
            let terminal = self.state.borrow().caller;
            v.set_terminal(&terminal);
        }
        let params = capos_rt::wire::to_bytes(&m);
        self.defer(
            cx,
            credential_store::VERIFY,
            params,
            Waiting::Login { account },
        )
        .unwrap_or_else(Answer::Exception)
    }

    fn setup(&self, cx: &mut ServerCall, p: proto::setup_params::Reader<'_>) -> Answer {
        let mut m = capnp::message::Builder::new_default();
        m.init_root::<cred_proto::setup_params::Builder<'_>>()
            .set_password(p.get_password().unwrap_or(&[]));
        let params = capos_rt::wire::to_bytes(&m);
        self.defer(cx, credential_store::SETUP, params, Waiting::Setup)
            .unwrap_or_else(Answer::Exception)
    }

    fn logout(&self, cx: &mut ServerCall) -> Answer {
        let (principal, profile, reference) = match self.caller(Door::Sessions) {
            Ok(c) => c,
            Err(e) => return Answer::Exception(e),
        };
        if profile == ANONYMOUS {
            return Answer::Exception(CapException::failed("not logged in"));
        }
        let session = self
            .state
            .borrow_mut()
            .table
            .remove(Door::Sessions, &reference);
        if let Some(s) = session {
            if let Err(e) = self.authority.end_session(&s.handle) {
                return Answer::Exception(CapException::failed(format!(
                    "the session could not be ended: {e}"
                )));
            }
        }
        self.audit(Event::SessionEnd, reference, &principal, "logout");
        cx.empty()
    }

    fn current(&self, cx: &mut ServerCall) -> Answer {
        let (principal, profile, _) = match self.caller(Door::Sessions) {
            Ok(c) => c,
            Err(e) => return Answer::Exception(e),
        };
        let bundle = profile_of(&self.config, &profile).bundle;
        let mut out = capnp::message::Builder::new_default();
        let mut r = out.init_root::<proto::current_results::Builder<'_>>();
        r.set_principal(principal.as_str());
        r.set_profile(profile.as_str());
        r.set_live(true);
        let mut list = r.init_bundle(bundle.len() as u32);
        for (i, b) in bundle.iter().enumerate() {
            list.set(i as u32, b.as_str());
        }
        cx.result(&out)
    }

    fn bundle(&self, cx: &mut ServerCall) -> Answer {
        let reference = match self.caller(Door::Sessions) {
            Ok((_, _, r)) => r,
            Err(e) => return Answer::Exception(e),
        };
        match self.bundle_of(&reference, false) {
            Ok((bundle, _)) => self.bundle_answer(cx, None, bundle, None),
            Err(e) => Answer::Exception(e),
        }
    }

    fn setup_needed(&self, cx: &mut ServerCall) -> Answer {
        let status = self.credentials.status().and_then(|reply| {
            let r = reply.get()?;
            Ok((
                r.get_operator_password_set(),
                r.get_operator_account()?
                    .to_str()
                    .unwrap_or_default()
                    .to_string(),
            ))
        });
        match status {
            Ok((set, account)) => {
                let mut out = capnp::message::Builder::new_default();
                let mut r = out.init_root::<proto::setup_needed_results::Builder<'_>>();
                r.set_needed(!set && !account.is_empty());
                r.set_account(account.as_str());
                cx.result(&out)
            }
            Err(e) => Answer::Exception(CapException::failed(format!("the credential store: {e}"))),
        }
    }
}

impl launcher::Server<ServerCall> for Manager<'_> {
    fn launch(&self, cx: &mut ServerCall, p: launch_proto::launch_params::Reader<'_>) -> Answer {
        let (principal, profile, reference) = match self.caller(Door::Launcher) {
            Ok(c) => c,
            Err(e) => return Answer::Exception(e),
        };
        let session = self
            .state
            .borrow()
            .table
            .find(Door::Launcher, &self.state.borrow().caller)
            .map(|s| s.handle.cap().clone());
        let Some(session) = session else {
            return Answer::Exception(CapException::failed("the session has ended"));
        };
        let rules = profile_of(&self.config, &profile);
        let allowed = |binary: &str| {
            if may_launch(&rules, binary) {
                Ok(())
            } else {
                Err(CapException::failed(format!(
                    "{binary:?} is not on the launch allowlist of profile {profile}"
                )))
            }
        };
        let options = SpawnOptions::default();
        match capos_rt::launch::launch(&self.spawner, cx, p, options, Some(&session), allowed) {
            Ok(l) => {
                self.audit(
                    Event::Launch,
                    reference,
                    &principal,
                    &format!("{} as pid {}", l.binary, l.pid),
                );
                l.answer
            }
            Err(e) => {
                self.audit(Event::LaunchRefused, reference, &principal, &e.message);
                Answer::Exception(e)
            }
        }
    }

    fn allowed(&self, cx: &mut ServerCall) -> Answer {
        match self.caller(Door::Launcher) {
            Ok((_, profile, _)) => {
                capos_rt::launch::allowed_answer(cx, &profile_of(&self.config, &profile).launchable)
            }
            Err(e) => Answer::Exception(e),
        }
    }
}

/// The protocol the manager's own doors speak, by bundle name (0 for the
/// capabilities it only passes on).
fn door_protocol(name: &str) -> u64 {
    match name {
        SESSIONS_NAME => capos_rt::caps::api::session_manager::ID,
        LAUNCHER_NAME => capos_rt::caps::api::launcher::ID,
        AUDIT => capos_rt::caps::api::audit_log::ID,
        _ => 0,
    }
}

fn event_kind(e: Event) -> audit_record::Kind {
    match e {
        Event::LoginSuccess => audit_record::Kind::LoginSuccess,
        Event::LoginFailure => audit_record::Kind::LoginFailure,
        Event::Setup => audit_record::Kind::Setup,
        Event::SessionStart => audit_record::Kind::SessionStart,
        Event::SessionEnd => audit_record::Kind::SessionEnd,
        Event::Launch => audit_record::Kind::Launch,
        Event::LaunchRefused => audit_record::Kind::LaunchRefused,
    }
}

impl audit_log::Server<ServerCall> for Manager<'_> {
    fn read(&self, cx: &mut ServerCall, p: audit_proto::read_params::Reader<'_>) -> Answer {
        match self.caller(Door::Audit) {
            Ok((_, name, _)) if reads_audit(&profile_of(&self.config, &name)) => {}
            Ok((_, name, _)) => {
                return Answer::Exception(CapException::failed(format!(
                    "profile {name} does not read the audit log"
                )))
            }
            Err(e) => return Answer::Exception(e),
        }
        let max = match p.get_max() {
            0 => AUDIT_READ_MAX,
            n => (n as usize).min(AUDIT_READ_MAX),
        };
        let st = self.state.borrow();
        let (records, next) = st.audit.read(p.get_from(), max);
        let mut out = capnp::message::Builder::new_default();
        let mut r = out.init_root::<audit_proto::read_results::Builder<'_>>();
        r.set_next(next);
        let mut list = r.init_records(records.len() as u32);
        for (i, rec) in records.iter().enumerate() {
            let mut e = list.reborrow().get(i as u32);
            e.set_seq(rec.seq);
            e.set_nanos(rec.nanos);
            e.set_kind(event_kind(rec.event));
            e.set_session(&rec.session);
            e.set_principal(rec.principal.as_str());
            e.set_detail(rec.detail.as_str());
        }
        drop(st);
        cx.result(&out)
    }
}
