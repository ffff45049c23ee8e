//! `mkmanifest`: compile, validate and package capOS boot manifests on the host.
//!
//! ```text
//! mkmanifest check <manifest.capnp|manifest.bin>
//! mkmanifest build <manifest.capnp> <out.bin>
//! mkmanifest passwd < password
//! ```
//!
//! A `.capnp` input is a text manifest whose `const manifest :SystemManifest` is
//! compiled with `capnp eval --binary -I <schema dir> <file> manifest`; any other input
//! is read as an already-compiled message. The message is decoded with the same bounds
//! the kernel uses and validated with both layers. `check` prints a summary (exit 0) or
//! every violation (exit 1); `build` also writes the validated bytes to `<out.bin>`.
//! Usage errors exit 2.
//!
//! `passwd` reads one line (the password, without its line break) from
//! standard input and prints an Argon2id PHC string for an account's
//! `passwordHash`: m=19456 KiB, t=2, p=1, a random 16-byte salt from the
//! operating system. The password is never an argument, so it stays out of
//! shell history and process listings; nothing turns echo off, so pipe it
//! in or type it with `stty -echo` yourself.
//!
//! Environment: `CAPNP` names the Cap'n Proto compiler (default `capnp`);
//! `CAPOS_SCHEMA_DIR` overrides the schema directory (default: this crate's `schema/`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use capos_caps::manifest::{self, CapSource, Manifest};

const USAGE: &str = "usage:\n  mkmanifest check <manifest.capnp|manifest.bin>\n  mkmanifest build <manifest.capnp> <out.bin>\n  mkmanifest passwd < password";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output) = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["check", input] => (PathBuf::from(input), None),
        ["build", input, output] => (PathBuf::from(input), Some(PathBuf::from(output))),
        ["passwd"] => return passwd(),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&input, output.as_deref()) {
        Ok(summary) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            let n = errors.len();
            eprintln!(
                "{}: rejected ({n} error{})",
                input.display(),
                if n == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

/// Most password bytes authd accepts (`CredentialStore` refuses longer).
const MAX_PASSWORD_BYTES: usize = 1024;

/// `mkmanifest passwd`: one line from stdin to an Argon2id PHC string.
fn passwd() -> ExitCode {
    use std::io::BufRead;
    let mut line = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_until(b'\n', &mut line) {
        eprintln!("error: cannot read the password from stdin: {e}");
        return ExitCode::FAILURE;
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.is_empty() {
        eprintln!("error: the password is empty (an empty passwordHash already means no password)");
        return ExitCode::FAILURE;
    }
    if line.len() > MAX_PASSWORD_BYTES {
        eprintln!("error: the password is over {MAX_PASSWORD_BYTES} bytes; authd would refuse it");
        return ExitCode::FAILURE;
    }
    match manifest::phc::hash_password(&line) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: hashing failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Compiles (if needed), decodes, validates and optionally writes one manifest.
fn run(input: &Path, output: Option<&Path>) -> Result<String, Vec<String>> {
    let bytes = if input.extension().is_some_and(|e| e == "capnp") {
        compile(input).map_err(|e| vec![e])?
    } else {
        std::fs::read(input).map_err(|e| vec![format!("cannot read {}: {e}", input.display())])?
    };
    let decoded = manifest::decode(&bytes).map_err(|e| vec![e.to_string()])?;
    manifest::check(&decoded)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let mut summary = summarize(input, &decoded);
    if let Some(out) = output {
        std::fs::write(out, &bytes)
            .map_err(|e| vec![format!("cannot write {}: {e}", out.display())])?;
        summary.push_str(&format!(
            "wrote {} bytes to {}\n",
            bytes.len(),
            out.display()
        ));
    }
    Ok(summary)
}

/// Runs `capnp eval --binary` on a text manifest.
fn compile(input: &Path) -> Result<Vec<u8>, String> {
    let capnp = std::env::var_os("CAPNP").unwrap_or_else(|| "capnp".into());
    let schema = std::env::var_os("CAPOS_SCHEMA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("schema"));
    let out = Command::new(&capnp)
        .arg("eval")
        .arg("--binary")
        .arg("-I")
        .arg(&schema)
        .arg(input)
        .arg("manifest")
        .output()
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (install capnproto or set CAPNP)",
                capnp.to_string_lossy()
            )
        })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "capnp eval failed for {}:\n{}",
            input.display(),
            why.trim_end()
        ));
    }
    Ok(out.stdout)
}

fn summarize(input: &Path, m: &Manifest) -> String {
    let boot = &m.kernel.boot_processes;
    let boot_count = match boot.len() {
        0 => String::new(),
        1 => "1 boot process + ".into(),
        n => format!("{n} boot processes + "),
    };
    let mut s = format!(
        "{}: ok (schema {}, {} binaries, init + {boot_count}{} services)\n",
        input.display(),
        m.schema_version,
        m.binaries.len(),
        m.services.len()
    );
    let caps = |caps: &[manifest::CapRef]| {
        caps.iter()
            .map(|c| match &c.source {
                CapSource::Kernel(kind) => format!("{}={kind}", c.name),
                CapSource::Import { service, export } => format!("{}<-{service}.{export}", c.name),
                CapSource::Launcher => format!("{}<-init.launcher", c.name),
                CapSource::Spawner => format!("{}<-init.spawner", c.name),
                _ => c.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let quota = |cap_slots: u32| match cap_slots {
        0 => String::new(),
        n => format!("; {n} cap slots"),
    };
    s.push_str(&format!(
        "  {:<16} binary {:<16} caps: {}{}\n",
        "init",
        m.init.binary,
        caps(&m.init.caps),
        quota(m.init.cap_slots)
    ));
    for (i, p) in boot.iter().enumerate() {
        s.push_str(&format!(
            "  {:<16} binary {:<16} caps: {}{}\n",
            format!("boot[{i}]"),
            p.binary,
            caps(&p.caps),
            quota(p.cap_slots)
        ));
    }
    for svc in &m.services {
        s.push_str(&format!(
            "  {:<16} binary {:<16} caps: {}",
            svc.name,
            svc.binary,
            caps(&svc.caps)
        ));
        if !svc.exports.is_empty() {
            let exports: Vec<String> = svc
                .exports
                .iter()
                .map(|e| format!("{}={}", e.name, e.cap))
                .collect();
            s.push_str(&format!("; exports: {}", exports.join(" ")));
        }
        if !svc.launchable.is_empty() {
            s.push_str(&format!("; launchable: {}", svc.launchable.join(" ")));
        }
        if svc.placement != manifest::Placement::AnyCpu {
            s.push_str(&format!("; pinned to {}", svc.placement));
        }
        s.push_str(&quota(svc.cap_slots));
        if svc.frame_limit != 0 {
            s.push_str(&format!("; {} frames", svc.frame_limit));
        }
        if svc.sessions_config {
            s.push_str("; config<-sessions");
        }
        if let Some(r) = &svc.session {
            s.push_str(&format!("; session from {}.{}", r.service, r.export));
        }
        s.push('\n');
    }
    let c = &m.sessions;
    if !c.accounts.is_empty() || !c.profiles.is_empty() {
        let accounts: Vec<String> = c
            .accounts
            .iter()
            .map(|a| {
                let set = if a.password_hash.is_empty() {
                    "no password"
                } else {
                    "password"
                };
                format!("{} ({}, {set})", a.name, a.profile)
            })
            .collect();
        let profiles: Vec<&str> = c.profiles.iter().map(|p| p.name.as_str()).collect();
        s.push_str(&format!(
            "  sessions: accounts {}; profiles {}\n",
            accounts.join(", "),
            profiles.join(" ")
        ));
    }
    s
}
