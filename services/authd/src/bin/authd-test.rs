//! authd's QEMU test client (manifests/authd.capnp): calls CredentialStore
//! on its `auth` import and checks what authd answers, on the console. The
//! manifest's operator password is "hunter2" (`mkmanifest passwd`).
//!
//! Right password: success. Wrong ones from one terminal: denied, each
//! answer at least 500 ms, 1 s, 2 s after the previous. While a terminal's
//! answer is held, another terminal's call is answered first (the hold
//! does not block authd). A success clears the count. Unknown accounts,
//! non-UTF-8 names and over-long passwords: denied. `setup` with a password
//! set: refused. Then it stops authd through `control` and exits.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::api::CredentialStore;
use capos_rt::caps::api::{credential_store, service_control};
use capos_rt::caps::schema::services_capnp::credential_store as proto;
use capos_rt::{capnp, ClientEndpoint, Console, Interface, Runtime, Timer};

capos_rt::entry!(main);

const PASSWORD: &[u8] = b"hunter2";
const MS: u64 = 1_000_000;

/// One verify's answer as the client saw it.
struct Seen {
    outcome: String,
    principal: String,
    held_ms: u32,
    /// When the answer arrived (ns).
    at: u64,
}

fn outcome_name(o: Result<proto::VerifyOutcome, capnp::NotInSchema>) -> &'static str {
    match o {
        Ok(proto::VerifyOutcome::Success) => "success",
        Ok(proto::VerifyOutcome::Denied) => "denied",
        Ok(proto::VerifyOutcome::Unavailable) => "unavailable",
        Err(_) => "unknown",
    }
}

fn params(account: &[u8], password: &[u8], terminal: &[u8]) -> Vec<u8> {
    let mut m = capnp::message::Builder::new_default();
    let mut p = m.init_root::<proto::verify_params::Builder<'_>>();
    p.set_account(capnp::text::Reader::from(account));
    p.set_password(password);
    p.set_terminal(terminal);
    capos_rt::wire::to_bytes(&m)
}

fn seen(bytes: &[u8], at: u64) -> Result<Seen, String> {
    let reply = capos_rt::Reply::<proto::verify_results::Owned>::new(bytes, Vec::new())
        .map_err(|e| format!("{e}"))?;
    let r = reply.get().map_err(|e| format!("{e}"))?;
    Ok(Seen {
        outcome: outcome_name(r.get_outcome()).into(),
        principal: r
            .get_principal()
            .ok()
            .and_then(|t| t.to_str().ok())
            .unwrap_or("")
            .into(),
        held_ms: r.get_delayed_millis(),
        at,
    })
}

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let (Ok(timer), Ok(auth)) = (rt.cap::<Timer>("timer"), rt.cap::<ClientEndpoint>("auth")) else {
        say("authd-test: FAIL needs timer and auth");
        return 2;
    };
    let store: CredentialStore = auth.protocol();
    let mut failures = 0;
    let mut check = |ok: bool, what: &str| {
        if ok {
            say(&format!("authd-test: ok {what}"));
        } else {
            say(&format!("authd-test: FAIL {what}"));
            failures += 1;
        }
    };
    let verify = |account: &[u8], password: &[u8], terminal: &[u8]| -> Result<Seen, String> {
        let bytes = auth
            .call(
                credential_store::VERIFY,
                params(account, password, terminal),
            )
            .map_err(|e| format!("{e}"))?;
        seen(&bytes, timer.now().unwrap_or(0))
    };

    match store.status() {
        Ok(reply) => match reply.get() {
            Ok(r) => say(&format!(
                "authd-test: status: operator {}, password set {}, volatile {}",
                r.get_operator_account()
                    .ok()
                    .and_then(|t| t.to_str().ok())
                    .unwrap_or("?"),
                r.get_operator_password_set(),
                r.get_volatile()
            )),
            Err(e) => say(&format!("authd-test: FAIL status: {e}")),
        },
        Err(e) => say(&format!("authd-test: FAIL status: {e}")),
    }

    // The right password.
    match verify(b"operator", PASSWORD, b"tty-a") {
        Ok(s) => check(
            s.outcome == "success" && s.principal == "operator",
            &format!(
                "right password: {} as {:?}, held {} ms",
                s.outcome, s.principal, s.held_ms
            ),
        ),
        Err(e) => check(false, &format!("right password: {e}")),
    }

    // Wrong ones from one terminal: each answer no sooner than the delay
    // the failures before it owe, after the previous answer.
    let mut previous: Option<u64> = None;
    for n in 0..4u32 {
        match verify(b"operator", b"hunter3", b"tty-a") {
            Ok(s) => {
                let owed = authd::delay_nanos(n);
                let gap = previous.map_or(0, |p| s.at.saturating_sub(p));
                // Slack for the clock reads around the calls: the client
                // sees each answer some time after authd sends it.
                let ok = s.outcome == "denied" && (previous.is_none() || gap + 100 * MS >= owed);
                check(
                    ok,
                    &format!(
                        "wrong password {}: {}, held {} ms, answered {} ms after the previous answer (owed {} ms)",
                        n + 1,
                        s.outcome,
                        s.held_ms,
                        gap / MS,
                        owed / MS
                    ),
                );
                previous = Some(s.at);
            }
            Err(e) => check(false, &format!("wrong password {}: {e}", n + 1)),
        }
    }

    // tty-a now owes 4 s. Its next call and one from tty-b go in together:
    // tty-b's answer comes first.
    let ring = auth.cap().ring().clone();
    let submit = |account: &[u8], terminal: &[u8]| {
        ring.submit(
            auth.cap().id(),
            credential_store::VERIFY,
            params(account, b"hunter3", terminal),
            4096,
        )
    };
    let describe = |done: Result<capos_rt::Completion, capos_rt::CallError>, at: u64| match done
        .and_then(|c| c.into_result())
    {
        Ok(bytes) => seen(&bytes, at)
            .map(|s| format!("{}, held {} ms", s.outcome, s.held_ms))
            .unwrap_or_else(|e| e),
        Err(e) => format!("{e}"),
    };
    match (submit(b"operator", b"tty-a"), submit(b"nobody", b"tty-b")) {
        (Ok(a), Ok(b)) => match ring.wait_any(&[a, b]) {
            Ok(first) => {
                let first_at = timer.now().unwrap_or(0);
                let first_done = ring
                    .take(first)
                    .ok_or(capos_rt::CallError::Protocol("missing"));
                let second = if first == a { b } else { a };
                let second_done = ring.wait(second);
                let second_at = timer.now().unwrap_or(0);
                check(
                    first == b,
                    &format!(
                        "a held answer blocks no one: {} answered first ({}), {} ms before the other ({})",
                        if first == b { "tty-b" } else { "tty-a" },
                        describe(first_done, first_at),
                        second_at.saturating_sub(first_at) / MS,
                        describe(second_done, second_at)
                    ),
                );
            }
            Err(e) => check(false, &format!("concurrent calls: {e}")),
        },
        _ => check(false, "concurrent calls: submit failed"),
    }

    // A success waits for what the failures before it owe, and clears the
    // count: three failures (the next answer owes 2 s), the right password
    // (held), a failure (a first one again: held 500 ms; 4 s without the
    // clearing).
    let steps: [(&[u8], &str); 5] = [
        (b"hunter3", "denied"),
        (b"hunter3", "denied"),
        (b"hunter3", "denied"),
        (PASSWORD, "success"),
        (b"hunter3", "denied"),
    ];
    let mut held = Vec::new();
    for (password, want) in steps {
        match verify(b"operator", password, b"tty-c") {
            Ok(s) => {
                held.push(s.held_ms);
                check(
                    s.outcome == want,
                    &format!("tty-c: {} (held {} ms)", s.outcome, s.held_ms),
                );
            }
            Err(e) => check(false, &format!("tty-c: {e}")),
        }
    }
    check(
        held.len() == 5 && held[3] > 0 && held[4] < 1000,
        "a success waits for what the failures owed, and clears the failure count",
    );

    // One answer for every other refusal.
    let mut long = Vec::from(PASSWORD);
    long.resize(2000, b'!');
    let cases: [(&str, &[u8], &[u8]); 3] = [
        ("unknown account", b"nobody", PASSWORD),
        ("non-UTF-8 account name", b"oper\xffator", PASSWORD),
        ("2000-byte password", b"operator", &long),
    ];
    for (what, account, password) in cases {
        let terminal = format!("tty-{what}");
        match verify(account, password, terminal.as_bytes()) {
            Ok(s) => check(s.outcome == "denied", &format!("{what}: {}", s.outcome)),
            Err(e) => check(false, &format!("{what}: {e}")),
        }
    }
    match store.setup(b"new password") {
        Ok(account) => check(
            false,
            &format!("setup with a password set: accepted for {account}"),
        ),
        Err(e) => check(true, &format!("setup with a password set refused: {e}")),
    }

    // Stop authd: the boot ends with every process gone.
    if let Ok(control) = rt.cap::<ClientEndpoint>("control") {
        let mut m = capnp::message::Builder::new_default();
        m.init_root::<capos_rt::caps::schema::services_capnp::service_control::stop_params::Builder<'_>>();
        match control.call(service_control::STOP, capos_rt::wire::to_bytes(&m)) {
            Ok(_) => say("authd-test: stopped authd"),
            Err(e) => say(&format!("authd-test: FAIL stopping authd: {e}")),
        }
    }
    if failures == 0 {
        say("authd-test: done");
        0
    } else {
        say(&format!("authd-test: {failures} checks failed"));
        3
    }
}
