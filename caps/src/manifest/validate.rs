//! The two manifest validation layers and their typed errors.
//!
//! The kernel layer covers what the kernel acts on before any process exists; the
//! service-graph layer covers what init acts on when it starts services. Each layer
//! checks everything in manifest order and reports the first violation; [`check`]
//! collects every violation of both layers for friendly host-side reporting.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::phc::{self, PhcError};
use super::{
    CapRef, CapSource, Facet, KernelKind, Manifest, Placement, Service, DEFAULT_CAP_SLOTS,
    INIT_LAUNCHER_CAP, MAX_BOOT_PROCESSES, MAX_CAP_SLOTS, MAX_CPUS, MAX_FRAME_LIMIT,
    MAX_LAUNCHABLE, MAX_NAME_LEN, MAX_PRINCIPAL_LEN, OPERATOR_PROFILE, SCHEMA_VERSION,
    SESSIONS_CONFIG_CAP,
};
use crate::interfaces;

/// What a violation is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The manifest as a whole.
    Manifest,
    /// A binary, by name.
    Binary(String),
    /// The init process.
    Init,
    /// One of init's caps, by name.
    InitCap(String),
    /// The kernel parameters.
    Kernel,
    /// A kernel-started boot process, by its index in `bootProcesses` and its binary.
    BootProcess {
        /// Position in `bootProcesses`, counting from 0.
        index: usize,
        /// Its binary name.
        binary: String,
    },
    /// A cap of a boot process.
    BootProcessCap {
        /// Position in `bootProcesses`, counting from 0.
        index: usize,
        /// Its binary name.
        binary: String,
        /// Cap name.
        cap: String,
    },
    /// A service, by name.
    Service(String),
    /// A cap of a service.
    Cap {
        /// Service name.
        service: String,
        /// Cap name.
        cap: String,
    },
    /// An export of a service.
    Export {
        /// Service name.
        service: String,
        /// Export name.
        export: String,
    },
    /// The session a service is started in (`Service.session`).
    ServiceSession(String),
    /// An account of `sessions`, by name.
    Account(String),
    /// A profile of `sessions`, by name.
    Profile(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Manifest => f.write_str("manifest"),
            Subject::Binary(b) => write!(f, "binary {b:?}"),
            Subject::Init => f.write_str("init"),
            Subject::InitCap(c) => write!(f, "init: cap {c:?}"),
            Subject::Kernel => f.write_str("kernel"),
            Subject::BootProcess { index, binary } => {
                write!(f, "boot process {index} ({binary:?})")
            }
            Subject::BootProcessCap { index, binary, cap } => {
                write!(f, "boot process {index} ({binary:?}): cap {cap:?}")
            }
            Subject::Service(s) => write!(f, "service {s:?}"),
            Subject::Cap { service, cap } => write!(f, "service {service:?}: cap {cap:?}"),
            Subject::Export { service, export } => {
                write!(f, "service {service:?}: export {export:?}")
            }
            Subject::ServiceSession(s) => write!(f, "service {s:?}: session"),
            Subject::Account(a) => write!(f, "account {a:?}"),
            Subject::Profile(p) => write!(f, "profile {p:?}"),
        }
    }
}

/// The rule a manifest breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The schema version is not [`SCHEMA_VERSION`].
    SchemaVersion(u32),
    /// A name is empty.
    EmptyName,
    /// A name is longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong(usize),
    /// A name is used twice where names must be unique.
    Duplicate,
    /// A binary has an empty module string.
    EmptyModule,
    /// A process runs a binary the manifest does not declare.
    UnknownBinary(String),
    /// A cap has no source.
    MissingSource,
    /// A cap names a kernel kind this build does not know.
    UnknownKernelKind(u16),
    /// A cap has a source variant this build does not know.
    UnknownSourceVariant(u16),
    /// A cap names a kernel kind this kernel cannot mint yet.
    NotImplemented(KernelKind),
    /// A cap's expected interface is not what its source provides.
    InterfaceMismatch {
        /// What the manifest expects.
        expected: u64,
        /// What the source provides.
        provided: u64,
    },
    /// Init holds an import (nothing exists yet to import from).
    InitImport,
    /// A boot process holds an import (only kernel-minted caps exist at boot).
    BootProcessImport,
    /// More boot processes than [`MAX_BOOT_PROCESSES`].
    TooManyBootProcesses(usize),
    /// A kind only init may hold is granted to a boot process.
    InitOnly(KernelKind),
    /// A service asks for the boot package.
    BootPackageReserved,
    /// A service asks for a shared kernel cap init does not hold.
    NotHeldByInit(KernelKind),
    /// Init has services to start but lacks a cap it needs for that.
    InitLacks(KernelKind),
    /// An import names a service that does not exist.
    ImportUnknownService {
        /// The service named.
        service: String,
        /// The export named.
        export: String,
    },
    /// An import names its own service.
    ImportFromSelf(String),
    /// An import names a service declared after the importer.
    ImportFromLater {
        /// The service named.
        service: String,
        /// The export named.
        export: String,
    },
    /// An import names an export its service does not declare.
    ImportUnknownExport {
        /// The service named.
        service: String,
        /// The export named.
        export: String,
    },
    /// An export names a cap its service does not declare.
    ExportUnknownCap(String),
    /// An export names a cap that is itself an import.
    Reexport(String),
    /// An export names a kernel cap that is not an endpoint.
    ExportNotEndpoint {
        /// The cap.
        cap: String,
        /// Its kind.
        kind: KernelKind,
    },
    /// An endpoint export hands out the owner side.
    ExportNotAttenuated(String),
    /// An export has a facet value this build does not know.
    UnknownFacet(u16),
    /// A service is pinned to a CPU at or above [`MAX_CPUS`].
    CpuOutOfRange(u32),
    /// A service is pinned to a CPU `kernel.maxCpus` leaves off.
    CpuBeyondMaxCpus {
        /// The CPU named.
        cpu: u32,
        /// `kernel.maxCpus`.
        max_cpus: u32,
    },
    /// A service has a placement variant this build does not know.
    UnknownPlacement(u16),
    /// The terminal has one holder; this is a second (init and boot
    /// processes are minted their own, a service gets init's, moved).
    TerminalTaken {
        /// Who holds it already.
        holder: String,
    },
    /// Init or a boot process holds a launcher (init serves it, to services).
    LauncherOnlyForServices,
    /// Services ask for a launcher, but init holds no kernel endpoint named
    /// [`INIT_LAUNCHER_CAP`] to serve it on.
    InitLacksLauncherEndpoint,
    /// A service's `launchable` names a binary the manifest does not declare.
    LaunchableUnknownBinary(String),
    /// A service's `launchable` names a binary twice.
    LaunchableDuplicate(String),
    /// A service's `launchable` is longer than [`MAX_LAUNCHABLE`].
    TooManyLaunchable(usize),
    /// A service has `launchable` binaries but no launcher cap.
    LaunchableWithoutLauncher,
    /// A process asks for a cap-slot quota above [`MAX_CAP_SLOTS`].
    CapSlotsTooMany(u32),
    /// A process asks for a cap-slot quota smaller than the caps it starts with.
    CapSlotsBelowCaps {
        /// The quota asked for.
        cap_slots: u32,
        /// The caps the process starts with.
        caps: usize,
    },
    /// A service asks for a frame quota above [`MAX_FRAME_LIMIT`].
    FrameLimitTooMany(u32),
    /// A copy of init's ProcessSpawner (`source = (spawner = void)`) is
    /// asked for by init or a boot process: init grants it, to services.
    SpawnerOnlyForServices,
    /// A service with `sessionsConfig` also declares a cap named
    /// [`SESSIONS_CONFIG_CAP`].
    ConfigCapTaken,
    /// An account's password hash is not acceptable.
    PasswordHash(PhcError),
    /// An account's principal is empty.
    EmptyPrincipal,
    /// An account's principal is longer than [`MAX_PRINCIPAL_LEN`].
    PrincipalTooLong(usize),
    /// Two accounts share a principal.
    DuplicatePrincipal(String),
    /// An account names a profile `sessions` does not declare.
    UnknownProfile(String),
    /// A second account has the operator profile.
    SecondOperator(String),
}

fn interface_name(id: u64) -> &'static str {
    match interfaces::name_of(id) {
        Some(name) => name,
        None if id == interfaces::LAUNCHER => "Launcher",
        None => "unknown interface",
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::SchemaVersion(v) => {
                write!(f, "schema version {v} is not supported (this build reads version {SCHEMA_VERSION})")
            }
            Rule::EmptyName => f.write_str("name is empty"),
            Rule::NameTooLong(n) => write!(f, "name is {n} bytes long; at most {MAX_NAME_LEN} are allowed"),
            Rule::Duplicate => f.write_str("is declared more than once"),
            Rule::EmptyModule => f.write_str("module string is empty"),
            Rule::UnknownBinary(b) => write!(f, "runs binary {b:?}, which the manifest does not declare"),
            Rule::MissingSource => f.write_str("has no source"),
            Rule::UnknownKernelKind(n) => write!(f, "names unknown kernel cap kind {n}"),
            Rule::UnknownSourceVariant(n) => write!(f, "has unknown source variant {n}"),
            Rule::NotImplemented(kind) => f.write_str(&super::not_implemented_message(*kind)),
            Rule::InterfaceMismatch { expected, provided } => write!(
                f,
                "expects interface {expected:#018x} ({}) but its source provides {provided:#018x} ({})",
                interface_name(*expected),
                interface_name(*provided)
            ),
            Rule::InitImport => f.write_str("init can only hold kernel-minted caps"),
            Rule::BootProcessImport => f.write_str("boot processes can only hold kernel-minted caps"),
            Rule::TooManyBootProcesses(n) => {
                write!(f, "has {n} boot processes; at most {MAX_BOOT_PROCESSES} are allowed")
            }
            Rule::InitOnly(kind) => write!(f, "{kind} is only granted to init"),
            Rule::TerminalTaken { holder } => {
                write!(f, "asks for the terminal, which has one holder: {holder} has it")
            }
            Rule::BootPackageReserved => f.write_str("boot package authority is reserved for init"),
            Rule::NotHeldByInit(kind) => write!(f, "needs a kernel {kind} cap, which init does not hold to pass on"),
            Rule::InitLacks(kind) => write!(f, "has services to start but holds no kernel {kind} cap"),
            Rule::ImportUnknownService { service, export } => {
                write!(f, "imports export {export:?} of unknown service {service:?}")
            }
            Rule::ImportFromSelf(export) => write!(f, "imports export {export:?} of its own service"),
            Rule::ImportFromLater { service, export } => write!(
                f,
                "imports export {export:?} of service {service:?}, which is declared later (exporters must come first)"
            ),
            Rule::ImportUnknownExport { service, export } => {
                write!(f, "imports export {export:?}, which service {service:?} does not declare")
            }
            Rule::ExportUnknownCap(cap) => write!(f, "names cap {cap:?}, which this service does not declare"),
            Rule::Reexport(cap) => write!(f, "re-exports cap {cap:?}, which is itself an import"),
            Rule::ExportNotEndpoint { cap, kind } => {
                write!(f, "exports cap {cap:?} of kernel kind {kind}; only endpoints can be exported")
            }
            Rule::ExportNotAttenuated(cap) => {
                write!(f, "exports endpoint {cap:?} raw; endpoint exports must be attenuated to client facets")
            }
            Rule::UnknownFacet(n) => write!(f, "names unknown facet {n}"),
            Rule::CpuOutOfRange(cpu) => write!(
                f,
                "is pinned to CPU {cpu}; CPUs are numbered 0 to {}",
                MAX_CPUS - 1
            ),
            Rule::CpuBeyondMaxCpus { cpu, max_cpus } => write!(
                f,
                "is pinned to CPU {cpu}, but kernel.maxCpus = {max_cpus} brings up only CPUs 0 to {}",
                max_cpus - 1
            ),
            Rule::UnknownPlacement(n) => write!(f, "has unknown placement variant {n}"),
            Rule::LauncherOnlyForServices => f.write_str(
                "a launcher is served by init to the services it starts; only a service can hold one",
            ),
            Rule::InitLacksLauncherEndpoint => write!(
                f,
                "services ask for a launcher, but init holds no kernel endpoint cap named {INIT_LAUNCHER_CAP:?} to serve it on"
            ),
            Rule::LaunchableUnknownBinary(b) => {
                write!(f, "lists launchable binary {b:?}, which the manifest does not declare")
            }
            Rule::LaunchableDuplicate(b) => write!(f, "lists launchable binary {b:?} more than once"),
            Rule::TooManyLaunchable(n) => {
                write!(f, "lists {n} launchable binaries; at most {MAX_LAUNCHABLE} are allowed")
            }
            Rule::LaunchableWithoutLauncher => f.write_str(
                "lists launchable binaries but holds no launcher cap to start them with",
            ),
            Rule::CapSlotsTooMany(n) => write!(
                f,
                "asks for capSlots = {n}; at most {MAX_CAP_SLOTS} are allowed (0 means the default, {DEFAULT_CAP_SLOTS})"
            ),
            Rule::CapSlotsBelowCaps { cap_slots, caps } => write!(
                f,
                "asks for capSlots = {cap_slots}, fewer than the {caps} caps it starts with"
            ),
            Rule::FrameLimitTooMany(n) => write!(
                f,
                "asks for frameLimit = {n}; at most {MAX_FRAME_LIMIT} are allowed (0 means the default, 4096)"
            ),
            Rule::SpawnerOnlyForServices => f.write_str(
                "a copy of init's spawner is granted by init to the services it starts; only a service can hold one",
            ),
            Rule::ConfigCapTaken => write!(
                f,
                "has sessionsConfig, which grants a cap named {SESSIONS_CONFIG_CAP:?}, and declares a cap of that name too"
            ),
            Rule::PasswordHash(e) => write!(f, "password hash {e}"),
            Rule::EmptyPrincipal => f.write_str("principal is empty"),
            Rule::PrincipalTooLong(n) => write!(
                f,
                "principal is {n} bytes long; at most {MAX_PRINCIPAL_LEN} are allowed"
            ),
            Rule::DuplicatePrincipal(p) => {
                write!(f, "principal {p:?} is used by an earlier account too")
            }
            Rule::UnknownProfile(p) => {
                write!(f, "uses profile {p:?}, which the manifest does not declare")
            }
            Rule::SecondOperator(first) => write!(
                f,
                "has profile {OPERATOR_PROFILE:?}, which account {first:?} has already; at most one account is the operator"
            ),
        }
    }
}

/// One manifest rule violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// What is wrong.
    pub subject: Subject,
    /// Which rule it breaks.
    pub rule: Rule,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.rule)
    }
}

/// Collects violations in manifest order.
struct Report(Vec<ManifestError>);

impl Report {
    fn push(&mut self, subject: Subject, rule: Rule) {
        self.0.push(ManifestError { subject, rule });
    }

    fn first(self) -> Result<(), ManifestError> {
        self.0.into_iter().next().map_or(Ok(()), Err)
    }
}

fn name_rule(name: &str) -> Option<Rule> {
    if name.is_empty() {
        Some(Rule::EmptyName)
    } else if name.len() > MAX_NAME_LEN {
        Some(Rule::NameTooLong(name.len()))
    } else {
        None
    }
}

/// Checks the parts of a manifest the kernel acts on: the schema version; binaries
/// named, uniquely, with module strings; init and each boot process running a
/// declared binary; their caps named uniquely, kernel-minted, of known kinds, expecting
/// their kinds' interfaces; at most [`MAX_BOOT_PROCESSES`] boot processes, none of
/// which holds a `bootPackage` or `processSpawner` cap (init only).
pub fn validate_kernel_layer(manifest: &Manifest) -> Result<(), ManifestError> {
    let mut report = Report(Vec::new());
    kernel_layer(manifest, &mut report);
    report.first()
}

/// Checks the service graph init acts on (see `docs/manifest.md` for the rules):
/// unique, well-formed service, cap and export names; declared binaries; kernel caps
/// init can actually provide; imports of earlier services' declared exports; exports
/// naming the service's own endpoint caps as client facets; expected interface ids
/// matching every source.
pub fn validate_service_graph(manifest: &Manifest) -> Result<(), ManifestError> {
    let mut report = Report(Vec::new());
    service_graph(manifest, &mut report);
    report.first()
}

/// Both layers, every violation, in manifest order (kernel layer first).
pub fn check(manifest: &Manifest) -> Result<(), Vec<ManifestError>> {
    let mut report = Report(Vec::new());
    kernel_layer(manifest, &mut report);
    service_graph(manifest, &mut report);
    if report.0.is_empty() {
        Ok(())
    } else {
        Err(report.0)
    }
}

/// Who holds the terminal so far, for [`Rule::TerminalTaken`].
#[derive(Default)]
struct TerminalHolder(Option<String>);

impl TerminalHolder {
    fn claim(&mut self, who: String, subject: Subject, report: &mut Report) {
        match &self.0 {
            Some(holder) => report.push(
                subject,
                Rule::TerminalTaken {
                    holder: holder.clone(),
                },
            ),
            None => self.0 = Some(who),
        }
    }
}

fn kernel_layer(m: &Manifest, report: &mut Report) {
    let mut terminal = TerminalHolder::default();
    if m.schema_version != SCHEMA_VERSION {
        report.push(Subject::Manifest, Rule::SchemaVersion(m.schema_version));
    }
    for (i, b) in m.binaries.iter().enumerate() {
        let subject = || Subject::Binary(b.name.clone());
        if let Some(rule) = name_rule(&b.name) {
            report.push(subject(), rule);
        } else if m.binaries[..i].iter().any(|earlier| earlier.name == b.name) {
            report.push(subject(), Rule::Duplicate);
        }
        if b.module.is_empty() {
            report.push(subject(), Rule::EmptyModule);
        }
    }
    if m.binary(&m.init.binary).is_none() {
        report.push(Subject::Init, Rule::UnknownBinary(m.init.binary.clone()));
    }
    if let Some(rule) = cap_slots_rule(m.init.cap_slots, m.init.caps.len()) {
        report.push(Subject::Init, rule);
    }
    for (i, cap) in m.init.caps.iter().enumerate() {
        let subject = || Subject::InitCap(cap.name.clone());
        if let Some(rule) = name_rule(&cap.name) {
            report.push(subject(), rule);
        } else if m.init.caps[..i]
            .iter()
            .any(|earlier| earlier.name == cap.name)
        {
            report.push(subject(), Rule::Duplicate);
        }
        match &cap.source {
            CapSource::Kernel(kind) => {
                if *kind == KernelKind::Terminal {
                    terminal.claim(format!("init (cap {:?})", cap.name), subject(), report);
                }
                kernel_source(cap, *kind, subject(), report)
            }
            CapSource::Import { .. } => report.push(subject(), Rule::InitImport),
            CapSource::Launcher => report.push(subject(), Rule::LauncherOnlyForServices),
            CapSource::Spawner => report.push(subject(), Rule::SpawnerOnlyForServices),
            other => source_rule(other, subject(), report),
        }
    }
    let boot = &m.kernel.boot_processes;
    if boot.len() > MAX_BOOT_PROCESSES {
        report.push(Subject::Kernel, Rule::TooManyBootProcesses(boot.len()));
    }
    for (index, p) in boot.iter().enumerate() {
        if m.binary(&p.binary).is_none() {
            report.push(
                Subject::BootProcess {
                    index,
                    binary: p.binary.clone(),
                },
                Rule::UnknownBinary(p.binary.clone()),
            );
        }
        if let Some(rule) = cap_slots_rule(p.cap_slots, p.caps.len()) {
            report.push(
                Subject::BootProcess {
                    index,
                    binary: p.binary.clone(),
                },
                rule,
            );
        }
        for (i, cap) in p.caps.iter().enumerate() {
            let subject = || Subject::BootProcessCap {
                index,
                binary: p.binary.clone(),
                cap: cap.name.clone(),
            };
            if let Some(rule) = name_rule(&cap.name) {
                report.push(subject(), rule);
            } else if p.caps[..i].iter().any(|earlier| earlier.name == cap.name) {
                report.push(subject(), Rule::Duplicate);
            }
            match &cap.source {
                CapSource::Kernel(
                    kind @ (KernelKind::BootPackage | KernelKind::ProcessSpawner),
                ) => report.push(subject(), Rule::InitOnly(*kind)),
                CapSource::Kernel(kind) => {
                    if *kind == KernelKind::Terminal {
                        let who = format!("boot process {index} ({})", p.binary);
                        terminal.claim(who, subject(), report);
                    }
                    kernel_source(cap, *kind, subject(), report)
                }
                CapSource::Import { .. } => report.push(subject(), Rule::BootProcessImport),
                CapSource::Launcher => report.push(subject(), Rule::LauncherOnlyForServices),
                CapSource::Spawner => report.push(subject(), Rule::SpawnerOnlyForServices),
                other => source_rule(other, subject(), report),
            }
        }
    }
}

/// Reports a source that is neither kernel nor import.
fn source_rule(source: &CapSource, subject: Subject, report: &mut Report) {
    match source {
        CapSource::Unset => report.push(subject, Rule::MissingSource),
        CapSource::UnknownKernelKind(n) => report.push(subject, Rule::UnknownKernelKind(*n)),
        CapSource::UnknownVariant(n) => report.push(subject, Rule::UnknownSourceVariant(*n)),
        CapSource::Kernel(_)
        | CapSource::Import { .. }
        | CapSource::Launcher
        | CapSource::Spawner => {}
    }
}

/// A kernel-minted cap: the kernel must implement the kind, and the cap
/// must expect the kind's interface.
fn kernel_source(cap: &CapRef, kind: KernelKind, subject: Subject, report: &mut Report) {
    if kind.is_implemented() {
        expect_interface(cap, kind.interface_id(), subject, report);
    } else {
        report.push(subject, Rule::NotImplemented(kind));
    }
}

fn expect_interface(cap: &CapRef, provided: u64, subject: Subject, report: &mut Report) {
    if cap.expected_interface_id != provided {
        report.push(
            subject,
            Rule::InterfaceMismatch {
                expected: cap.expected_interface_id,
                provided,
            },
        );
    }
}

fn init_holds(m: &Manifest, kind: KernelKind) -> bool {
    m.init
        .caps
        .iter()
        .any(|c| c.source == CapSource::Kernel(kind))
}

fn service_graph(m: &Manifest, report: &mut Report) {
    service_list(m, report);
    sessions(m, report);
}

fn service_list(m: &Manifest, report: &mut Report) {
    let mut terminal = TerminalHolder::default();
    if !m.services.is_empty() {
        for kind in [KernelKind::BootPackage, KernelKind::ProcessSpawner] {
            if !init_holds(m, kind) {
                report.push(Subject::Init, Rule::InitLacks(kind));
            }
        }
    }
    let launcher_wanted = m
        .services
        .iter()
        .any(|s| s.caps.iter().any(|c| c.source == CapSource::Launcher));
    let launcher_served = m.init.caps.iter().any(|c| {
        c.name == INIT_LAUNCHER_CAP && c.source == CapSource::Kernel(KernelKind::Endpoint)
    });
    if launcher_wanted && !launcher_served {
        report.push(Subject::Init, Rule::InitLacksLauncherEndpoint);
    }
    // The `config` MemoryObject is allocated by init.
    if m.services.iter().any(|s| s.sessions_config) && !init_holds(m, KernelKind::FrameAllocator) {
        report.push(Subject::Init, Rule::InitLacks(KernelKind::FrameAllocator));
    }
    for (position, service) in m.services.iter().enumerate() {
        let subject = || Subject::Service(service.name.clone());
        if let Some(rule) = name_rule(&service.name) {
            report.push(subject(), rule);
        } else if m.services[..position]
            .iter()
            .any(|earlier| earlier.name == service.name)
        {
            report.push(subject(), Rule::Duplicate);
        }
        if m.binary(&service.binary).is_none() {
            report.push(subject(), Rule::UnknownBinary(service.binary.clone()));
        }
        if let Some(rule) = placement_rule(service.placement, m.kernel.max_cpus) {
            report.push(subject(), rule);
        }
        // A `config` cap is granted beside the declared ones.
        let starting_caps = service.caps.len() + usize::from(service.sessions_config);
        if let Some(rule) = cap_slots_rule(service.cap_slots, starting_caps) {
            report.push(subject(), rule);
        }
        for (i, cap) in service.caps.iter().enumerate() {
            let subject = || Subject::Cap {
                service: service.name.clone(),
                cap: cap.name.clone(),
            };
            if let Some(rule) = name_rule(&cap.name) {
                report.push(subject(), rule);
            } else if service.caps[..i]
                .iter()
                .any(|earlier| earlier.name == cap.name)
            {
                report.push(subject(), Rule::Duplicate);
            }
            match &cap.source {
                CapSource::Kernel(KernelKind::BootPackage) => {
                    report.push(subject(), Rule::BootPackageReserved)
                }
                CapSource::Kernel(kind) => {
                    if !kind.is_child_local() && !init_holds(m, *kind) {
                        report.push(subject(), Rule::NotHeldByInit(*kind));
                    }
                    if *kind == KernelKind::Terminal {
                        let who = format!("service {:?}", service.name);
                        terminal.claim(who, subject(), report);
                    }
                    kernel_source(cap, *kind, subject(), report);
                }
                CapSource::Import {
                    service: from,
                    export,
                } => {
                    if import_resolves(m, position, from, export, subject(), report) {
                        expect_interface(cap, interfaces::CLIENT_ENDPOINT, subject(), report);
                    }
                }
                CapSource::Launcher => {
                    expect_interface(cap, interfaces::LAUNCHER, subject(), report)
                }
                // Init holds a ProcessSpawner whenever there are services
                // (checked above).
                CapSource::Spawner => {
                    expect_interface(cap, interfaces::PROCESS_SPAWNER, subject(), report)
                }
                other => source_rule(other, subject(), report),
            }
        }
        if service.frame_limit > MAX_FRAME_LIMIT {
            report.push(subject(), Rule::FrameLimitTooMany(service.frame_limit));
        }
        if service.sessions_config && service.cap(SESSIONS_CONFIG_CAP).is_some() {
            report.push(subject(), Rule::ConfigCapTaken);
        }
        if let Some(session) = &service.session {
            import_resolves(
                m,
                position,
                &session.service,
                &session.export,
                Subject::ServiceSession(service.name.clone()),
                report,
            );
        }
        launchable_rules(m, service, report);
        for (i, export) in service.exports.iter().enumerate() {
            let subject = || Subject::Export {
                service: service.name.clone(),
                export: export.name.clone(),
            };
            if let Some(rule) = name_rule(&export.name) {
                report.push(subject(), rule);
            } else if service.exports[..i]
                .iter()
                .any(|earlier| earlier.name == export.name)
            {
                report.push(subject(), Rule::Duplicate);
            }
            if let Some(rule) = export_rule(service, &export.cap, export.facet) {
                report.push(subject(), rule);
            }
        }
    }
}

/// The `sessions` section: accounts named uniquely (at most
/// [`MAX_NAME_LEN`] bytes), with unique principals, declared profiles, at
/// most one operator and acceptable password hashes; profiles named
/// uniquely, launching declared binaries.
fn sessions(m: &Manifest, report: &mut Report) {
    let c = &m.sessions;
    let mut operator: Option<&str> = None;
    for (i, a) in c.accounts.iter().enumerate() {
        let subject = || Subject::Account(a.name.clone());
        if let Some(rule) = name_rule(&a.name) {
            report.push(subject(), rule);
        } else if c.accounts[..i].iter().any(|e| e.name == a.name) {
            report.push(subject(), Rule::Duplicate);
        }
        if a.principal.is_empty() {
            report.push(subject(), Rule::EmptyPrincipal);
        } else if a.principal.len() > MAX_PRINCIPAL_LEN {
            report.push(subject(), Rule::PrincipalTooLong(a.principal.len()));
        } else if c.accounts[..i].iter().any(|e| e.principal == a.principal) {
            report.push(subject(), Rule::DuplicatePrincipal(a.principal.clone()));
        }
        if c.profile(&a.profile).is_none() {
            report.push(subject(), Rule::UnknownProfile(a.profile.clone()));
        }
        if a.profile == OPERATOR_PROFILE {
            match operator {
                Some(first) => report.push(subject(), Rule::SecondOperator(first.into())),
                None => operator = Some(&a.name),
            }
        }
        if !a.password_hash.is_empty() {
            if let Err(e) = phc::check(&a.password_hash) {
                report.push(subject(), Rule::PasswordHash(e));
            }
        }
    }
    for (i, p) in c.profiles.iter().enumerate() {
        let subject = || Subject::Profile(p.name.clone());
        if let Some(rule) = name_rule(&p.name) {
            report.push(subject(), rule);
        } else if c.profiles[..i].iter().any(|e| e.name == p.name) {
            report.push(subject(), Rule::Duplicate);
        }
        if p.launchable.len() > MAX_LAUNCHABLE {
            report.push(subject(), Rule::TooManyLaunchable(p.launchable.len()));
        }
        for (j, binary) in p.launchable.iter().enumerate() {
            if m.binary(binary).is_none() {
                report.push(subject(), Rule::LaunchableUnknownBinary(binary.clone()));
            } else if p.launchable[..j].contains(binary) {
                report.push(subject(), Rule::LaunchableDuplicate(binary.clone()));
            }
        }
    }
}

/// A service's `launchable` allowlist: at most [`MAX_LAUNCHABLE`] declared
/// binaries, each once, and only with a launcher cap to use them.
fn launchable_rules(m: &Manifest, service: &Service, report: &mut Report) {
    let subject = || Subject::Service(service.name.clone());
    let list = &service.launchable;
    if list.len() > MAX_LAUNCHABLE {
        report.push(subject(), Rule::TooManyLaunchable(list.len()));
    }
    for (i, binary) in list.iter().enumerate() {
        if m.binary(binary).is_none() {
            report.push(subject(), Rule::LaunchableUnknownBinary(binary.clone()));
        } else if list[..i].contains(binary) {
            report.push(subject(), Rule::LaunchableDuplicate(binary.clone()));
        }
    }
    if !list.is_empty() && !service.caps.iter().any(|c| c.source == CapSource::Launcher) {
        report.push(subject(), Rule::LaunchableWithoutLauncher);
    }
}

/// Why a cap-slot quota cannot be given to a process starting with `caps` caps, if it
/// cannot: above [`MAX_CAP_SLOTS`], or (when not 0, the default) below `caps`.
fn cap_slots_rule(cap_slots: u32, caps: usize) -> Option<Rule> {
    if cap_slots > MAX_CAP_SLOTS {
        Some(Rule::CapSlotsTooMany(cap_slots))
    } else if cap_slots != 0 && (cap_slots as usize) < caps {
        Some(Rule::CapSlotsBelowCaps { cap_slots, caps })
    } else {
        None
    }
}

/// Why a service cannot be placed as asked, if it cannot. Whether the CPU
/// is actually online is known only at run time: the spawner refuses a pin
/// to a CPU that is not.
fn placement_rule(placement: Placement, max_cpus: u32) -> Option<Rule> {
    match placement {
        Placement::AnyCpu => None,
        Placement::Cpu(cpu) if cpu >= MAX_CPUS => Some(Rule::CpuOutOfRange(cpu)),
        Placement::Cpu(cpu) if max_cpus != 0 && cpu >= max_cpus => {
            Some(Rule::CpuBeyondMaxCpus { cpu, max_cpus })
        }
        Placement::Cpu(_) => None,
        Placement::Unknown(n) => Some(Rule::UnknownPlacement(n)),
    }
}

/// Whether the import resolves to a declared export of an earlier service; reports why not.
fn import_resolves(
    m: &Manifest,
    importer: usize,
    from: &str,
    export: &str,
    subject: Subject,
    report: &mut Report,
) -> bool {
    let (service, export) = (String::from(from), String::from(export));
    let rule = match m.services.iter().position(|s| s.name == from) {
        _ if m.services[importer].name == from => Rule::ImportFromSelf(export),
        None => Rule::ImportUnknownService { service, export },
        Some(p) if p > importer => Rule::ImportFromLater { service, export },
        Some(p) if m.services[p].export(&export).is_none() => {
            Rule::ImportUnknownExport { service, export }
        }
        Some(_) => return true,
    };
    report.push(subject, rule);
    false
}

/// Why an export of `cap` with `facet` is not allowed, if it is not.
fn export_rule(service: &Service, cap: &str, facet: Facet) -> Option<Rule> {
    let Some(declared) = service.cap(cap) else {
        return Some(Rule::ExportUnknownCap(cap.into()));
    };
    match (&declared.source, facet) {
        (CapSource::Import { .. }, _) => Some(Rule::Reexport(cap.into())),
        (CapSource::Kernel(KernelKind::Endpoint), Facet::Client) => None,
        (CapSource::Kernel(KernelKind::Endpoint), Facet::Raw) => {
            Some(Rule::ExportNotAttenuated(cap.into()))
        }
        (_, Facet::Unknown(n)) => Some(Rule::UnknownFacet(n)),
        (CapSource::Kernel(kind), _) => Some(Rule::ExportNotEndpoint {
            cap: cap.into(),
            kind: *kind,
        }),
        // The cap itself is already reported as having no usable source.
        _ => None,
    }
}
