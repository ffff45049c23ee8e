//! authd, the credential store: serves `CredentialStore`
//! (`caps/schema/services.capnp`) on its `endpoint` cap, checking passwords
//! against the manifest's Argon2id account hashes (docs/sessions.md).
//!
//! Caps: `console`, `endpoint` (served), `timer` (holds answers back),
//! `config` (a MemoryObject holding the manifest's `sessions` section, from
//! init: `sessionsConfig = true`), and optionally `entropy` (an
//! EntropySource, for the salt of `setup`'s volatile password; without one
//! `setup` fails), and optionally `control` (an endpoint on which
//! `ServiceControl.stop` ends authd: for tests, which hand its client facet
//! to the test client only). Argon2id with 19 MiB needs more than the default frame
//! quota: the manifest gives authd a `frameLimit` (8192 pages) and a
//! `vm` (VirtualMemory) cap for the heap to grow.
//!
//! A failed attempt makes the next answer to the same terminal wait
//! (500 ms * 2^(n-1), at most 16 s). Waiting never blocks other callers:
//! the answer is kept with a Timer sleep in flight, and the loop waits for
//! whichever comes first, a sleep or the next call. At most
//! [`MAX_HELD`] answers are held at once; while that many are, no new call
//! is received (callers queue in the endpoint).
//!
//! At start authd times two checks of the dummy hash and reports them on
//! the console (`authd: second Argon2id check ... took N ms, C TSC
//! cycles`); the first also grows the heap to what a check needs before
//! the first caller does.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use authd::{Accounts, Limiter, Outcome, Verdict};
use capos_rt::api::EntropySource;
use capos_rt::caps::api::{credential_store, service_control};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::manifest;
use capos_rt::caps::schema::services_capnp::credential_store as proto;
use capos_rt::{capnp, Answer, Console, Endpoint, Runtime, ServerCall, Ticket, Timer};
use core::cell::{Cell, RefCell};

capos_rt::entry!(main);

use capos_rt::serve::PARAMS_CAPACITY;

/// Most answers held back at once (the kernel keeps 16 calls in flight per
/// endpoint).
const MAX_HELD: usize = 8;

struct Store<'a> {
    accounts: RefCell<Accounts>,
    limiter: RefCell<Limiter>,
    timer: &'a Timer,
    entropy: Option<&'a EntropySource>,
    /// When the call being handled may be answered (set by `verify`).
    hold_until: Cell<Option<u64>>,
    say: &'a dyn Fn(&str),
}

impl Store<'_> {
    fn now(&self) -> Result<u64, CapException> {
        self.timer
            .now()
            .map_err(|e| CapException::failed(format!("the clock failed: {e}")))
    }

    fn try_verify(
        &self,
        cx: &mut ServerCall,
        p: proto::verify_params::Reader<'_>,
    ) -> Result<Answer, CapException> {
        let malformed =
            |e: capnp::Error| CapException::failed(format!("malformed parameters: {e}"));
        // The account's bytes as sent: a name that is not UTF-8 is denied
        // like an unknown one.
        let account = p.get_account().map_err(malformed)?.as_bytes();
        let password = p.get_password().map_err(malformed)?;
        let terminal = p.get_terminal().map_err(malformed)?;
        let outcome = self.accounts.borrow().verify(account, password);
        let now = self.now()?;
        let Verdict {
            outcome,
            answer_at,
            delayed_nanos,
        } = authd::decide(&mut self.limiter.borrow_mut(), terminal, outcome, now);
        if delayed_nanos > 0 {
            self.hold_until.set(Some(answer_at));
        }
        let mut out = capnp::message::Builder::new_default();
        let mut r = out.init_root::<proto::verify_results::Builder<'_>>();
        r.set_delayed_millis(u32::try_from(delayed_nanos / 1_000_000).unwrap_or(u32::MAX));
        match outcome {
            Outcome::Success { principal, profile } => {
                r.set_outcome(proto::VerifyOutcome::Success);
                r.set_principal(principal.as_str());
                r.set_profile(profile.as_str());
            }
            Outcome::Denied => r.set_outcome(proto::VerifyOutcome::Denied),
            Outcome::Unavailable => r.set_outcome(proto::VerifyOutcome::Unavailable),
        }
        Ok(cx.result(&out))
    }

    fn try_setup(
        &self,
        cx: &mut ServerCall,
        p: proto::setup_params::Reader<'_>,
    ) -> Result<Answer, CapException> {
        let password = p
            .get_password()
            .map_err(|e| CapException::failed(format!("malformed parameters: {e}")))?;
        let entropy = self.entropy.ok_or_else(|| {
            CapException::failed("setup needs an entropy source, and authd holds none")
        })?;
        let salt = entropy
            .read(authd::SALT_BYTES as u32)
            .map_err(|e| CapException::failed(format!("reading a salt failed: {e}")))?;
        if salt.len() != authd::SALT_BYTES {
            return Err(CapException::failed(
                "the entropy source answered a short salt",
            ));
        }
        let mut accounts = self.accounts.borrow_mut();
        let account = accounts
            .setup(password, &salt)
            .map_err(|e| CapException::failed(format!("setup refused: {e}")))?;
        (self.say)(&format!(
            "authd: a volatile password was set for account {account} (gone at reboot)"
        ));
        let mut out = capnp::message::Builder::new_default();
        out.init_root::<proto::setup_results::Builder<'_>>()
            .set_account(account);
        Ok(cx.result(&out))
    }
}

impl credential_store::Server<ServerCall> for Store<'_> {
    fn verify(&self, cx: &mut ServerCall, p: proto::verify_params::Reader<'_>) -> Answer {
        self.try_verify(cx, p).unwrap_or_else(Answer::Exception)
    }

    fn setup(&self, cx: &mut ServerCall, p: proto::setup_params::Reader<'_>) -> Answer {
        self.try_setup(cx, p).unwrap_or_else(Answer::Exception)
    }

    fn status(&self, cx: &mut ServerCall) -> Answer {
        let s = self.accounts.borrow().status();
        let mut out = capnp::message::Builder::new_default();
        let mut r = out.init_root::<proto::status_results::Builder<'_>>();
        r.set_operator_account(s.operator_account.as_str());
        r.set_operator_password_set(s.operator_password_set);
        r.set_volatile(s.volatile);
        cx.result(&out)
    }
}

/// The `control` endpoint's server: `stop` sets the flag.
struct Control {
    stop: Cell<bool>,
}

impl service_control::Server<ServerCall> for Control {
    fn stop(&self, cx: &mut ServerCall) -> Answer {
        self.stop.set(true);
        cx.empty()
    }
}

/// An answer held back until its sleep completes.
struct Held {
    call_id: u64,
    answer: Answer,
    sleep: Ticket,
}

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let (Ok(ep), Ok(timer)) = (rt.cap::<Endpoint>("endpoint"), rt.cap::<Timer>("timer")) else {
        say("authd: FAIL needs an endpoint and a timer");
        return 2;
    };
    let entropy = rt.cap::<EntropySource>("entropy").ok();
    let control = rt.cap::<Endpoint>("control").ok();
    let stopper = Control {
        stop: Cell::new(false),
    };
    let mut controlled: Option<Ticket> = None;
    let accounts =
        match capos_rt::config::sessions(rt).and_then(|c| Accounts::new(&c).map_err(|e| e.0)) {
            Ok(a) => a,
            Err(e) => {
                say(&format!("authd: FAIL {e}"));
                return 3;
            }
        };
    let status = accounts.status();
    say(&format!(
        "authd: {} accounts; operator {}: {}",
        accounts.len(),
        if status.operator_account.is_empty() {
            "(none)"
        } else {
            &status.operator_account
        },
        if status.operator_password_set {
            "password set"
        } else {
            "no password (setup needed)"
        }
    ));
    // Two checks of the dummy hash: the first grows the heap to Argon2's
    // 19 MiB, the second is what a `verify` costs (`make bench` reads it:
    // under path-length mode the TSC counts guest instructions).
    let d = manifest::phc::Params::DEFAULT;
    for which in ["first", "second"] {
        let (before, start) = (timer.now().unwrap_or(0), capos_rt::time::rdtsc());
        let _ = accounts.verify(b"", b"");
        let (cycles, after) = (
            capos_rt::time::rdtsc().wrapping_sub(start),
            timer.now().unwrap_or(0),
        );
        say(&format!(
            "authd: {which} Argon2id check (m={} KiB, t={}, p={}) took {} ms, {cycles} TSC cycles",
            d.m,
            d.t,
            d.p,
            after.saturating_sub(before) / 1_000_000
        ));
    }
    let store = Store {
        accounts: RefCell::new(accounts),
        limiter: RefCell::new(Limiter::new()),
        timer: &timer,
        entropy: entropy.as_ref(),
        hold_until: Cell::new(None),
        say: &say,
    };
    let ring = rt.ring().clone();
    let mut held: Vec<Held> = Vec::new();
    let mut recv: Option<Ticket> = None;
    say("authd: serving CredentialStore");
    loop {
        if stopper.stop.get() && held.is_empty() {
            say("authd: stopped");
            return 0;
        }
        if let (Some(c), None) = (&control, controlled) {
            match c.start_recv(PARAMS_CAPACITY) {
                Ok(t) => controlled = Some(t),
                Err(e) => {
                    say(&format!("authd: FAIL RECV on control: {e}"));
                    return 4;
                }
            }
        }
        if recv.is_none() && held.len() < MAX_HELD && !stopper.stop.get() {
            match ep.start_recv(PARAMS_CAPACITY) {
                Ok(t) => recv = Some(t),
                Err(e) => {
                    say(&format!("authd: FAIL RECV: {e}"));
                    return 4;
                }
            }
        }
        let tickets: Vec<Ticket> = recv
            .iter()
            .chain(controlled.iter())
            .copied()
            .chain(held.iter().map(|h| h.sleep))
            .collect();
        let ready = match ring.wait_any(&tickets) {
            Ok(t) => t,
            Err(e) => {
                say(&format!("authd: FAIL wait: {e}"));
                return 5;
            }
        };
        let Some(done) = ring.take(ready) else {
            say("authd: FAIL completion missing");
            return 5;
        };
        if let Some(at) = held.iter().position(|h| h.sleep == ready) {
            // Its time has come (a failed sleep answers now too: holding
            // forever would be worse).
            let h = held.swap_remove(at);
            if let Err(e) = ep.answer(h.call_id, h.answer) {
                say(&format!("authd: a held answer could not be sent: {e}"));
            }
            continue;
        }
        if Some(ready) == controlled {
            controlled = None;
            let Some(c) = &control else { continue };
            match c.finish_recv(done) {
                Ok(mut call) => {
                    let params = call.aligned_params();
                    let mut cx = call.context();
                    for cap in core::mem::take(&mut cx.caps) {
                        drop(capos_rt::CapHandle::adopt(cap));
                    }
                    let answer = service_control::dispatch(
                        &stopper,
                        &mut cx,
                        call.method_id,
                        &capnp::Word::words_to_bytes(&params)[..call.params.len()],
                    );
                    if let Err(e) = c.answer(call.call_id, answer) {
                        say(&format!("authd: a control answer could not be sent: {e}"));
                    }
                }
                Err(e) => say(&format!("authd: a control call could not be received: {e}")),
            }
            continue;
        }
        recv = None;
        let mut call = match ep.finish_recv(done) {
            Ok(call) => call,
            Err(e) => {
                say(&format!("authd: a call could not be received: {e}"));
                continue;
            }
        };
        let params = call.aligned_params();
        let mut cx = call.context();
        // Nothing is expected with these calls: release what was sent.
        for c in core::mem::take(&mut cx.caps) {
            drop(capos_rt::CapHandle::adopt(c));
        }
        store.hold_until.set(None);
        let answer = credential_store::dispatch(
            &store,
            &mut cx,
            call.method_id,
            &capnp::Word::words_to_bytes(&params)[..call.params.len()],
        );
        let hold = store.hold_until.take().and_then(|until| {
            let now = timer.now().ok()?;
            (until > now).then(|| until - now)
        });
        match hold {
            Some(nanos) => match timer.start_sleep(nanos) {
                Ok(sleep) => held.push(Held {
                    call_id: call.call_id,
                    answer,
                    sleep,
                }),
                Err(e) => {
                    // No timer: hold the answer by refusing it instead.
                    say(&format!("authd: cannot hold an answer back: {e}"));
                    let refusal = CapException::failed("try again later");
                    let _ = ep.reply_exception(call.call_id, &refusal);
                }
            },
            None => {
                if let Err(e) = ep.answer(call.call_id, answer) {
                    say(&format!("authd: an answer could not be sent: {e}"));
                }
            }
        }
    }
}
