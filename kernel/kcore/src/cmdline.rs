//! Parsing the kernel command line GRUB passes in the multiboot2 information.
//!
//! Words are separated by ASCII whitespace. Recognised words:
//!
//! | word | effect |
//! | --- | --- |
//! | `log=error\|warn\|info\|debug\|trace` | log level (default `info`) |
//! | `test=boot` | boot, report, exit QEMU with success |
//! | `test=fault:pf\|gp\|ud\|de\|bp\|df` | raise that exception after boot |
//! | `maxcpus=N` | bring up at most `N` CPUs (`N >= 1`) |
//! | `nox2apic` | use xAPIC MMIO even when x2APIC is available |
//! | `aptimeout=MS` | how long to wait for each AP to start (default 200 ms) |
//!
//! A later word overrides an earlier one. Anything else becomes a
//! [`CmdlineWarning`]; parsing never fails. A first word that starts with `/`
//! is taken to be the kernel's own path (some loaders include it) and skipped.

use alloc::vec::Vec;
use core::fmt;

/// How much the kernel logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// Normal boot progress (the default).
    Info,
    /// Detailed diagnostics.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The command-line spelling (`error`, `warn`, `info`, `debug`, `trace`).
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Exception raised on purpose by `test=fault:NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `pf`: #PF, page fault.
    PageFault,
    /// `gp`: #GP, general protection fault.
    GeneralProtection,
    /// `ud`: #UD, invalid opcode.
    InvalidOpcode,
    /// `de`: #DE, divide error.
    DivideError,
    /// `bp`: #BP, breakpoint.
    Breakpoint,
    /// `df`: #DF, double fault.
    DoubleFault,
}

impl FaultKind {
    /// Every fault kind with its command-line name.
    pub const ALL: [(FaultKind, &'static str); 6] = [
        (FaultKind::PageFault, "pf"),
        (FaultKind::GeneralProtection, "gp"),
        (FaultKind::InvalidOpcode, "ud"),
        (FaultKind::DivideError, "de"),
        (FaultKind::Breakpoint, "bp"),
        (FaultKind::DoubleFault, "df"),
    ];

    /// The command-line name (`pf`, `gp`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::PageFault => "pf",
            FaultKind::GeneralProtection => "gp",
            FaultKind::InvalidOpcode => "ud",
            FaultKind::DivideError => "de",
            FaultKind::Breakpoint => "bp",
            FaultKind::DoubleFault => "df",
        }
    }

    /// The fault kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }
}

/// What a test boot does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestMode {
    /// boot, report, exit QEMU with success
    Boot,
    /// deliberately raise an exception after boot
    Fault(FaultKind),
}

/// Default for [`BootOptions::ap_timeout_ms`].
pub const DEFAULT_AP_TIMEOUT_MS: u32 = 200;

/// Options decoded from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootOptions {
    /// Log level (default [`LogLevel::Info`]).
    pub log: LogLevel,
    /// Test mode, if this is a test boot.
    pub test: Option<TestMode>,
    /// Upper bound on CPUs brought online, if given (always at least 1).
    pub max_cpus: Option<u32>,
    /// Do not use x2APIC mode even when the CPU supports it.
    pub no_x2apic: bool,
    /// Milliseconds to wait for each AP to report in (default
    /// [`DEFAULT_AP_TIMEOUT_MS`]).
    pub ap_timeout_ms: u32,
}

impl Default for BootOptions {
    fn default() -> Self {
        Self {
            log: LogLevel::Info,
            test: None,
            max_cpus: None,
            no_x2apic: false,
            ap_timeout_ms: DEFAULT_AP_TIMEOUT_MS,
        }
    }
}

/// A command-line word that was ignored, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineWarning<'a> {
    /// The word is not a known option.
    Unknown(&'a str),
    /// The option is known but its value is not acceptable.
    BadValue {
        /// The whole word, e.g. `log=loud`.
        word: &'a str,
        /// What was expected instead.
        expected: &'static str,
    },
}

impl fmt::Display for CmdlineWarning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineWarning::Unknown(word) => {
                write!(f, "ignoring unknown boot option `{}`", word.escape_debug())
            }
            CmdlineWarning::BadValue { word, expected } => write!(
                f,
                "ignoring boot option `{}`: expected {expected}",
                word.escape_debug()
            ),
        }
    }
}

/// Parses a GRUB command line like
/// `"log=debug test=boot maxcpus=2 nox2apic test=fault:pf"`.
///
/// Unknown or malformed words are returned as warnings (Display-able, naming
/// the word), never fatal; the options they would have set keep their
/// previous values.
pub fn parse(cmdline: &str) -> (BootOptions, Vec<CmdlineWarning<'_>>) {
    let mut opts = BootOptions::default();
    let mut warnings = Vec::new();
    for (i, word) in cmdline.split_ascii_whitespace().enumerate() {
        if i == 0 && word.starts_with('/') && !word.contains('=') {
            continue;
        }
        if let Err(w) = apply(&mut opts, word) {
            warnings.push(w);
        }
    }
    (opts, warnings)
}

fn apply<'a>(opts: &mut BootOptions, word: &'a str) -> Result<(), CmdlineWarning<'a>> {
    let bad = |expected| CmdlineWarning::BadValue { word, expected };
    let (key, value) = match word.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (word, None),
    };
    match (key, value) {
        ("log", Some(v)) => {
            opts.log = match v {
                "error" => LogLevel::Error,
                "warn" | "warning" => LogLevel::Warn,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                "trace" => LogLevel::Trace,
                _ => return Err(bad("one of error, warn, info, debug, trace")),
            }
        }
        ("test", Some(v)) => {
            opts.test = Some(match v {
                "boot" => TestMode::Boot,
                _ => match v.strip_prefix("fault:").and_then(FaultKind::from_name) {
                    Some(kind) => TestMode::Fault(kind),
                    None => return Err(bad("boot or fault:pf|gp|ud|de|bp|df")),
                },
            })
        }
        ("maxcpus", Some(v)) => match v.parse::<u32>() {
            Ok(n) if n >= 1 => opts.max_cpus = Some(n),
            _ => return Err(bad("a CPU count of at least 1")),
        },
        ("aptimeout", Some(v)) => match v.parse::<u32>() {
            Ok(ms) if ms >= 1 => opts.ap_timeout_ms = ms,
            _ => return Err(bad("a timeout in milliseconds of at least 1")),
        },
        ("nox2apic", None) => opts.no_x2apic = true,
        ("nox2apic", Some(_)) => return Err(bad("no value")),
        ("log" | "test" | "maxcpus" | "aptimeout", None) => return Err(bad("`=` and a value")),
        _ => return Err(CmdlineWarning::Unknown(word)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn empty_gives_defaults() {
        let (o, w) = parse("   ");
        assert_eq!(o, BootOptions::default());
        assert_eq!(o.log, LogLevel::Info);
        assert_eq!(o.ap_timeout_ms, 200);
        assert!(w.is_empty());
    }

    #[test]
    fn full_line() {
        let (o, w) = parse("log=debug test=boot maxcpus=2\tnox2apic test=fault:pf aptimeout=50");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.log, LogLevel::Debug);
        assert_eq!(o.test, Some(TestMode::Fault(FaultKind::PageFault)));
        assert_eq!(o.max_cpus, Some(2));
        assert!(o.no_x2apic);
        assert_eq!(o.ap_timeout_ms, 50);
    }

    #[test]
    fn every_fault_name() {
        for (kind, name) in FaultKind::ALL {
            let line = alloc::format!("test=fault:{name}");
            assert_eq!(parse(&line).0.test, Some(TestMode::Fault(kind)));
            assert_eq!(kind.name(), name);
        }
    }

    #[test]
    fn kernel_path_is_skipped() {
        let (o, w) = parse("/boot/capos-kernel log=trace");
        assert!(w.is_empty());
        assert_eq!(o.log, LogLevel::Trace);
        // Only as the first word.
        let (_, w) = parse("log=trace /boot/capos-kernel");
        assert_eq!(w, [CmdlineWarning::Unknown("/boot/capos-kernel")]);
    }

    #[test]
    fn bad_words_warn_and_keep_previous_values() {
        let (o, w) =
            parse("log=warn log=loud maxcpus=0 maxcpus=x test=fault:zz bogus nox2apic=1 test");
        assert_eq!(o.log, LogLevel::Warn);
        assert_eq!(o.max_cpus, None);
        assert_eq!(o.test, None);
        assert!(!o.no_x2apic);
        assert_eq!(w.len(), 7);
        assert_eq!(
            w[0].to_string(),
            "ignoring boot option `log=loud`: expected one of error, warn, info, debug, trace"
        );
        assert_eq!(w[4], CmdlineWarning::Unknown("bogus"));
        assert_eq!(w[4].to_string(), "ignoring unknown boot option `bogus`");
        assert_eq!(
            w[6].to_string(),
            "ignoring boot option `test`: expected `=` and a value"
        );
    }

    #[test]
    fn levels_are_ordered_and_named() {
        assert!(LogLevel::Error < LogLevel::Warn);
        assert!(LogLevel::Debug < LogLevel::Trace);
        for level in [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
            LogLevel::Trace,
        ] {
            let line = alloc::format!("log={}", level.name());
            assert_eq!(parse(&line).0.log, level);
        }
    }
}
