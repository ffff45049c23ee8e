//! Sessions (docs/sessions.md): the kernel's [`SessionCore`], which every
//! process runs in; `SessionAuthority`, which mints, scopes and ends them;
//! `UserSession`, one session as a capability; and [`Scoped`], a capability
//! that works only while its session is live and speaks for it.
//!
//! A session's identity is 16 random bytes from the entropy pool that
//! never leave the kernel: endpoint servers see only a keyed hash of it
//! ([`capos_kcore::session::caller_reference`]). Ending a session marks it
//! ended (once) and lets go of the object inside every [`Scoped`] made for
//! it, so an endpoint client facet behind one is dropped at once, not when
//! the last copy of the wrapper goes.

use super::transfer::{self, Checked};
use super::{names, param, serve, tri, Call, CallShape, KernelObject, Object, Outcome, ResultCap};
use crate::sync::SpinLock;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use capnp::message::Builder;
use capos_caps::exception::CapException;
use capos_caps::schema::capos_capnp::{session_authority, user_session};
use capos_kcore::session::{check_label, IDENTITY_LEN};
use core::sync::atomic::{AtomicBool, Ordering};

/// Most scoped objects one session tracks at once (each `scope` prunes the
/// ones already gone first).
pub const MAX_SCOPED: usize = 1024;

/// One session, as the kernel keeps it.
pub struct SessionCore {
    /// Random, never shown outside the kernel.
    pub identity: [u8; IDENTITY_LEN],
    /// The principal label (at most 64 bytes).
    pub principal: String,
    /// The profile label (at most 64 bytes).
    pub profile: String,
    live: AtomicBool,
    /// The wrappers scoped to it, let go of at its end.
    scoped: SpinLock<Vec<Weak<Scoped>>>,
}

impl SessionCore {
    /// A new live session with a fresh identity.
    pub fn new(principal: String, profile: String) -> Arc<Self> {
        Arc::new(SessionCore {
            identity: crate::entropy::random16(),
            principal,
            profile,
            live: AtomicBool::new(true),
            scoped: SpinLock::new(Vec::new()),
        })
    }

    /// Whether it has not ended.
    #[inline]
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Ends it: `true` for the first end. The objects behind its scoped
    /// capabilities are dropped here, with no lock held.
    pub fn end(&self) -> bool {
        if !self.live.swap(false, Ordering::AcqRel) {
            return false;
        }
        let wrappers = core::mem::take(&mut *self.scoped.lock());
        let mut inner = Vec::with_capacity(wrappers.len());
        for w in wrappers {
            if let Some(s) = w.upgrade() {
                inner.extend(s.inner.lock().take());
                inner.push(s as Object);
            }
        }
        drop(inner);
        true
    }

    /// Records a wrapper scoped to it; refused once it has ended or holds
    /// [`MAX_SCOPED`] live ones.
    fn track(&self, scoped: &Arc<Scoped>) -> Result<(), CapException> {
        let mut list = self.scoped.lock();
        // Checked under the lock `end` takes the list with: a wrapper made
        // after the end began is refused, not missed.
        if !self.is_live() {
            return Err(ended());
        }
        list.retain(|w| w.strong_count() > 0);
        if list.len() >= MAX_SCOPED {
            return Err(CapException::overloaded(alloc::format!(
                "a session tracks at most {MAX_SCOPED} scoped capabilities"
            )));
        }
        list.push(Arc::downgrade(scoped));
        Ok(())
    }
}

static SYSTEM: spin::Once<Arc<SessionCore>> = spin::Once::new();

/// The kernel's `system` session: init and the manifest's boot processes
/// run in it (principal "", profile "system").
pub fn system() -> Arc<SessionCore> {
    SYSTEM
        .call_once(|| SessionCore::new(String::new(), String::from("system")))
        .clone()
}

/// The exception a call through an ended session's capability gets.
pub fn ended() -> CapException {
    CapException::disconnected("session ended")
}

/// Transfer `index` of a call, as a session.
pub fn session_of(sent: &[Checked], index: usize) -> Result<Arc<SessionCore>, CapException> {
    let t = sent.get(index).ok_or_else(|| {
        CapException::failed(alloc::format!(
            "transfer {index}: expected a UserSession, but only {} capabilities were sent",
            sent.len()
        ))
    })?;
    t.object.session().ok_or_else(|| {
        CapException::failed(alloc::format!(
            "transfer {index}: expected a UserSession, got interface {:#x}",
            t.interface_id
        ))
    })
}

/// One session as a capability.
pub struct UserSession {
    core: Arc<SessionCore>,
}

names!(UserSession, user_session, "user-session");

impl KernelObject for UserSession {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(user_session, self, cx)
    }

    fn session(&self) -> Option<Arc<SessionCore>> {
        Some(self.core.clone())
    }
}

impl<'a> capos_caps::api::user_session::Server<Call<'a>> for UserSession {
    fn info(&self, cx: &mut Call<'a>) -> Outcome {
        let mut out = Builder::new_default();
        let mut r = out.init_root::<user_session::info_results::Builder>();
        r.set_principal(self.core.principal.as_str());
        r.set_profile(self.core.profile.as_str());
        r.set_live(self.core.is_live());
        cx.reply(&out)
    }
}

/// A capability scoped to a session: forwards every call to the object
/// inside while the session is live, and answers `disconnected` ("session
/// ended") after. Holds the interface of the object it wraps.
pub struct Scoped {
    session: Arc<SessionCore>,
    interface_id: u64,
    inner: SpinLock<Option<Object>>,
}

impl capos_caps::cap_table::CapObject for Scoped {
    fn interface_id(&self) -> u64 {
        self.interface_id
    }
    fn label(&self) -> &str {
        "scoped"
    }
}

impl Scoped {
    /// The object inside, while the session is live.
    fn live_inner(&self) -> Option<Object> {
        if !self.session.is_live() {
            return None;
        }
        self.inner.lock().clone()
    }
}

impl KernelObject for Scoped {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        let Some(inner) = self.live_inner() else {
            return Outcome::Exception(ended());
        };
        inner.call_as(cx, &self.session)
    }

    /// A scoped capability inside another: both sessions must be live, and
    /// the outermost one speaks for the call.
    fn call_as(&self, cx: &mut Call<'_>, session: &Arc<SessionCore>) -> Outcome {
        let Some(inner) = self.live_inner() else {
            return Outcome::Exception(ended());
        };
        inner.call_as(cx, session)
    }

    fn shape(&self) -> CallShape {
        self.live_inner()
            .map_or(CallShape::PLAIN, |inner| inner.shape())
    }

    fn session(&self) -> Option<Arc<SessionCore>> {
        self.live_inner().and_then(|inner| inner.session())
    }
}

/// Mints, scopes and ends sessions.
pub struct SessionAuthority;

names!(SessionAuthority, session_authority, "session-authority");

impl KernelObject for SessionAuthority {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(session_authority, self, cx)
    }

    /// `scope`, `end` and `reference` read their arguments from transfers.
    fn shape(&self) -> CallShape {
        CallShape {
            accepts_transfers: true,
            ..CallShape::PLAIN
        }
    }
}

/// Reads the capabilities sent with a call.
fn sent(cx: &Call<'_>) -> Result<Vec<Checked>, Outcome> {
    transfer::resolve(cx.caller(), cx.transfers).map_err(Outcome::Error)
}

fn label(t: capnp::Result<capnp::text::Reader<'_>>, what: &str) -> Result<String, CapException> {
    let s = param(t)?
        .to_str()
        .map_err(|_| CapException::failed(alloc::format!("{what} is not UTF-8")))?;
    check_label(s).map_err(|e| {
        CapException::failed(alloc::format!(
            "{what} is {} bytes; at most {} allowed",
            e.len,
            capos_kcore::session::MAX_LABEL
        ))
    })?;
    Ok(String::from(s))
}

impl<'a> capos_caps::api::session_authority::Server<Call<'a>> for SessionAuthority {
    fn create(
        &self,
        cx: &mut Call<'a>,
        p: session_authority::create_params::Reader<'_>,
    ) -> Outcome {
        let principal = tri!(label(p.get_principal(), "principal"));
        let profile = tri!(label(p.get_profile(), "profile"));
        let core = SessionCore::new(principal, profile);
        let index = cx.push_result_cap(ResultCap::new(Arc::new(UserSession { core })));
        let mut out = Builder::new_default();
        out.init_root::<session_authority::create_results::Builder>()
            .set_session(index);
        cx.reply(&out)
    }

    fn scope(&self, cx: &mut Call<'a>) -> Outcome {
        let sent = match sent(cx) {
            Ok(s) => s,
            Err(o) => return o,
        };
        let session = tri!(session_of(&sent, 0));
        let Some(target) = sent.get(1) else {
            return Outcome::Exception(CapException::failed(
                "transfer 1: expected the capability to scope, but none was sent",
            ));
        };
        if !session.is_live() {
            return Outcome::Exception(ended());
        }
        let scoped = Arc::new(Scoped {
            session: session.clone(),
            interface_id: target.interface_id,
            inner: SpinLock::new(Some(target.object.clone())),
        });
        tri!(session.track(&scoped));
        let index = cx.push_result_cap(ResultCap {
            interface_id: target.interface_id,
            object: scoped,
        });
        let mut out = Builder::new_default();
        out.init_root::<session_authority::scope_results::Builder>()
            .set_scoped(index);
        cx.reply(&out)
    }

    fn end(&self, cx: &mut Call<'a>) -> Outcome {
        let sent = match sent(cx) {
            Ok(s) => s,
            Err(o) => return o,
        };
        let session = tri!(session_of(&sent, 0));
        drop(sent);
        if session.end() {
            crate::info!(
                "session: ended (principal \"{}\", profile \"{}\") by pid {}",
                session.principal,
                session.profile,
                cx.caller().pid
            );
        }
        cx.reply_empty()
    }

    fn reference(&self, cx: &mut Call<'a>) -> Outcome {
        let sent = match sent(cx) {
            Ok(s) => s,
            Err(o) => return o,
        };
        let session = tri!(session_of(&sent, 0));
        let Some(scope) = sent.get(1).and_then(|t| t.object.endpoint_scope()) else {
            return Outcome::Exception(CapException::failed(
                "transfer 1: expected an Endpoint (the owner side)",
            ));
        };
        let reference = capos_kcore::session::caller_reference(
            crate::entropy::boot_secret(),
            scope,
            &session.identity,
        );
        let mut out = Builder::new_default();
        out.init_root::<session_authority::reference_results::Builder>()
            .set_reference(&reference);
        cx.reply(&out)
    }
}
