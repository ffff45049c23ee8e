//! The shell's command language (grammar in `docs/shell.md`): built-in
//! commands, `run` and `spawn` with their grant lists, and everything else
//! as a typed call in the call language of `capos_reflect`.

use alloc::string::String;
use alloc::vec::Vec;
use capos_reflect::Line;

/// The built-in commands, with their one-line help and usage.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("help", "help [command]", "lists the commands, or explains one"),
    ("caps", "caps", "every capability the shell holds: name, interface, id; and bound variables"),
    ("inspect", "inspect <cap>", "the methods of a capability's interface, with parameter and result types"),
    (
        "protocol",
        "protocol <cap> <Interface>",
        "says which protocol an endpoint client speaks (a name like `echo` for Echo is guessed)",
    ),
    (
        "run",
        "run \"binary\" [with { name: source, ... }]",
        "starts a program with exactly those capabilities, serves its StdIO and waits (Ctrl-C stops it)",
    ),
    (
        "spawn",
        "spawn \"binary\" [with { name: source, ... }] -> $p",
        "starts a program in the background and binds its process handle",
    ),
    ("wait", "wait $p", "waits for a spawned program and prints its exit code (Ctrl-C stops waiting)"),
    ("kill", "kill $p", "ends a spawned program"),
    ("jobs", "jobs", "the programs spawned in the background"),
    (
        "login",
        "login [account]",
        "logs in: asks for the account and the password (not echoed); the session's bundle joins `caps`",
    ),
    (
        "setup",
        "setup",
        "first boot: sets the operator's password (volatile: until reboot) and logs in",
    ),
    ("session", "session", "who the shell's session is: principal, profile, bundle, what it may launch"),
    ("logout", "logout", "ends the session: its bundle stops working everywhere; back to anonymous"),
    ("audit", "audit", "the session manager's audit log (operators)"),
    ("exit", "exit", "leaves the shell"),
];

/// Where a granted capability comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `@name`: a capability the shell holds, by CapSet name (copied).
    Held(String),
    /// `$var`: a capability bound to a variable (copied).
    Var(String),
    /// `@stdio` or `client @stdio`: the program's StdIO, served by the
    /// shell while it runs.
    Stdio,
    /// `client @name`: the client facet of an endpoint the shell holds.
    Client(String),
    /// `new kind`: a fresh child-local kernel capability (`endpoint`,
    /// `virtualMemory`, `frameAllocator`, `null`).
    New(String),
}

/// One `name: source` of a grant list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The name the program looks the capability up by.
    pub name: String,
    /// Where it comes from.
    pub source: Source,
}

/// One parsed command line.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Nothing typed.
    Empty,
    /// `help` or `help <command>`.
    Help(Option<String>),
    /// `caps`.
    Caps,
    /// `inspect <cap>`.
    Inspect(String),
    /// `protocol <cap> <Interface>`.
    Protocol(String, String),
    /// `run` (no binding) or `spawn` (bound to a variable).
    Run {
        /// The boot binary.
        binary: String,
        /// The capabilities it gets.
        grants: Vec<Grant>,
        /// `spawn ... -> $var`: in the background, bound to `var`.
        spawn: Option<String>,
    },
    /// `wait $p`.
    Wait(String),
    /// `kill $p`.
    Kill(String),
    /// `jobs`.
    Jobs,
    /// `login` or `login <account>`.
    Login(Option<String>),
    /// `setup`.
    Setup,
    /// `session`.
    Session,
    /// `logout`.
    Logout,
    /// `audit`.
    Audit,
    /// `exit`.
    Exit,
    /// A typed call.
    Call(Line),
}

/// A line that is not a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mistake {
    /// Where (a byte offset), if it is one place.
    pub at: Option<usize>,
    /// What is wrong, for a person.
    pub message: String,
}

fn mistake(at: Option<usize>, message: impl Into<String>) -> Mistake {
    Mistake {
        at,
        message: message.into(),
    }
}

/// Parses one command line.
pub fn parse(line: &str) -> Result<Command, Mistake> {
    let trimmed = line.trim();
    let (word, rest) = match trimmed.find(char::is_whitespace) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim()),
        None => (trimmed, ""),
    };
    let no_args = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(mistake(None, alloc::format!("`{word}` takes no arguments")))
        }
    };
    match word {
        "" => Ok(Command::Empty),
        "help" => Ok(Command::Help(
            (!rest.is_empty()).then(|| String::from(rest)),
        )),
        "caps" => no_args(Command::Caps),
        "jobs" => no_args(Command::Jobs),
        "setup" => no_args(Command::Setup),
        "session" => no_args(Command::Session),
        "logout" => no_args(Command::Logout),
        "audit" => no_args(Command::Audit),
        "login" => match rest {
            "" => Ok(Command::Login(None)),
            r if r.contains(char::is_whitespace) => Err(mistake(None, "usage: login [account]")),
            r => Ok(Command::Login(Some(String::from(r)))),
        },
        "exit" => no_args(Command::Exit),
        "inspect" => match rest {
            "" => Err(mistake(None, "usage: inspect <cap>")),
            r if r.contains(char::is_whitespace) => Err(mistake(None, "usage: inspect <cap>")),
            r => Ok(Command::Inspect(String::from(r))),
        },
        "protocol" => match rest.split_whitespace().collect::<Vec<_>>()[..] {
            [cap, iface] => Ok(Command::Protocol(String::from(cap), String::from(iface))),
            _ => Err(mistake(None, "usage: protocol <cap> <Interface>")),
        },
        "wait" | "kill" => {
            let var = rest
                .strip_prefix('$')
                .filter(|v| is_name(v))
                .ok_or_else(|| mistake(None, alloc::format!("usage: {word} $p")))?;
            Ok(if word == "wait" {
                Command::Wait(String::from(var))
            } else {
                Command::Kill(String::from(var))
            })
        }
        "run" | "spawn" => parse_run(word, rest, line.len() - rest.len()),
        _ => capos_reflect::parse(line)
            .map(Command::Call)
            .map_err(|e| mistake(Some(e.pos), e.message)),
    }
}

/// Whether `s` is a name: a letter or `_`, then letters, digits, `_`, `-`.
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `run "binary" [with {...}]`, `spawn "binary" [with {...}] -> $p`;
/// `rest` starts at byte `base` of the line.
fn parse_run(word: &str, rest: &str, base: usize) -> Result<Command, Mistake> {
    let usage = || {
        mistake(
            None,
            if word == "run" {
                "usage: run \"binary\" [with { name: source, ... }]"
            } else {
                "usage: spawn \"binary\" [with { name: source, ... }] -> $p"
            },
        )
    };
    let rest_trim = rest.trim_start();
    let after_quote = rest_trim.strip_prefix('"').ok_or_else(usage)?;
    let end = after_quote
        .find('"')
        .ok_or_else(|| mistake(Some(base), "the binary's name has no closing quote"))?;
    let binary = &after_quote[..end];
    if !is_name(binary) {
        return Err(mistake(
            Some(base),
            alloc::format!("{binary:?} is not a binary name"),
        ));
    }
    let mut tail = after_quote[end + 1..].trim_start();
    let mut grants = Vec::new();
    if let Some(after_with) = tail.strip_prefix("with") {
        let body = after_with.trim_start();
        let body = body
            .strip_prefix('{')
            .ok_or_else(|| mistake(None, "`with` is followed by { name: source, ... }"))?;
        let close = body
            .find('}')
            .ok_or_else(|| mistake(None, "the grant list has no closing }"))?;
        grants = parse_grants(&body[..close])?;
        tail = body[close + 1..].trim_start();
    }
    let spawn = match (word, tail) {
        ("run", "") => None,
        ("spawn", t) => {
            let var = t
                .strip_prefix("->")
                .map(str::trim)
                .and_then(|v| v.strip_prefix('$'))
                .filter(|v| is_name(v))
                .ok_or_else(|| mistake(None, "spawn binds the program to a variable: -> $p"))?;
            Some(String::from(var))
        }
        _ => return Err(usage()),
    };
    Ok(Command::Run {
        binary: String::from(binary),
        grants,
        spawn,
    })
}

fn parse_grants(body: &str) -> Result<Vec<Grant>, Mistake> {
    let mut grants: Vec<Grant> = Vec::new();
    for item in body.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, source) = item
            .split_once(':')
            .ok_or_else(|| mistake(None, alloc::format!("`{item}` is not `name: source`")))?;
        let name = name.trim();
        if !is_name(name) {
            return Err(mistake(
                None,
                alloc::format!("{name:?} is not a capability name"),
            ));
        }
        if grants.iter().any(|g| g.name == name) {
            return Err(mistake(None, alloc::format!("`{name}` is granted twice")));
        }
        let source = parse_source(source.trim())?;
        grants.push(Grant {
            name: String::from(name),
            source,
        });
    }
    Ok(grants)
}

fn parse_source(s: &str) -> Result<Source, Mistake> {
    let held = |n: &str| n.strip_prefix('@').filter(|n| is_name(n)).map(String::from);
    if let Some(c) = s.strip_prefix("client ") {
        return match held(c.trim()) {
            Some(n) if n == "stdio" => Ok(Source::Stdio),
            Some(n) => Ok(Source::Client(n)),
            None => Err(mistake(None, alloc::format!("`{s}`: client takes @name"))),
        };
    }
    if let Some(kind) = s.strip_prefix("new ") {
        let kind = kind.trim();
        return match kind {
            "endpoint" | "virtualMemory" | "frameAllocator" | "null" => {
                Ok(Source::New(String::from(kind)))
            }
            _ => Err(mistake(
                None,
                alloc::format!(
                    "`new {kind}`: only endpoint, virtualMemory, frameAllocator and null are made fresh for a program"
                ),
            )),
        };
    }
    if let Some(v) = s.strip_prefix('$').filter(|v| is_name(v)) {
        return Ok(Source::Var(String::from(v)));
    }
    match held(s) {
        Some(n) if n == "stdio" => Ok(Source::Stdio),
        Some(n) => Ok(Source::Held(n)),
        None => Err(mistake(
            None,
            alloc::format!(
                "`{s}` is not a source: @name, $var, client @name, @stdio or new <kind>"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins() {
        assert_eq!(parse("  "), Ok(Command::Empty));
        assert_eq!(parse("help"), Ok(Command::Help(None)));
        assert_eq!(parse("help run"), Ok(Command::Help(Some("run".into()))));
        assert_eq!(parse("caps"), Ok(Command::Caps));
        assert_eq!(parse("inspect timer"), Ok(Command::Inspect("timer".into())));
        assert_eq!(parse("inspect $t"), Ok(Command::Inspect("$t".into())));
        assert_eq!(parse("wait $p"), Ok(Command::Wait("p".into())));
        assert_eq!(parse("kill $job-1"), Ok(Command::Kill("job-1".into())));
        assert_eq!(parse("exit"), Ok(Command::Exit));
        assert_eq!(
            parse("protocol ctl ServiceControl"),
            Ok(Command::Protocol("ctl".into(), "ServiceControl".into()))
        );
        assert!(parse("protocol ctl").is_err());
        assert!(parse("caps now")
            .unwrap_err()
            .message
            .contains("takes no arguments"));
        assert!(parse("wait p")
            .unwrap_err()
            .message
            .contains("usage: wait $p"));
        assert!(parse("inspect").is_err());
    }

    #[test]
    fn session_commands() {
        assert_eq!(parse("login"), Ok(Command::Login(None)));
        assert_eq!(
            parse("login operator"),
            Ok(Command::Login(Some("operator".into())))
        );
        assert!(parse("login a b")
            .unwrap_err()
            .message
            .contains("usage: login"));
        assert_eq!(parse("setup"), Ok(Command::Setup));
        assert_eq!(parse("session"), Ok(Command::Session));
        assert_eq!(parse("logout"), Ok(Command::Logout));
        assert_eq!(parse("audit"), Ok(Command::Audit));
        assert!(parse("logout now").is_err());
        // Every command has help.
        for w in ["login", "setup", "session", "logout", "audit"] {
            assert!(COMMANDS.iter().any(|c| c.0 == w), "{w}");
        }
    }

    #[test]
    fn run_and_spawn() {
        assert_eq!(
            parse(
                r#"run "paperclips" with { stdio: client @stdio, timer: @timer, t2: $t, ep: new endpoint, e: client @echo }"#
            ),
            Ok(Command::Run {
                binary: "paperclips".into(),
                grants: vec![
                    Grant {
                        name: "stdio".into(),
                        source: Source::Stdio
                    },
                    Grant {
                        name: "timer".into(),
                        source: Source::Held("timer".into())
                    },
                    Grant {
                        name: "t2".into(),
                        source: Source::Var("t".into())
                    },
                    Grant {
                        name: "ep".into(),
                        source: Source::New("endpoint".into())
                    },
                    Grant {
                        name: "e".into(),
                        source: Source::Client("echo".into())
                    },
                ],
                spawn: None,
            })
        );
        assert_eq!(
            parse(r#"spawn "worker" -> $w"#),
            Ok(Command::Run {
                binary: "worker".into(),
                grants: vec![],
                spawn: Some("w".into())
            })
        );
        assert_eq!(
            parse(r#"run "hello" with { console: @stdio }"#)
                .map(|c| matches!(c, Command::Run { .. })),
            Ok(true)
        );
    }

    #[test]
    fn run_mistakes_say_what_is_wrong() {
        let m = |l: &str| parse(l).unwrap_err().message;
        assert!(m("run worker").contains("usage: run"));
        assert!(m(r#"run "worker"#).contains("no closing quote"));
        assert!(m(r#"run "../x""#).contains("is not a binary name"));
        assert!(m(r#"run "w" with { a: @x, a: @y }"#).contains("granted twice"));
        assert!(m(r#"run "w" with { a @x }"#).contains("is not `name: source`"));
        assert!(m(r#"run "w" with { a: timer }"#).contains("is not a source"));
        assert!(m(r#"run "w" with { a: new console }"#).contains("only endpoint"));
        assert!(m(r#"spawn "w""#).contains("-> $p"));
        assert!(m(r#"run "w" -> $p"#).contains("usage: run"));
    }

    #[test]
    fn anything_else_is_a_typed_call() {
        match parse(r#"$t = echo.echo(data: "hi")"#) {
            Ok(Command::Call(line)) => {
                assert_eq!(line.bind.as_deref(), Some("t"));
                assert_eq!(line.method, "echo");
            }
            other => panic!("{other:?}"),
        }
        let e = parse("timer.now(").unwrap_err();
        assert!(e.at.is_some());
    }
}
