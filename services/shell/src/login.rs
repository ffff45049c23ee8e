//! The shell's session commands (`docs/sessions.md`): the shell starts in
//! the anonymous session the terminal's shell was started in, holding that
//! session's bundle; `login` and `setup` add a logged-in session's bundle
//! on top, `logout` ends it, `session` and `audit` show what there is.

use super::{Problem, Shell};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use capos_rt::api::{AuditLog, Launcher, SessionManager, UserSession};
use capos_rt::caps::interfaces;
use capos_rt::caps::schema::capos_capnp::terminal_session::{EchoMode, LineStatus};
use capos_rt::caps::schema::services_capnp::{audit_record, session_manager};
use capos_rt::{capnp, CallError, Cap, CapHandle, ClientEndpoint, Interface, Owned, Reply};

/// The longest password line the shell reads (the terminal's limit); the
/// credential store refuses anything over 1024 bytes.
const PASSWORD_LINE: u32 = 4096;

/// A session the shell acts in: the session manager and launcher as that
/// session, and the profile's bundle.
pub struct SessionView {
    /// Its principal ("" for anonymous).
    pub principal: String,
    /// Its profile.
    pub profile: String,
    /// The session manager, called as this session.
    pub manager: SessionManager,
    /// Its launcher.
    pub launcher: Option<Launcher>,
    /// The profile's bundle, by name.
    pub bundle: Vec<(String, CapHandle)>,
    /// Protocols the session manager named for bundle endpoint clients:
    /// (cap id, interface id).
    pub protocols: Vec<(u64, u64)>,
    /// The UserSession (logged-in sessions).
    pub user: Option<Owned<UserSession>>,
    /// Owns the manager's and the launcher's capabilities.
    _doors: Vec<CapHandle>,
}

/// One bundle entry as a login or `bundle` answered it.
pub struct Entry {
    name: String,
    /// Result-cap index.
    cap: u16,
    /// The protocol of an endpoint client, if the session manager said.
    protocol: u64,
}

fn bundle_entries(
    list: capnp::struct_list::Reader<'_, capos_rt::caps::schema::services_capnp::bundle_cap::Owned>,
) -> Result<Vec<Entry>, CallError> {
    let mut out = Vec::with_capacity(list.len() as usize);
    for e in list.iter() {
        let name = e
            .get_name()?
            .to_str()
            .map_err(|_| CallError::Protocol("a bundle name is not UTF-8"))?;
        out.push(Entry {
            name: name.to_string(),
            cap: e.get_cap(),
            protocol: e.get_protocol(),
        });
    }
    Ok(out)
}

impl SessionView {
    /// A view from a bundle's entries, taking their caps out of `reply`.
    fn from_bundle<R: capnp::traits::Owned>(
        reply: &mut Reply<R>,
        entries: Vec<Entry>,
        user: Option<Owned<UserSession>>,
    ) -> Result<Self, CallError> {
        let mut manager = None;
        let mut launcher = None;
        let mut doors = Vec::new();
        let mut bundle = Vec::new();
        let mut protocols = Vec::new();
        for Entry {
            name,
            cap: index,
            protocol,
        } in entries
        {
            let cap = reply.take_any(index)?;
            if protocol != 0 {
                protocols.push((cap.id(), protocol));
            }
            match name.as_str() {
                "sessions" => {
                    manager = Some(ClientEndpoint::from_cap((*cap).clone()).protocol());
                    doors.push(cap);
                }
                "launcher" => {
                    launcher = Some(ClientEndpoint::from_cap((*cap).clone()).protocol());
                    doors.push(cap);
                }
                _ => bundle.push((name, cap)),
            }
        }
        let manager: SessionManager =
            manager.ok_or(CallError::Protocol("the bundle has no session manager"))?;
        let current = manager.current()?;
        let r = current.get()?;
        let text = |t: capnp::Result<capnp::text::Reader<'_>>| -> Result<String, CallError> {
            Ok(t?
                .to_str()
                .map_err(|_| CallError::Protocol("a label is not UTF-8"))?
                .to_string())
        };
        Ok(SessionView {
            principal: text(r.get_principal())?,
            profile: text(r.get_profile())?,
            manager,
            launcher,
            bundle,
            protocols,
            user,
            _doors: doors,
        })
    }

    /// The name the prompt shows.
    pub fn who(&self) -> &str {
        if self.principal.is_empty() {
            &self.profile
        } else {
            &self.principal
        }
    }

    /// The bundle capability named `name`.
    pub fn find(&self, name: &str) -> Option<Cap> {
        self.bundle
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| (**c).clone())
    }
}

impl Shell<'_> {
    /// Joins the anonymous session: its bundle, through the manifest's
    /// `sessionManager` capability.
    pub(crate) fn join_anonymous(&mut self) -> Result<(), CallError> {
        let Ok(plain) = self.rt.cap::<ClientEndpoint>("sessionManager") else {
            return Ok(());
        };
        let manager: SessionManager = plain.protocol();
        let mut reply = manager.bundle()?;
        let entries = bundle_entries(reply.get()?.get_bundle()?)?;
        let view = SessionView::from_bundle(&mut reply, entries, None)?;
        self.learn_protocols(&view);
        self.anonymous = Some(view);
        Ok(())
    }

    /// The session the shell acts in now.
    pub(crate) fn view(&self) -> Option<&SessionView> {
        self.user.as_ref().or(self.anonymous.as_ref())
    }

    /// The prompt: the session's name, then `capos> `.
    pub(crate) fn prompt(&self) -> String {
        match self.view() {
            Some(v) => format!("{}@capos> ", v.who()),
            None => String::from(super::PROMPT),
        }
    }

    /// The launcher of the current session, else the manifest's.
    pub(crate) fn current_launcher(&self) -> Option<Launcher> {
        match self.view() {
            Some(v) => v.launcher.clone(),
            None => self.launcher.clone(),
        }
    }

    /// Endpoint clients of a bundle speak the protocol the session manager
    /// named, else the one their name says.
    fn learn_protocols(&mut self, view: &SessionView) {
        self.protocols.extend_from_slice(&view.protocols);
        for (name, cap) in &view.bundle {
            if cap.interface_id() == interfaces::CLIENT_ENDPOINT
                && !view.protocols.iter().any(|(c, _)| *c == cap.id())
            {
                if let Some(id) = super::protocol_named(&self.names, name) {
                    self.protocols.push((cap.id(), id));
                }
            }
        }
    }

    /// Reads a line with hidden echo after `prompt`.
    fn read_secret(&mut self, prompt: &str) -> Result<Option<Vec<u8>>, Problem> {
        self.term.write(prompt.as_bytes())?;
        let reply = self.term.read_line(PASSWORD_LINE, EchoMode::Hidden)?;
        let r = reply.get()?;
        Ok(match r.get_status() {
            // A line longer than the terminal takes is sent as read: it is
            // longer than any password, and refused like a wrong one.
            Ok(LineStatus::Complete) | Ok(LineStatus::Truncated) => {
                Some(r.get_line().map_err(CallError::from)?.to_vec())
            }
            _ => None,
        })
    }

    /// Takes a login's or setup's answer (`outcome`, the bundle's
    /// `entries`, the session's cap index, read from `reply`): the new
    /// session's view, or a refusal as the person should read it (never
    /// why).
    fn adopt<R: capnp::traits::Owned>(
        &mut self,
        mut reply: Reply<R>,
        outcome: Result<session_manager::LoginOutcome, capnp::NotInSchema>,
        entries: Vec<Entry>,
        session: u16,
    ) -> Result<bool, Problem> {
        match outcome {
            Ok(session_manager::LoginOutcome::Success) => {}
            Ok(session_manager::LoginOutcome::Unavailable) => {
                self.say("login incorrect (if this is the first boot, `setup` sets a password)")?;
                return Ok(false);
            }
            _ => {
                self.say("login incorrect")?;
                return Ok(false);
            }
        }
        let user: Owned<UserSession> = reply.take_cap(session)?;
        let view = SessionView::from_bundle(&mut reply, entries, Some(user))?;
        self.learn_protocols(&view);
        let names: Vec<&str> = view.bundle.iter().map(|(n, _)| n.as_str()).collect();
        self.say(&format!(
            "Logged in as {} (profile {}). Bundle: {}.",
            view.principal,
            view.profile,
            if names.is_empty() {
                String::from("none")
            } else {
                names.join(", ")
            }
        ))?;
        // The message of the day, where the bundle reads the system.
        if let Some(info) = view.find("systemInfo") {
            let info = capos_rt::api::SystemInfo::from_cap(info);
            if let Ok(text) = info.motd() {
                self.say(&text)?;
            }
        }
        self.user = Some(view);
        Ok(true)
    }

    fn anonymous_manager(&self) -> Result<SessionManager, Problem> {
        if let Some(u) = &self.user {
            return Err(Problem(format!(
                "already logged in as {}; `logout` first",
                u.who()
            )));
        }
        self.anonymous
            .as_ref()
            .map(|a| a.manager.clone())
            .ok_or_else(|| Problem(String::from("no session manager: this shell has no login")))
    }

    /// `login [account]`.
    pub(crate) fn login(&mut self, account: Option<String>) -> Result<(), Problem> {
        let manager = self.anonymous_manager()?;
        let account = match account {
            Some(a) => a,
            None => match self.read_line("account: ")? {
                super::Edit::Line(l) => l.trim().to_string(),
                _ => return Err(Problem(String::from("login cancelled"))),
            },
        };
        let Some(password) = self.read_secret("password: ")? else {
            return Err(Problem(String::from("login cancelled")));
        };
        let reply = manager.call_login(
            |mut p| {
                p.set_account(account.as_str());
                p.set_password(&password);
            },
            &[],
        )?;
        let (outcome, entries, session) = {
            let r = reply.get()?;
            (
                r.get_outcome(),
                bundle_entries(r.get_bundle()?)?,
                r.get_session(),
            )
        };
        self.adopt(reply, outcome, entries, session).map(|_| ())
    }

    /// `setup`.
    pub(crate) fn setup(&mut self) -> Result<(), Problem> {
        let manager = self.anonymous_manager()?;
        let needed = manager.setup_needed()?;
        let (is_needed, account) = {
            let r = needed.get()?;
            (
                r.get_needed(),
                r.get_account()?.to_str().unwrap_or("").to_string(),
            )
        };
        if !is_needed {
            return Err(Problem(String::from(
                "setup is only for the first boot: the operator account already has a password",
            )));
        }
        self.say(&format!("Setting the password of account {account}."))?;
        let Some(first) = self.read_secret("new password: ")? else {
            return Err(Problem(String::from("setup cancelled")));
        };
        let Some(again) = self.read_secret("again: ")? else {
            return Err(Problem(String::from("setup cancelled")));
        };
        if first != again {
            return Err(Problem(String::from(
                "the two passwords differ; nothing was set",
            )));
        }
        let reply = manager.call_setup(|mut p| p.set_password(&first), &[])?;
        let (outcome, entries, session) = {
            let r = reply.get()?;
            (
                r.get_outcome(),
                bundle_entries(r.get_bundle()?)?,
                r.get_session(),
            )
        };
        if self.adopt(reply, outcome, entries, session)? {
            self.say(
                "The password is volatile: it lives in memory only and is gone at reboot; \
                 put a hash made by `mkmanifest passwd` in the manifest to keep one.",
            )?;
        }
        Ok(())
    }

    /// `session`.
    pub(crate) fn session(&mut self) -> Result<(), Problem> {
        let Some(v) = self.view() else {
            return Err(Problem(String::from(
                "no session manager: this shell has no session",
            )));
        };
        let mut text = format!(
            "session: principal {}, profile {}",
            if v.principal.is_empty() {
                "(none)"
            } else {
                &v.principal
            },
            v.profile
        );
        if let Some(u) = &v.user {
            let live = u.info()?.get()?.get_live();
            text.push_str(if live { ", live" } else { ", ended" });
        }
        let names: Vec<&str> = v.bundle.iter().map(|(n, _)| n.as_str()).collect();
        text.push_str(&format!(
            "\nbundle: {}",
            if names.is_empty() {
                String::from("(none)")
            } else {
                names.join(", ")
            }
        ));
        if let Some(l) = &v.launcher {
            let allowed = l.allowed()?;
            let list: Vec<String> = allowed
                .get()?
                .get_binaries()?
                .iter()
                .filter_map(|b| b.ok().and_then(|b| b.to_str().ok()).map(String::from))
                .collect();
            text.push_str(&format!(
                "\nmay launch: {}",
                if list.is_empty() {
                    String::from("(nothing)")
                } else {
                    list.join(", ")
                }
            ));
        }
        self.say(&text)?;
        Ok(())
    }

    /// `logout`.
    pub(crate) fn logout(&mut self) -> Result<(), Problem> {
        let Some(user) = &self.user else {
            return Err(Problem(String::from("not logged in")));
        };
        user.manager.logout()?;
        let user = self.user.take();
        if let Some(u) = &user {
            let ids: Vec<u64> = u.bundle.iter().map(|(_, c)| c.id()).collect();
            self.protocols.retain(|(c, _)| !ids.contains(c));
        }
        drop(user);
        self.say("Logged out: the session's capabilities no longer work anywhere.")?;
        Ok(())
    }

    /// `audit`.
    pub(crate) fn audit(&mut self) -> Result<(), Problem> {
        let log = self
            .view()
            .and_then(|v| v.find("audit"))
            .ok_or_else(|| Problem(String::from("this session holds no audit log")))?;
        let log: AuditLog = ClientEndpoint::from_cap(log).protocol();
        let mut from = 0u64;
        let mut text = String::new();
        let mut count = 0usize;
        loop {
            let reply = log.read(from, 0)?;
            let r = reply.get()?;
            let records = r.get_records()?;
            if records.is_empty() {
                break;
            }
            for rec in records.iter() {
                count += 1;
                let session: String = rec
                    .get_session()?
                    .iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let nanos = rec.get_nanos();
                text.push_str(&format!(
                    "{:>4} {:>5}.{:03}s {:<14} session {} {} {}\n",
                    rec.get_seq(),
                    nanos / 1_000_000_000,
                    nanos / 1_000_000 % 1000,
                    kind_name(rec.get_kind()),
                    session,
                    match rec.get_principal()?.to_str().unwrap_or("?") {
                        "" => "-",
                        p => p,
                    },
                    rec.get_detail()?.to_str().unwrap_or("?"),
                ));
            }
            from = r.get_next();
        }
        text.push_str(&format!("({count} records)"));
        self.say(&text)?;
        Ok(())
    }
}

fn kind_name(k: Result<audit_record::Kind, capnp::NotInSchema>) -> &'static str {
    match k {
        Ok(audit_record::Kind::LoginSuccess) => "loginSuccess",
        Ok(audit_record::Kind::LoginFailure) => "loginFailure",
        Ok(audit_record::Kind::Setup) => "setup",
        Ok(audit_record::Kind::SessionStart) => "sessionStart",
        Ok(audit_record::Kind::SessionEnd) => "sessionEnd",
        Ok(audit_record::Kind::Launch) => "launch",
        Ok(audit_record::Kind::LaunchRefused) => "launchRefused",
        Err(_) => "unknown",
    }
}
