//! The capability shell: a person at the terminal sees every capability
//! the shell holds, inspects its interface and calls any method by name
//! with typed arguments, reading the interfaces from the schema registry at
//! run time (`capos_reflect`); and runs programs through its Launcher with
//! exactly the capabilities they are named, serving their StdIO on its
//! terminal. The grammar and the commands are in `docs/shell.md`.
//!
//! Capabilities it looks for (only `terminal` is required): `terminal`
//! (the TerminalSession, moved to it by init), `registry` (a client of the
//! SchemaRegistry), `launcher` (init's Launcher), `stdio` (an endpoint of
//! its own on which it serves its programs' StdIO), `console` (the kernel
//! log, for a start-up line); every other capability it holds is for the
//! person to use.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use capos_reflect::{Schema, Target};
use capos_rt::caps::api::{process_handle, std_i_o, terminal_session};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::interfaces;
use capos_rt::caps::schema::capos_capnp::{self, KernelCapKind};
use capos_rt::caps::schema::services_capnp::std_i_o as stdio_proto;
use capos_rt::client::call_raw;
use capos_rt::ring::{TRANSFER_COPY, TRANSFER_MOVE};
use capos_rt::{
    capnp, CallError, Cap, CapHandle, ClientEndpoint, Console, Endpoint, Interface, Owned,
    ProcessHandle, Runtime, TerminalSession, Ticket,
};
use shell::command::{self, Command, Grant, Source, COMMANDS};
use shell::editor::{Completion, Edit, Editor, Key};

mod login;

capos_rt::entry!(main);

/// The prompt.
const PROMPT: &str = "capos> ";
/// Result bytes a typed call may take (the ring's largest result).
const RESULT_CAPACITY: usize = 64 * 1024;
/// Keys one read asks for at most.
const KEYS_PER_READ: u32 = 128;
/// Parameter bytes a StdIO call may carry (a `writeLine` of 16 KiB).
const STDIO_CAPACITY: usize = 16 * 1024 + 64;

fn main(rt: &mut Runtime) -> i32 {
    let console = rt.cap::<Console>("console").ok();
    let log = |s: &str| {
        if let Some(c) = &console {
            let _ = c.write_line(s);
        }
    };
    let Ok(term) = rt.cap::<TerminalSession>("terminal") else {
        log("shell: no terminal capability; nothing to do");
        return 2;
    };
    let mut shell = Shell::new(rt, term);
    if let Err(e) = shell.join_anonymous() {
        log(&format!("shell: the session manager did not answer: {e}"));
    }
    log(&format!(
        "shell: started on the terminal; registry {}, launcher {}, session {}, {} capabilities",
        if shell.registry.is_some() {
            "yes"
        } else {
            "no"
        },
        if shell.current_launcher().is_some() {
            "yes"
        } else {
            "no"
        },
        shell.view().map_or("none", |v| v.profile.as_str()),
        rt.capset().len()
    ));
    let code = match shell.run() {
        Ok(()) => 0,
        Err(e) => {
            log(&format!("shell: the terminal failed: {e}"));
            3
        }
    };
    log("shell: exited");
    code
}

/// A program started with `spawn`.
struct Job {
    var: String,
    binary: String,
    pid: u64,
    /// Its exit code, once `wait` saw it.
    exited: Option<i64>,
    /// A `wait` given up with Ctrl-C, still submitted: the next `wait`
    /// takes its completion.
    waiting: Option<Ticket>,
}

/// A bound variable: a capability the shell owns.
struct Var {
    name: String,
    cap: CapHandle,
}

struct Shell<'a> {
    rt: &'a Runtime,
    term: TerminalSession,
    registry: Option<capos_rt::api::SchemaRegistry>,
    launcher: Option<capos_rt::api::Launcher>,
    stdio: Option<Endpoint>,
    /// The RECV waiting on `stdio`, kept across programs.
    stdio_recv: Option<Ticket>,
    schema: Schema,
    /// Interface id and display name of every interface the registry knows.
    names: Vec<(u64, String)>,
    vars: Vec<Var>,
    jobs: Vec<Job>,
    editor: Editor,
    /// Protocols named with `protocol` for endpoint clients (by cap id).
    protocols: Vec<(u64, u64)>,
    /// Keys read and not yet used (a burst can hold more than one line).
    keys: VecDeque<Key>,
    /// The anonymous session the shell was started in, if it has a
    /// session manager (`sessions`).
    anonymous: Option<login::SessionView>,
    /// The session `login` or `setup` opened.
    user: Option<login::SessionView>,
}

/// Something to tell the person instead of a result.
struct Problem(String);

impl From<CallError> for Problem {
    fn from(e: CallError) -> Self {
        Problem(describe_error(&e))
    }
}

impl From<capnp::Error> for Problem {
    fn from(e: capnp::Error) -> Self {
        Problem(describe_error(&CallError::from(e)))
    }
}

impl From<capos_reflect::Error> for Problem {
    fn from(e: capos_reflect::Error) -> Self {
        Problem(e.to_string())
    }
}

/// A call's failure as a person reads it.
fn describe_error(e: &CallError) -> String {
    match e {
        CallError::Exception(x) => exception_text(x),
        CallError::Transport(t) => format!("the call failed: {}", t.name()),
        other => format!("{other}"),
    }
}

fn exception_text(x: &CapException) -> String {
    format!("exception: {x}")
}

impl<'a> Shell<'a> {
    fn new(rt: &'a Runtime, term: TerminalSession) -> Self {
        let registry = rt
            .cap::<ClientEndpoint>("registry")
            .ok()
            .map(|c| c.protocol::<capos_rt::api::SchemaRegistry>());
        let launcher = rt
            .cap::<ClientEndpoint>("launcher")
            .ok()
            .map(|c| c.protocol::<capos_rt::api::Launcher>());
        let names = registry
            .as_ref()
            .and_then(|r| interface_names(r).ok())
            .unwrap_or_default();
        Shell {
            rt,
            term,
            registry,
            launcher,
            stdio: rt.cap::<Endpoint>("stdio").ok(),
            stdio_recv: None,
            schema: Schema::new(),
            names,
            vars: Vec::new(),
            jobs: Vec::new(),
            editor: Editor::new(),
            protocols: Vec::new(),
            keys: VecDeque::new(),
            anonymous: None,
            user: None,
        }
    }

    /// Writes `text` with `\n` as `\r\n`.
    fn say(&self, text: &str) -> Result<(), CallError> {
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if c == '\n' {
                out.push('\r');
            }
            out.push(c);
        }
        out.push_str("\r\n");
        self.term.write(out.as_bytes())
    }

    fn run(&mut self) -> Result<(), CallError> {
        self.say("capOS shell. `help` lists the commands; `caps` what you hold.")?;
        loop {
            let prompt = self.prompt();
            let line = match self.read_line(&prompt)? {
                Edit::Line(l) => l,
                Edit::Interrupted | Edit::Pending => continue,
                Edit::EndOfInput => {
                    self.say("exit")?;
                    return Ok(());
                }
            };
            match command::parse(&line) {
                Ok(Command::Exit) => return Ok(()),
                Ok(c) => {
                    if let Err(Problem(p)) = self.execute(c) {
                        self.say(&format!("! {p}"))?;
                    }
                }
                Err(m) => {
                    if let Some(at) = m.at {
                        let col =
                            prompt.chars().count() + line[..at.min(line.len())].chars().count();
                        self.say(&format!("{}^", " ".repeat(col)))?;
                    }
                    self.say(&format!("! {}", m.message))?;
                }
            }
        }
    }

    /// The next key: one left from the last burst, else the next burst.
    fn read_key(&mut self) -> Result<Key, CallError> {
        loop {
            if let Some(k) = self.keys.pop_front() {
                return Ok(k);
            }
            let reply = self.term.read_keys(KEYS_PER_READ)?;
            for k in reply.get()?.get_keys()?.iter() {
                self.keys.push_back(key_of(k)?);
            }
        }
    }

    /// Reads one line after `prompt`, edited.
    fn read_line(&mut self, prompt: &str) -> Result<Edit, CallError> {
        self.term.write(prompt.as_bytes())?;
        self.editor.start(prompt);
        loop {
            if self.keys.is_empty() {
                let key = self.read_key()?;
                self.keys.push_front(key);
            }
            // Every key of the burst, then one write of their echo.
            let mut out = Vec::new();
            let mut edit = Edit::Pending;
            while let Some(key) = self.keys.pop_front() {
                if key == Key::Tab {
                    self.load_for_completion();
                }
                let Shell {
                    editor,
                    rt,
                    vars,
                    schema,
                    names,
                    protocols,
                    anonymous,
                    user,
                    ..
                } = self;
                let bundle: &[(String, CapHandle)] = user
                    .as_ref()
                    .or(anonymous.as_ref())
                    .map_or(&[], |v| &v.bundle);
                let held = Held { rt, bundle, vars };
                edit = editor.key(key, &mut out, &mut |line, at| {
                    complete(&held, schema, names, protocols, line, at)
                });
                if edit != Edit::Pending {
                    break;
                }
            }
            // One bell for a burst of refused keys.
            out.dedup_by(|a, b| *a == 0x07 && *b == 0x07);
            if !out.is_empty() {
                self.term.write(&out)?;
            }
            if edit != Edit::Pending {
                return Ok(edit);
            }
        }
    }

    /// Before Tab completes `cap.method`, reads `cap`'s interface from the
    /// registry (a failure only means nothing to complete).
    fn load_for_completion(&mut self) {
        let before: String = self
            .editor
            .text()
            .chars()
            .take(self.editor.cursor())
            .collect();
        let word = before
            .rsplit(|c: char| c.is_whitespace() || "({,=".contains(c))
            .next()
            .unwrap_or("");
        let Some((target, _)) = word.split_once('.') else {
            return;
        };
        let target = match target.strip_prefix('$') {
            Some(v) => Target::Var(String::from(v)),
            None => Target::Name(String::from(target)),
        };
        if let Ok(cap) = self.resolve(&target) {
            let _ = self.load(self.interface_of(&cap));
        }
    }

    fn execute(&mut self, c: Command) -> Result<(), Problem> {
        match c {
            Command::Empty | Command::Exit => Ok(()),
            Command::Help(topic) => self.help(topic.as_deref()),
            Command::Caps => self.caps(),
            Command::Inspect(what) => self.inspect(&what),
            Command::Protocol(cap, iface) => self.set_protocol(&cap, &iface),
            Command::Call(line) => self.call(line),
            Command::Run {
                binary,
                grants,
                spawn,
            } => self.launch(&binary, &grants, spawn),
            Command::Wait(var) => self.wait(&var),
            Command::Kill(var) => self.kill(&var),
            Command::Jobs => self.list_jobs(),
            Command::Login(account) => self.login(account),
            Command::Setup => self.setup(),
            Command::Session => self.session(),
            Command::Logout => self.logout(),
            Command::Audit => self.audit(),
        }
    }

    fn help(&self, topic: Option<&str>) -> Result<(), Problem> {
        match topic {
            None => {
                let mut text = String::from("Commands:\n");
                for (_, usage, what) in COMMANDS {
                    text.push_str(&format!("  {usage}\n      {what}\n"));
                }
                text.push_str(
                    "Calls:\n  cap.method(name: value, ...)      e.g. timer.now(), echo.echo(data: \"hi\")\n  $v = cap.method(...)              binds the result's capability to $v\n\
                     Values are Cap'n Proto literals: 42, -1, 0x10, 1.5, true, \"text\", 0x\"c0ffee\", [1, 2], (field = value), enumerants.\n\
                     Keys: arrows, Home/End, Backspace/Delete, Ctrl-U, Ctrl-K, Tab completes, Up/Down recall, Ctrl-C drops the line, Ctrl-D leaves.",
                );
                self.say(&text)?;
            }
            Some(name) => match COMMANDS.iter().find(|(n, _, _)| *n == name) {
                Some((_, usage, what)) => self.say(&format!("{usage}\n    {what}"))?,
                None => {
                    return Err(Problem(format!(
                        "no command `{name}`; the commands: {}",
                        COMMANDS.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
                    )))
                }
            },
        }
        Ok(())
    }

    /// The display name of interface `id`.
    fn interface_name(&self, id: u64) -> String {
        self.names
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| short_name(n).to_string())
            .unwrap_or_else(|| format!("{id:#x}"))
    }

    fn caps(&self) -> Result<(), Problem> {
        let mut text = String::new();
        for e in self.rt.capset() {
            let name = e.name().unwrap_or("<invalid name>");
            let cap = Cap::new(e.cap_id, e.interface_id, self.rt.ring().clone());
            text.push_str(&self.cap_line(name, &cap));
        }
        if let Some(view) = self.view() {
            text.push_str(&format!("session {} bundle:", view.who()));
            if view.bundle.is_empty() {
                text.push_str(" (none)");
            }
            text.push('\n');
            for (name, cap) in &view.bundle {
                text.push_str(&self.cap_line(name, cap));
            }
        }
        for v in &self.vars {
            text.push_str(&format!(
                "  ${:<11} {:<18} id {:#x}\n",
                v.name,
                self.interface_name(v.cap.interface_id()),
                v.cap.id()
            ));
        }
        self.say(text.trim_end_matches('\n'))?;
        Ok(())
    }

    /// One line of `caps`: name, interface (and the protocol an endpoint
    /// client speaks), id.
    fn cap_line(&self, name: &str, cap: &Cap) -> String {
        let speaks = self.interface_of(cap);
        let shown = if speaks == cap.interface_id() {
            self.interface_name(speaks)
        } else {
            format!(
                "{} ({})",
                self.interface_name(cap.interface_id()),
                self.interface_name(speaks)
            )
        };
        format!("  {name:<16} {shown:<32} id {:#x}\n", cap.id())
    }

    /// The capability a name (`timer`) or variable (`$t`) denotes.
    fn resolve(&self, target: &Target) -> Result<Cap, Problem> {
        match target {
            Target::Name(n) => {
                if let Some(cap) = self.view().and_then(|v| v.find(n)) {
                    return Ok(cap);
                }
                self.rt.cap_any(n).map_err(|_| {
                    Problem(format!(
                        "no capability named `{n}`; `caps` lists what the shell holds"
                    ))
                })
            }
            Target::Var(v) => self
                .vars
                .iter()
                .find(|x| x.name == *v)
                .map(|x| (*x.cap).clone())
                .ok_or_else(|| Problem(format!("no variable ${v}"))),
        }
    }

    /// The interface to call `cap` as: its own, or for an endpoint client
    /// the protocol named with `protocol`, else one guessed from its name
    /// (`echo` speaks `Echo`, `registry` `SchemaRegistry`: the one
    /// interface whose name is, or ends with, the capability's name).
    fn interface_of(&self, cap: &Cap) -> u64 {
        speaks(self.rt, &self.names, &self.protocols, cap)
    }

    fn set_protocol(&mut self, cap: &str, iface: &str) -> Result<(), Problem> {
        let target = match cap.strip_prefix('$') {
            Some(v) => Target::Var(String::from(v)),
            None => Target::Name(String::from(cap)),
        };
        let c = self.resolve(&target)?;
        if c.interface_id() != interfaces::CLIENT_ENDPOINT {
            return Err(Problem(format!(
                "`{cap}` is a {}, not an endpoint client: its interface is its own",
                self.interface_name(c.interface_id())
            )));
        }
        let id = self
            .names
            .iter()
            .find(|(_, n)| short_name(n) == iface || n == iface)
            .map(|(id, _)| *id)
            .ok_or_else(|| Problem(format!("the registry knows no interface `{iface}`")))?;
        self.protocols.retain(|(k, _)| *k != c.id());
        self.protocols.push((c.id(), id));
        self.say(&format!("{cap} speaks {}", self.interface_name(id)))?;
        Ok(())
    }

    /// Makes sure the schema holds everything a call on `iface` touches.
    fn load(&mut self, iface: u64) -> Result<(), Problem> {
        let registry = self.registry.as_ref().ok_or_else(|| {
            Problem(String::from(
                "no schema registry: the shell cannot read interfaces",
            ))
        })?;
        self.schema
            .load(iface, |id| registry.node(id).ok())
            .map_err(|e| match e {
                capos_reflect::Error::Missing(id) => {
                    Problem(format!("the registry has no schema for interface {id:#x}"))
                }
                other => Problem(other.to_string()),
            })?;
        Ok(())
    }

    fn inspect(&mut self, what: &str) -> Result<(), Problem> {
        let target = match what.strip_prefix('$') {
            Some(v) => Target::Var(String::from(v)),
            None => Target::Name(String::from(what)),
        };
        let cap = self.resolve(&target)?;
        let iface = self.interface_of(&cap);
        self.load(iface)?;
        let text = capos_reflect::describe(&self.schema, iface)?;
        self.say(&format!(
            "{what}: {} ({iface:#x})\n{}",
            self.interface_name(iface),
            text.trim_end()
        ))?;
        Ok(())
    }

    fn call(&mut self, line: capos_reflect::Line) -> Result<(), Problem> {
        let cap = self.resolve(&line.target)?;
        let iface = self.interface_of(&cap);
        self.load(iface)?;
        let call = capos_reflect::encode(&self.schema, iface, &line.method, &line.args)?;
        let (bytes, caps) = call_raw(&cap, call.ordinal, call.params, RESULT_CAPACITY, &[])?;
        let text = capos_reflect::decode(&self.schema, iface, call.ordinal, &bytes)?;
        self.say(&text)?;
        self.bind(line.bind.as_deref(), caps)
    }

    /// Binds a call's result capabilities: the first to `$name`, more to
    /// `$name1`, `$name2`...; unbound ones are released.
    fn bind(&mut self, name: Option<&str>, caps: Vec<CapHandle>) -> Result<(), Problem> {
        let Some(name) = name else {
            if !caps.is_empty() {
                self.say(&format!(
                    "({} result capabilities released: bind them with $name = ...)",
                    caps.len()
                ))?;
            }
            return Ok(());
        };
        if caps.is_empty() {
            self.say(&format!("(no capability to bind to ${name})"))?;
        }
        for (i, cap) in caps.into_iter().enumerate() {
            let var = if i == 0 {
                String::from(name)
            } else {
                format!("{name}{i}")
            };
            self.say(&format!(
                "${var} = {} (id {:#x})",
                self.interface_name(cap.interface_id()),
                cap.id()
            ))?;
            self.vars.retain(|v| v.name != var);
            self.vars.push(Var { name: var, cap });
        }
        Ok(())
    }

    fn var_cap(&self, var: &str) -> Result<Cap, Problem> {
        self.resolve(&Target::Var(String::from(var)))
    }

    /// `run` and `spawn`.
    fn launch(
        &mut self,
        binary: &str,
        grants: &[Grant],
        spawn: Option<String>,
    ) -> Result<(), Problem> {
        let Some(launcher) = self.current_launcher() else {
            return Err(Problem(String::from(
                "no launcher: this shell cannot start programs",
            )));
        };
        // What each grant sends, and the facets made for this launch (they
        // are moved to the program; the shell keeps none).
        let mut sent: Vec<(Cap, u32)> = Vec::new();
        let mut made: Vec<CapHandle> = Vec::new();
        let mut sources: Vec<(String, u64, Option<KernelCapKind>)> = Vec::new();
        for g in grants {
            let (cap, mode) = match &g.source {
                Source::New(kind) => {
                    let (k, iface) = kernel_kind(kind);
                    sources.push((g.name.clone(), iface, Some(k)));
                    continue;
                }
                Source::Held(n) => (self.resolve(&Target::Name(n.clone()))?, TRANSFER_COPY),
                Source::Var(v) => (self.var_cap(v)?, TRANSFER_COPY),
                Source::Stdio => {
                    if spawn.is_some() {
                        return Err(Problem(String::from(
                            "a spawned program runs in the background: @stdio is for `run`",
                        )));
                    }
                    let ep = self.stdio.as_ref().ok_or_else(|| {
                        Problem(String::from(
                            "no stdio endpoint: this shell cannot serve StdIO",
                        ))
                    })?;
                    let facet = ep.client_facet()?;
                    let cap = facet.cap().clone();
                    made.push(facet.into_handle());
                    (cap, TRANSFER_MOVE)
                }
                Source::Client(n) => {
                    let cap = self.resolve(&Target::Name(n.clone()))?;
                    match cap.interface_id() {
                        interfaces::CLIENT_ENDPOINT => (cap, TRANSFER_COPY),
                        interfaces::ENDPOINT => {
                            let facet = Endpoint::from_cap(cap).client_facet()?;
                            let cap = facet.cap().clone();
                            made.push(facet.into_handle());
                            (cap, TRANSFER_MOVE)
                        }
                        other => {
                            return Err(Problem(format!(
                                "`{n}` is a {}, not an endpoint: `client @{n}` needs one",
                                self.interface_name(other)
                            )))
                        }
                    }
                }
            };
            sources.push((g.name.clone(), cap.interface_id(), None));
            sent.push((cap, mode));
        }
        let mut transferred = 0u16;
        let refs: Vec<(&Cap, u32)> = sent.iter().map(|(c, m)| (c, *m)).collect();
        let mut reply = launcher.call_launch(
            |mut p| {
                p.set_binary(binary);
                p.set_name(binary);
                let mut list = p.init_grants(sources.len() as u32);
                for (i, (name, iface, kind)) in sources.iter().enumerate() {
                    let mut g = list.reborrow().get(i as u32);
                    g.set_name(name.as_str());
                    g.set_expected_interface_id(*iface);
                    match kind {
                        Some(k) => g.init_source().set_kernel(*k),
                        None => {
                            g.init_source().set_transferred(transferred);
                            transferred += 1;
                        }
                    }
                }
            },
            &refs,
        )?;
        // Moved facets now belong to the program.
        for m in made {
            let _ = m.into_cap();
        }
        let index = reply.get()?.get_handle();
        let handle: Owned<ProcessHandle> = reply.take_cap(index)?;
        let pid = handle.pid()?;
        match spawn {
            Some(var) => {
                self.say(&format!(
                    "[pid {pid}] {binary} started; ${var} is its handle"
                ))?;
                self.jobs.retain(|j| j.var != var);
                self.jobs.push(Job {
                    var: var.clone(),
                    binary: String::from(binary),
                    pid,
                    exited: None,
                    waiting: None,
                });
                self.vars.retain(|v| v.name != var);
                self.vars.push(Var {
                    name: var,
                    cap: handle.into_handle(),
                });
                Ok(())
            }
            None => self.foreground(&handle, pid),
        }
    }

    /// Submits a `readKeys` without waiting.
    fn start_key(&self) -> Result<Ticket, CallError> {
        let mut m = capnp::message::Builder::new_default();
        m.init_root::<capos_capnp::terminal_session::read_keys_params::Builder>()
            .set_max(KEYS_PER_READ);
        self.rt.ring().submit(
            self.term.cap().id(),
            terminal_session::READ_KEYS,
            capnp::serialize::write_message_to_words(&m),
            capos_rt::ring::MAX_RESULT_LEN as usize,
        )
    }

    /// Submits `handle.wait()` without waiting.
    fn start_wait(&self, handle: &Cap) -> Result<Ticket, CallError> {
        let mut m = capnp::message::Builder::new_default();
        m.init_root::<capos_capnp::process_handle::wait_params::Builder>();
        self.rt.ring().submit(
            handle.id(),
            process_handle::WAIT,
            capnp::serialize::write_message_to_words(&m),
            4096,
        )
    }

    /// Ends a pending key read and collects it.
    fn stop_key(&self, ticket: Ticket) {
        let _ = self.term.cancel_read();
        let _ = self.rt.ring().wait(ticket);
    }

    /// Runs a program in the foreground: serves its StdIO on the terminal
    /// until it exits; Ctrl-C ends it.
    fn foreground(&mut self, handle: &ProcessHandle, pid: u64) -> Result<(), Problem> {
        let ring = self.rt.ring();
        let exit = self.start_wait(handle.cap())?;
        let mut key = self.start_key()?;
        if self.stdio_recv.is_none() {
            if let Some(ep) = &self.stdio {
                self.stdio_recv = Some(ep.start_recv(STDIO_CAPACITY)?);
            }
        }
        // What the program wrote since its last line break: the prompt its
        // next line is edited after.
        let mut partial = String::new();
        let mut reading: Option<u64> = None;
        let mut typed: VecDeque<Key> = VecDeque::new();
        let code = loop {
            let mut waiting = Vec::from([exit, key]);
            waiting.extend(self.stdio_recv);
            let done = ring.wait_any(&waiting)?;
            if done == exit {
                let c = ring
                    .take(exit)
                    .ok_or(CallError::Protocol("lost completion"))?;
                break exit_code(c);
            }
            if done == key {
                let c = ring
                    .take(key)
                    .ok_or(CallError::Protocol("lost completion"))?;
                let keys = read_keys_result(c)?;
                key = self.start_key()?;
                for k in keys {
                    if k == Key::Ctrl(b'c') {
                        self.term.write(b"^C\r\n")?;
                        if let Err(e) = handle.kill() {
                            self.say(&format!(
                                "! could not stop pid {pid}: {}",
                                describe_error(&e)
                            ))?;
                        }
                    } else {
                        typed.push_back(k);
                    }
                }
            } else if Some(done) == self.stdio_recv {
                let c = ring
                    .take(done)
                    .ok_or(CallError::Protocol("lost completion"))?;
                let ep = self.stdio.as_ref().ok_or(CallError::Protocol("no stdio"))?;
                self.stdio_recv = Some(ep.start_recv(STDIO_CAPACITY)?);
                let incoming = ep.finish_recv(c)?;
                if u64::from(incoming.caller_pid) != pid {
                    ep.reply_exception(
                        incoming.call_id,
                        &CapException::failed(format!(
                            "this StdIO belongs to pid {pid}, not {}",
                            incoming.caller_pid
                        )),
                    )?;
                    continue;
                }
                if let Some(id) = self.stdio_call(ep, incoming, &mut partial)? {
                    reading = Some(id);
                    self.editor.start(&partial);
                }
            }
            // Keys go to a line the program waits for.
            // (A key is taken only for a line the program waits for: keys
            // typed before its read wait for it.)
            while let Some(id) = reading {
                let Some(k) = typed.pop_front() else {
                    break;
                };
                let mut out = Vec::new();
                let edit = self.editor.key(k, &mut out, &mut |_, at| Completion {
                    start: at,
                    candidates: Vec::new(),
                });
                self.term.write(&out)?;
                let status = match &edit {
                    Edit::Pending => continue,
                    Edit::Line(_) => capos_capnp::terminal_session::LineStatus::Complete,
                    Edit::Interrupted => capos_capnp::terminal_session::LineStatus::Interrupted,
                    Edit::EndOfInput => capos_capnp::terminal_session::LineStatus::EndOfInput,
                };
                let line = match edit {
                    Edit::Line(l) => l,
                    _ => String::new(),
                };
                let ep = self.stdio.as_ref().ok_or(CallError::Protocol("no stdio"))?;
                let mut m = capnp::message::Builder::new_default();
                let mut r = m.init_root::<stdio_proto::read_line_results::Builder>();
                r.set_status(status);
                r.set_line(line.as_bytes());
                ep.reply(id, capnp::serialize::write_message_to_words(&m))?;
                partial.clear();
                reading = None;
            }
        };
        self.stop_key(key);
        if !partial.is_empty() {
            self.term.write(b"\r\n")?;
        }
        self.say(&ended(pid, code))?;
        Ok(())
    }

    /// Serves one StdIO call of the foreground program; the call id of a
    /// `readLine`, answered once its line is typed.
    fn stdio_call(
        &self,
        ep: &Endpoint,
        call: capos_rt::IncomingCall,
        partial: &mut String,
    ) -> Result<Option<u64>, CallError> {
        let words = call.aligned_params();
        let params = &capnp::Word::words_to_bytes(&words)[..call.params.len()];
        let reader = capnp::serialize::read_message_from_flat_slice(
            &mut &params[..],
            capnp::message::ReaderOptions::new(),
        );
        // Zero result bytes: every field at its default (an empty result).
        let empty = Vec::new;
        match (call.method_id, reader) {
            (std_i_o::WRITE, Ok(r)) => {
                let data = r
                    .get_root::<stdio_proto::write_params::Reader>()
                    .and_then(|p| p.get_data())
                    .map_err(CallError::Decode)?;
                self.program_output(data, partial)?;
                ep.reply(call.call_id, empty())?;
            }
            (std_i_o::WRITE_LINE, Ok(r)) => {
                let text = r
                    .get_root::<stdio_proto::write_line_params::Reader>()
                    .and_then(|p| p.get_text())
                    .map_err(CallError::Decode)?;
                let text = text.to_str().map_err(|e| CallError::Decode(e.into()))?;
                self.program_output(text.as_bytes(), partial)?;
                self.program_output(b"\n", partial)?;
                ep.reply(call.call_id, empty())?;
            }
            (std_i_o::READ_LINE, Ok(_)) => return Ok(Some(call.call_id)),
            (_, Err(e)) => ep.reply_exception(
                call.call_id,
                &CapException::failed(format!("malformed parameters: {e}")),
            )?,
            (m, _) => ep.reply_exception(
                call.call_id,
                &CapException::failed(format!("StdIO has no method {m}")),
            )?,
        }
        Ok(None)
    }

    /// Writes a program's output, `\n` as `\r\n`, keeping what follows its
    /// last line break.
    fn program_output(&self, data: &[u8], partial: &mut String) -> Result<(), CallError> {
        let mut out = Vec::with_capacity(data.len() + 8);
        for &b in data {
            if b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
        self.term.write(&out)?;
        match data.iter().rposition(|&b| b == b'\n') {
            Some(i) => *partial = String::from_utf8_lossy(&data[i + 1..]).into_owned(),
            None => partial.push_str(&String::from_utf8_lossy(data)),
        }
        Ok(())
    }

    fn job_index(&self, var: &str) -> Result<usize, Problem> {
        self.jobs.iter().position(|j| j.var == var).ok_or_else(|| {
            Problem(format!(
                "${var} is not a spawned program; `jobs` lists them"
            ))
        })
    }

    fn wait(&mut self, var: &str) -> Result<(), Problem> {
        let i = self.job_index(var)?;
        if let Some(code) = self.jobs[i].exited {
            self.say(&ended(self.jobs[i].pid, code))?;
            return Ok(());
        }
        let handle = self.var_cap(var)?;
        let ring = self.rt.ring();
        let exit = match self.jobs[i].waiting.take() {
            Some(t) => t,
            None => self.start_wait(&handle)?,
        };
        let mut key = self.start_key()?;
        loop {
            let done = ring.wait_any(&[exit, key])?;
            if done == exit {
                let c = ring
                    .take(exit)
                    .ok_or(CallError::Protocol("lost completion"))?;
                let code = exit_code(c);
                self.stop_key(key);
                self.jobs[i].exited = Some(code);
                self.say(&ended(self.jobs[i].pid, code))?;
                return Ok(());
            }
            let c = ring
                .take(key)
                .ok_or(CallError::Protocol("lost completion"))?;
            if read_keys_result(c)?.contains(&Key::Ctrl(b'c')) {
                self.term.write(b"^C\r\n")?;
                self.jobs[i].waiting = Some(exit);
                self.say(&format!("(stopped waiting; ${var} still runs)"))?;
                return Ok(());
            }
            key = self.start_key()?;
        }
    }

    fn kill(&mut self, var: &str) -> Result<(), Problem> {
        let i = self.job_index(var)?;
        let handle = ProcessHandle::from_cap(self.var_cap(var)?);
        handle.kill()?;
        self.say(&format!(
            "[pid {}] {} killed",
            self.jobs[i].pid, self.jobs[i].binary
        ))?;
        Ok(())
    }

    fn list_jobs(&self) -> Result<(), Problem> {
        if self.jobs.is_empty() {
            self.say("(no spawned programs)")?;
            return Ok(());
        }
        let mut text = String::new();
        for j in &self.jobs {
            let state = match j.exited {
                Some(KILLED) => String::from("killed"),
                Some(c) => format!("exited with code {c}"),
                None => String::from("running (or not yet waited for)"),
            };
            text.push_str(&format!(
                "  ${:<8} pid {:<4} {:<16} {state}\n",
                j.var, j.pid, j.binary
            ));
        }
        self.say(text.trim_end_matches('\n'))?;
        Ok(())
    }
}

/// The interface to call `cap` as (see [`Shell::interface_of`]).
fn speaks(rt: &Runtime, names: &[(u64, String)], protocols: &[(u64, u64)], cap: &Cap) -> u64 {
    if cap.interface_id() != interfaces::CLIENT_ENDPOINT {
        return cap.interface_id();
    }
    if let Some((_, iface)) = protocols.iter().find(|(c, _)| *c == cap.id()) {
        return *iface;
    }
    rt.capset()
        .iter()
        .find(|e| e.cap_id == cap.id())
        .and_then(|e| e.name())
        .and_then(|name| protocol_named(names, name))
        .unwrap_or(cap.interface_id())
}

/// The one interface whose name is, or ends with, `name` (any case).
fn protocol_named(names: &[(u64, String)], name: &str) -> Option<u64> {
    let name = name.to_ascii_lowercase();
    let fitting: Vec<u64> = names
        .iter()
        .filter(|(_, n)| {
            let short = short_name(n).to_ascii_lowercase();
            short == name || short.ends_with(name.as_str())
        })
        .map(|(id, _)| *id)
        .collect();
    match fitting[..] {
        [one] => Some(one),
        _ => None,
    }
}

/// The exit code of a killed process (`ProcessHandle.kill`).
const KILLED: i64 = 1 << 32;

/// How a program ended, for the person.
fn ended(pid: u64, code: i64) -> String {
    if code == KILLED {
        format!("[pid {pid} was killed]")
    } else {
        format!("[pid {pid} exited with code {code}]")
    }
}

/// `capos.capnp:Timer` → `Timer`.
fn short_name(display: &str) -> &str {
    display.rsplit_once(':').map_or(display, |(_, n)| n)
}

/// The registry's interface list.
fn interface_names(r: &capos_rt::api::SchemaRegistry) -> Result<Vec<(u64, String)>, CallError> {
    let reply = r.interfaces()?;
    let entries = reply.get()?.get_entries()?;
    let mut out = Vec::with_capacity(entries.len() as usize);
    for e in entries.iter() {
        let name = e
            .get_name()?
            .to_str()
            .map_err(|e| CallError::Decode(e.into()))?;
        out.push((e.get_id(), String::from(name)));
    }
    Ok(out)
}

/// A child-local kernel kind by its `new` name, and its interface.
fn kernel_kind(name: &str) -> (KernelCapKind, u64) {
    match name {
        "endpoint" => (KernelCapKind::Endpoint, interfaces::ENDPOINT),
        "virtualMemory" => (KernelCapKind::VirtualMemory, interfaces::VIRTUAL_MEMORY),
        "frameAllocator" => (KernelCapKind::FrameAllocator, interfaces::FRAME_ALLOCATOR),
        _ => (KernelCapKind::Null, interfaces::NULL),
    }
}

/// The exit code a completed `wait` carries (-1 if it failed).
fn exit_code(c: capos_rt::Completion) -> i64 {
    c.into_result()
        .ok()
        .and_then(|bytes| {
            let r = capnp::serialize::read_message(
                &mut &bytes[..],
                capnp::message::ReaderOptions::new(),
            )
            .ok()?;
            Some(
                r.get_root::<capos_capnp::process_handle::wait_results::Reader>()
                    .ok()?
                    .get_exit_code(),
            )
        })
        .unwrap_or(-1)
}

/// The keys a completed `readKeys` carries.
fn read_keys_result(c: capos_rt::Completion) -> Result<Vec<Key>, CallError> {
    let bytes = c.into_result()?;
    let r = capnp::serialize::read_message(&mut &bytes[..], capnp::message::ReaderOptions::new())
        .map_err(CallError::Decode)?;
    let keys = r
        .get_root::<capos_capnp::terminal_session::read_keys_results::Reader>()
        .and_then(|k| k.get_keys())
        .map_err(CallError::Decode)?;
    keys.iter().map(key_of).collect()
}

fn key_of(k: capos_capnp::terminal_session::key::Reader<'_>) -> Result<Key, CallError> {
    use capos_capnp::terminal_session::key::Which;
    use capos_capnp::terminal_session::NamedKey as N;
    Ok(
        match k.which().map_err(|_| CallError::Protocol("unknown key"))? {
            Which::Char(c) => Key::Char(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER)),
            Which::Ctrl(c) => Key::Ctrl(c),
            Which::Named(n) => match n.map_err(|_| CallError::Protocol("unknown named key"))? {
                N::Enter => Key::Enter,
                N::Backspace => Key::Backspace,
                N::Delete => Key::Delete,
                N::Tab => Key::Tab,
                N::Escape => Key::Escape,
                N::Up => Key::Up,
                N::Down => Key::Down,
                N::Left => Key::Left,
                N::Right => Key::Right,
                N::Home => Key::Home,
                N::End => Key::End,
            },
        },
    )
}

/// Tab: commands, capability names and variables for the first word and
/// after `inspect`, `wait`, `kill`; method names after `cap.`.
/// What Tab completes names from: the CapSet, the session's bundle, the
/// bound variables.
struct Held<'h> {
    rt: &'h Runtime,
    bundle: &'h [(String, CapHandle)],
    vars: &'h [Var],
}

fn complete(
    held: &Held<'_>,
    schema: &Schema,
    names: &[(u64, String)],
    protocols: &[(u64, u64)],
    line: &str,
    at: usize,
) -> Completion {
    let before: String = line.chars().take(at).collect();
    let start_byte = before
        .rfind(|c: char| c.is_whitespace() || "({,=".contains(c))
        .map_or(0, |i| i + 1);
    let word = &before[start_byte..];
    let start = before[..start_byte].chars().count();
    let mut candidates = Vec::new();
    if let Some((target, _method)) = word.split_once('.') {
        let cap = match target.strip_prefix('$') {
            Some(v) => held
                .vars
                .iter()
                .find(|x| x.name == v)
                .map(|x| x.cap.interface_id()),
            None => held
                .bundle
                .iter()
                .find(|(n, _)| n == target)
                .map(|(_, c)| (**c).clone())
                .or_else(|| held.rt.cap_any(target).ok())
                .map(|c| speaks(held.rt, names, protocols, &c)),
        };
        if let Some(methods) = cap.and_then(|iface| schema.interface(iface).ok()) {
            for m in &methods.methods {
                candidates.push(format!("{target}.{}(", m.name));
            }
        }
        return Completion { start, candidates };
    }
    let first = before[..start_byte].trim().is_empty();
    let after_cap_command = ["inspect", "wait", "kill"]
        .iter()
        .any(|c| before.trim_start().starts_with(c) && before[..start_byte].trim() == *c);
    if first {
        candidates.extend(COMMANDS.iter().map(|c| String::from(c.0)));
    }
    if first || after_cap_command {
        for e in held.rt.capset() {
            if let Some(n) = e.name() {
                candidates.push(String::from(n));
            }
        }
        candidates.extend(held.bundle.iter().map(|(n, _)| n.clone()));
        candidates.extend(held.vars.iter().map(|v| format!("${}", v.name)));
    }
    Completion { start, candidates }
}
