//! The terminal smoke's counterpart: holds the `TerminalSession` and runs a
//! small command loop on it, so a script typing on the serial line (as a
//! person would) can check the line discipline, hidden input, key reads,
//! cancellation and type-ahead. Every line read is reported back on the
//! terminal as `line STATUS LENGTH "TEXT"`.
//!
//! Commands: `hidden` (a password read), `keys N` (N key reads),
//! `typeahead` (reads what was typed while it slept), `scrub` (throws away
//! what was typed while it slept, then reads), `cancel` (a second read while
//! one waits, then `cancelRead`), `big` (a read of the longest line),
//! `exit`. Anything else is just reported.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use capos_rt::caps::schema::capos_capnp::terminal_session::{
    self, key, EchoMode, LineStatus, NamedKey,
};
use capos_rt::{CallError, Console, Interface, Runtime, TerminalSession, Timer};

capos_rt::entry!(main);

/// How long `typeahead` and `scrub` leave the person to type, in ns.
const TYPE_WINDOW_NS: u64 = 2_000_000_000;

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let log = |s: &str| {
        let _ = console.write_line(s);
    };
    let (Ok(term), Ok(timer)) = (
        rt.cap::<TerminalSession>("terminal"),
        rt.cap::<Timer>("timer"),
    ) else {
        log("terminal-test: FAIL missing caps (terminal, timer)");
        return 2;
    };
    log(&format!("terminal-test: refusals: {}", refusals(&term)));
    match run(rt, &term, &timer) {
        Ok(()) => {
            log("terminal-test: done");
            0
        }
        Err(e) => {
            log(&format!("terminal-test: FAIL {e}"));
            3
        }
    }
}

/// Reads that must be refused, before any input: a bound above the
/// largest line, and a result buffer too small for the bound.
fn refusals(term: &TerminalSession) -> String {
    let too_long = term.read_line(5000, EchoMode::Visible);
    let small = term.cap().ring().submit(
        term.cap().id(),
        capos_rt::caps::api::terminal_session::READ_LINE,
        line_params(64),
        40,
    );
    let small = small.and_then(|t| term.cap().ring().wait(t)?.into_result());
    format!(
        "maxBytes 5000 {}; a 40-byte result buffer for 64 bytes {}",
        outcome(&too_long),
        outcome(&small)
    )
}

/// The encoded parameters of `readLine(max, visible)`.
fn line_params(max: u32) -> alloc::vec::Vec<u8> {
    let mut m = capos_rt::capnp::message::Builder::new_default();
    m.init_root::<terminal_session::read_line_params::Builder>()
        .set_max_bytes(max);
    capos_rt::capnp::serialize::write_message_to_words(&m)
}

fn outcome<T>(r: &Result<T, CallError>) -> String {
    match r {
        Ok(_) => String::from("accepted"),
        Err(CallError::Exception(e)) => format!("refused ({})", e.message),
        Err(CallError::Transport(t)) => format!("refused ({})", t.name()),
        Err(e) => format!("failed ({e})"),
    }
}

fn status_name(s: LineStatus) -> &'static str {
    match s {
        LineStatus::Complete => "complete",
        LineStatus::Truncated => "truncated",
        LineStatus::EndOfInput => "endOfInput",
        LineStatus::Interrupted => "interrupted",
        LineStatus::Cancelled => "cancelled",
    }
}

/// Reads one line; its status, and its text (invalid UTF-8 shown escaped).
fn read(
    term: &TerminalSession,
    max: u32,
    echo: EchoMode,
) -> Result<(LineStatus, String), CallError> {
    let reply = term.read_line(max, echo)?;
    let r = reply.get()?;
    let status = r
        .get_status()
        .map_err(|_| CallError::InvalidArgument("unknown status"))?;
    let line = r.get_line().map_err(CallError::Decode)?;
    Ok((status, String::from_utf8_lossy(line).into_owned()))
}

fn report(term: &TerminalSession, status: LineStatus, text: &str) -> Result<(), CallError> {
    let shown = if text.len() > 64 {
        format!(
            "{}...",
            &text[..text.char_indices().nth(16).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        String::from(text)
    };
    term.write_line(&format!(
        "line {} {} {:?}",
        status_name(status),
        text.len(),
        shown
    ))
}

fn run(rt: &Runtime, term: &TerminalSession, timer: &Timer) -> Result<(), CallError> {
    term.write_line("terminal-test: ready")?;
    loop {
        term.write(b"> ")?;
        let (status, line) = read(term, 256, EchoMode::Visible)?;
        report(term, status, &line)?;
        if status == LineStatus::EndOfInput {
            term.write_line("terminal-test: end of input")?;
            continue;
        }
        let mut words = line.split_whitespace();
        match (status, words.next()) {
            (LineStatus::Complete, Some("exit")) => {
                term.write_line("terminal-test: bye")?;
                return Ok(());
            }
            (LineStatus::Complete, Some("hidden")) => {
                term.write(b"password: ")?;
                let (status, secret) = read(term, 64, EchoMode::Hidden)?;
                term.write_line(&format!(
                    "secret {} {} bytes, matches {}",
                    status_name(status),
                    secret.len(),
                    secret == "hunter2"
                ))?;
            }
            (LineStatus::Complete, Some("keys")) => {
                let n: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(1);
                term.write_line(&format!("reading {n} keys"))?;
                for _ in 0..n {
                    let reply = term.read_key()?;
                    let k = reply.get()?.get_key()?;
                    term.write_line(&format!("key {}", key_name(k)?))?;
                }
            }
            (LineStatus::Complete, Some("typeahead")) => {
                term.write_line("typeahead: type now")?;
                timer.sleep(TYPE_WINDOW_NS)?;
                let (status, early) = read(term, 64, EchoMode::Hidden)?;
                term.write_line(&format!("typeahead {} {:?}", status_name(status), early))?;
            }
            (LineStatus::Complete, Some("scrub")) => {
                term.write_line("scrub: type now")?;
                timer.sleep(TYPE_WINDOW_NS)?;
                let had_read = term.cancel_read()?;
                term.write_line(&format!("scrub: a read was waiting: {had_read}; read now"))?;
                let (status, fresh) = read(term, 64, EchoMode::Visible)?;
                term.write_line(&format!("scrub {} {:?}", status_name(status), fresh))?;
            }
            (LineStatus::Complete, Some("cancel")) => cancel(rt, term)?,
            (LineStatus::Complete, Some("big")) => {
                term.write_line("big: type a long line")?;
                let (status, long) = read(term, 0, EchoMode::Visible)?;
                report(term, status, &long)?;
            }
            _ => {}
        }
    }
}

/// A read left waiting, a second read refused beside it, then `cancelRead`
/// ending the first as `cancelled`.
fn cancel(rt: &Runtime, term: &TerminalSession) -> Result<(), CallError> {
    let ring = rt.ring();
    let first = ring.submit(
        term.cap().id(),
        capos_rt::caps::api::terminal_session::READ_LINE,
        line_params(64),
        4128,
    )?;
    let second = term.read_line(64, EchoMode::Visible);
    let cancelled = term.cancel_read()?;
    let first = ring.wait(first)?.into_result()?;
    let reader = capos_rt::capnp::serialize::read_message(
        &mut &first[..],
        capos_rt::capnp::message::ReaderOptions::new(),
    )
    .map_err(CallError::Decode)?;
    let r = reader
        .get_root::<terminal_session::read_line_results::Reader>()
        .map_err(CallError::Decode)?;
    let status = r
        .get_status()
        .map_err(|_| CallError::InvalidArgument("unknown status"))?;
    term.write_line(&format!(
        "cancel: second read {}; cancelRead {cancelled}; first read {} {} bytes",
        outcome(&second),
        status_name(status),
        r.get_line().map_err(CallError::Decode)?.len()
    ))
}

fn key_name(k: key::Reader<'_>) -> Result<String, CallError> {
    Ok(
        match k
            .which()
            .map_err(|_| CallError::InvalidArgument("unknown key"))?
        {
            key::Which::Char(c) => match char::from_u32(c) {
                Some(c) => format!("char {c}"),
                None => format!("char ?{c:#x}"),
            },
            key::Which::Named(n) => {
                let n = n.map_err(|_| CallError::InvalidArgument("unknown named key"))?;
                String::from(match n {
                    NamedKey::Enter => "enter",
                    NamedKey::Backspace => "backspace",
                    NamedKey::Delete => "delete",
                    NamedKey::Tab => "tab",
                    NamedKey::Escape => "escape",
                    NamedKey::Up => "up",
                    NamedKey::Down => "down",
                    NamedKey::Left => "left",
                    NamedKey::Right => "right",
                    NamedKey::Home => "home",
                    NamedKey::End => "end",
                })
            }
            key::Which::Ctrl(c) => format!("ctrl {}", char::from(c)),
        },
    )
}
