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
//! | `inject=a,b` | feed named hostile inputs into the boot path (test boots): `no-memory-map`, `module-overlap`, `module-on-trampoline`, `bad-acpi-checksum`, `ap-no-start`, `calibration-stall`, `lock-reentry`, `lock-inversion`, `lock-irq-unsafe` |
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

/// Hostile inputs a test boot can feed into the real boot path (`inject=`),
/// each of which the kernel must report clearly and survive where it can.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injections {
    /// Pretend the loader passed no memory map: boot must halt with a reason.
    pub no_memory_map: bool,
    /// Add a fake module overlapping the kernel image: it must be rejected.
    pub module_overlap: bool,
    /// Add a fake module on page 0x8000, where the AP trampoline goes by
    /// default (GRUB's EFI loader may put modules there): it is accepted and
    /// the trampoline moves to another free low page.
    pub module_on_trampoline: bool,
    /// Corrupt the RSDP checksum: ACPI is refused, boot goes on with one CPU.
    pub bad_acpi_checksum: bool,
    /// Send no startup IPIs to the second CPU: it must time out and be reported.
    pub ap_no_start: bool,
    /// Take a lock this CPU already holds: the lock validator must halt
    /// with a report naming both acquisitions.
    pub lock_reentry: bool,
    /// Take two locks in one order, then in the other: the lock validator
    /// must halt with a report naming all four acquisitions.
    pub lock_inversion: bool,
    /// Take a lock that does not mask interrupts with them enabled, then in
    /// interrupt context: the lock validator must halt with a report.
    pub lock_irq_unsafe: bool,
    /// Hold the boot CPU up at the end of one timer-calibration window (as a
    /// host that deschedules a virtual CPU would): the window must be
    /// outvoted and reported.
    pub calibration_stall: bool,
}

impl Injections {
    /// No injected faults.
    pub const NONE: Self = Self {
        no_memory_map: false,
        module_overlap: false,
        module_on_trampoline: false,
        bad_acpi_checksum: false,
        ap_no_start: false,
        lock_reentry: false,
        lock_inversion: false,
        lock_irq_unsafe: false,
        calibration_stall: false,
    };

    /// Injection names as written on the command line.
    pub const NAMES: [&'static str; 9] = [
        "no-memory-map",
        "module-overlap",
        "module-on-trampoline",
        "bad-acpi-checksum",
        "ap-no-start",
        "lock-reentry",
        "lock-inversion",
        "lock-irq-unsafe",
        "calibration-stall",
    ];

    fn set(&mut self, name: &str) -> bool {
        let flag = match name {
            "no-memory-map" => &mut self.no_memory_map,
            "module-overlap" => &mut self.module_overlap,
            "module-on-trampoline" => &mut self.module_on_trampoline,
            "bad-acpi-checksum" => &mut self.bad_acpi_checksum,
            "ap-no-start" => &mut self.ap_no_start,
            "lock-reentry" => &mut self.lock_reentry,
            "lock-inversion" => &mut self.lock_inversion,
            "lock-irq-unsafe" => &mut self.lock_irq_unsafe,
            "calibration-stall" => &mut self.calibration_stall,
            _ => return false,
        };
        *flag = true;
        true
    }
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
    /// Hostile inputs to feed into the boot path, to prove each is handled.
    pub inject: Injections,
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
            inject: Injections::NONE,
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
/// `"log=debug test=boot maxcpus=2 inject=ap-no-start test=fault:pf"`.
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
        ("inject", Some(v)) => {
            let mut inject = opts.inject;
            if v.is_empty() || !v.split(',').all(|name| inject.set(name)) {
                return Err(bad(
                    "a comma-separated list of no-memory-map, module-overlap, module-on-trampoline, bad-acpi-checksum, ap-no-start, calibration-stall, lock-reentry, lock-inversion, lock-irq-unsafe",
                ));
            }
            opts.inject = inject;
        }
        ("log" | "test" | "maxcpus" | "aptimeout" | "inject", None) => {
            return Err(bad("`=` and a value"))
        }
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
        let (o, w) = parse("log=debug test=boot maxcpus=2\tinject=ap-no-start,module-overlap test=fault:pf aptimeout=50");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.log, LogLevel::Debug);
        assert_eq!(o.test, Some(TestMode::Fault(FaultKind::PageFault)));
        assert_eq!(o.max_cpus, Some(2));
        assert!(o.inject.ap_no_start && o.inject.module_overlap);
        assert!(!o.inject.no_memory_map && !o.inject.bad_acpi_checksum);
        assert!(!o.inject.lock_reentry && !o.inject.lock_inversion);
        assert!(!o.inject.module_on_trampoline);
        assert_eq!(o.ap_timeout_ms, 50);
        let (o, w) = parse("inject=module-on-trampoline");
        assert!(w.is_empty(), "{w:?}");
        assert!(o.inject.module_on_trampoline && !o.inject.module_overlap);
    }

    #[test]
    fn lock_injections() {
        let (o, w) = parse("inject=lock-reentry");
        assert!(w.is_empty());
        assert!(o.inject.lock_reentry && !o.inject.lock_inversion);
        let (o, w) = parse("inject=lock-inversion,ap-no-start");
        assert!(w.is_empty());
        assert!(o.inject.lock_inversion && o.inject.ap_no_start && !o.inject.lock_reentry);
        for name in Injections::NAMES {
            let mut i = Injections::NONE;
            assert!(i.set(name), "{name}");
            assert_ne!(i, Injections::NONE, "{name} sets nothing");
        }
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
        let (o, w) = parse(
            "log=warn log=loud maxcpus=0 maxcpus=x test=fault:zz bogus inject=nope inject= test",
        );
        assert_eq!(o.log, LogLevel::Warn);
        assert_eq!(o.max_cpus, None);
        assert_eq!(o.test, None);
        assert_eq!(o.inject, Injections::NONE);
        assert_eq!(w.len(), 8);
        assert_eq!(
            w[0].to_string(),
            "ignoring boot option `log=loud`: expected one of error, warn, info, debug, trace"
        );
        assert_eq!(w[4], CmdlineWarning::Unknown("bogus"));
        assert_eq!(w[4].to_string(), "ignoring unknown boot option `bogus`");
        assert!(matches!(
            w[5],
            CmdlineWarning::BadValue {
                word: "inject=nope",
                ..
            }
        ));
        assert!(matches!(
            w[6],
            CmdlineWarning::BadValue {
                word: "inject=",
                ..
            }
        ));
        assert_eq!(
            w[7].to_string(),
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
