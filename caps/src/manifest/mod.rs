//! The boot manifest as plain Rust data, its bounded decoding, and its validation.
//!
//! A manifest is a Cap'n Proto `SystemManifest` message (`caps/schema/manifest.capnp`).
//! [`decode`] reads one with hard limits on size, traversal, nesting and list lengths
//! into [`Manifest`]; [`Manifest::encode`] writes one back. Validation comes in two
//! layers, matching who acts on the data:
//!
//! * [`validate_kernel_layer`]: what the kernel needs to start init and the boot
//!   processes.
//! * [`validate_service_graph`]: what init needs to start the services.
//!
//! Both report typed [`ManifestError`]s whose `Display` names the service, cap and rule.

mod codec;
pub mod phc;
mod validate;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub use codec::{
    decode, decode_sessions_config, kind_from_schema, kind_to_schema, placement_from_schema,
    write_placement, DecodeError, Limits as DecodeLimits,
};
pub use validate::{
    check, validate_kernel_layer, validate_service_graph, ManifestError, Rule, Subject,
};

use crate::interfaces;

/// The only schema version this build reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Longest binary, service, cap or export name, in bytes (the CapSet name field size).
pub const MAX_NAME_LEN: usize = 32;

/// Most processes the kernel starts beside init (`KernelParams::boot_processes`).
pub const MAX_BOOT_PROCESSES: usize = 16;

/// Most binaries one service's `launchable` allowlist may name.
pub const MAX_LAUNCHABLE: usize = 64;

/// The name of init's kernel `endpoint` cap that serves the Launcher: init
/// must hold one when any service asks for a launcher.
pub const INIT_LAUNCHER_CAP: &str = "launcher";

/// The largest frame quota, in pages, a service may be given
/// (`Service.frameLimit`; 0 means the kernel's default, 4096).
pub const MAX_FRAME_LIMIT: u32 = 16384;

/// Longest account principal, in bytes (the kernel's session label limit).
pub const MAX_PRINCIPAL_LEN: usize = 64;

/// The profile of the operator account: at most one account has it.
pub const OPERATOR_PROFILE: &str = "operator";

/// The name of the cap a service with `sessionsConfig = true` receives: a
/// MemoryObject holding the manifest's `sessions` section (see
/// [`SessionsConfig::to_config_bytes`]).
pub const SESSIONS_CONFIG_CAP: &str = "config";

/// The cap-slot quota of a process whose manifest entry or spawn leaves it at 0.
pub const DEFAULT_CAP_SLOTS: u32 = 256;

/// The largest cap-slot quota a process may be given (manifest or spawn).
pub const MAX_CAP_SLOTS: u32 = 4096;

/// The cap-slot quota a requested value means: 0 is [`DEFAULT_CAP_SLOTS`],
/// anything else itself. Callers check the value against [`MAX_CAP_SLOTS`].
pub const fn cap_slot_quota(requested: u32) -> u32 {
    if requested == 0 {
        DEFAULT_CAP_SLOTS
    } else {
        requested
    }
}

/// Most CPUs the kernel brings up; CPUs are numbered `0..MAX_CPUS` (0 is
/// the boot CPU). The kernel sizes its per-CPU tables with this.
pub const MAX_CPUS: u32 = 64;

/// A decoded boot manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Binaries packed into the ISO.
    pub binaries: Vec<Binary>,
    /// Kernel parameters.
    pub kernel: KernelParams,
    /// The first process the kernel starts.
    pub init: InitProcess,
    /// Services init starts, in order.
    pub services: Vec<Service>,
    /// Accounts and profiles (docs/sessions.md).
    pub sessions: SessionsConfig,
}

/// What the credential store and the session manager are configured with
/// (`SessionsConfig` in the schema).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionsConfig {
    /// Accounts people log in to.
    pub accounts: Vec<Account>,
    /// What each kind of session receives.
    pub profiles: Vec<Profile>,
}

/// An account (`Account` in the schema).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// What `login` asks for.
    pub name: String,
    /// The stable principal audit records name.
    pub principal: String,
    /// One of the profiles.
    pub profile: String,
    /// An Argon2id PHC string (see [`phc`]), or empty: no password yet.
    pub password_hash: String,
}

/// A profile (`Profile` in the schema).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Its name (`operator`, `guest`, `anonymous`, ...).
    pub name: String,
    /// Binaries its sessions' launcher may start.
    pub launchable: Vec<String>,
    /// The session manager's caps each session of it receives.
    pub bundle: Vec<String>,
}

impl SessionsConfig {
    /// The account named `name`, if any.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The profile named `name`, if any.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The operator account (profile [`OPERATOR_PROFILE`]), if any.
    pub fn operator(&self) -> Option<&Account> {
        self.accounts.iter().find(|a| a.profile == OPERATOR_PROFILE)
    }
}

/// A binary and the GRUB module string it is loaded under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binary {
    /// Name services refer to.
    pub name: String,
    /// GRUB `module2` string.
    pub module: String,
}

/// Kernel boot parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelParams {
    /// Log verbosity.
    pub log_level: LogLevel,
    /// CPUs to bring up; 0 means all.
    pub max_cpus: u32,
    /// Processes the kernel starts beside init, with kernel-minted caps only (for
    /// tests and bring-up). At most [`MAX_BOOT_PROCESSES`].
    pub boot_processes: Vec<InitProcess>,
    /// The serial line of the `terminal` capability (the kernel log is on
    /// COM1).
    pub terminal: SerialPort,
    /// `SystemInfo.motd`'s text; empty: the kernel's default.
    pub motd: String,
}

/// A PC serial port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SerialPort {
    /// COM1 (I/O 0x3f8, ISA IRQ 4), where the kernel log is.
    Com1,
    /// COM2 (I/O 0x2f8, ISA IRQ 3): the default terminal.
    #[default]
    Com2,
}

/// Kernel log verbosity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default.
    #[default]
    Info,
    /// Diagnostics.
    Debug,
    /// Everything.
    Trace,
}

/// A process the kernel starts (init or a boot process): its binary and its
/// kernel-minted caps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitProcess {
    /// Binary name.
    pub binary: String,
    /// Caps, in CapSet order.
    pub caps: Vec<CapRef>,
    /// Cap-slot quota; 0 means [`DEFAULT_CAP_SLOTS`], at most [`MAX_CAP_SLOTS`].
    pub cap_slots: u32,
}

/// A service init starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// Unique service name.
    pub name: String,
    /// Binary name.
    pub binary: String,
    /// Caps, in CapSet order.
    pub caps: Vec<CapRef>,
    /// Caps later services may import.
    pub exports: Vec<Export>,
    /// Where its thread runs.
    pub placement: Placement,
    /// Cap-slot quota; 0 means [`DEFAULT_CAP_SLOTS`], at most [`MAX_CAP_SLOTS`].
    pub cap_slots: u32,
    /// Binaries its launcher (a [`CapSource::Launcher`] cap) may start; at
    /// most [`MAX_LAUNCHABLE`].
    pub launchable: Vec<String>,
    /// Frame quota in pages; 0 means the kernel's default, at most
    /// [`MAX_FRAME_LIMIT`].
    pub frame_limit: u32,
    /// The SessionManager export (of an earlier service) init asks for an
    /// anonymous session to start this service in; `None`: init's session.
    pub session: Option<ImportRef>,
    /// Whether the service receives the manifest's `sessions` section as a
    /// MemoryObject cap named [`SESSIONS_CONFIG_CAP`].
    pub sessions_config: bool,
    /// Whether init ends the services still running when this one exits
    /// (the shell of `make run`: leaving it ends the system).
    pub ends_system: bool,
}

/// Another service's export, by service and export name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportRef {
    /// Exporting service.
    pub service: String,
    /// Export name.
    pub export: String,
}

/// Where the scheduler may run a process (`Placement` in the schema).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// Any CPU: placed and balanced by the scheduler (the default).
    #[default]
    AnyCpu,
    /// Pinned to this CPU (0 is the boot CPU): always queued there, never
    /// moved to another CPU.
    Cpu(u32),
    /// A placement variant this build does not know (rejected).
    Unknown(u16),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::AnyCpu => f.write_str("any CPU"),
            Placement::Cpu(n) => write!(f, "CPU {n}"),
            Placement::Unknown(n) => write!(f, "unknown placement {n}"),
        }
    }
}

/// One cap of a process's CapSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapRef {
    /// The name the process looks it up by.
    pub name: String,
    /// The interface the process expects; must match what the source provides.
    pub expected_interface_id: u64,
    /// Where the cap comes from.
    pub source: CapSource,
}

/// Where a cap comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapSource {
    /// No source given (rejected).
    Unset,
    /// Minted by the kernel.
    Kernel(KernelKind),
    /// A kernel kind this build does not know (rejected).
    UnknownKernelKind(u16),
    /// Another service's export.
    Import {
        /// Exporting service.
        service: String,
        /// Export name.
        export: String,
    },
    /// Init's Launcher: a copy of the client facet of init's
    /// [`INIT_LAUNCHER_CAP`] endpoint, limited to the service's
    /// `launchable` binaries. Services only.
    Launcher,
    /// A copy of init's ProcessSpawner. Services only.
    Spawner,
    /// A source variant this build does not know (rejected).
    UnknownVariant(u16),
}

/// A service export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// Name importers use.
    pub name: String,
    /// One of the service's own caps.
    pub cap: String,
    /// What importers receive.
    pub facet: Facet,
}

/// What importers of an export receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facet {
    /// The CALL-only client facet of an endpoint.
    Client,
    /// The endpoint's owner side (rejected).
    Raw,
    /// A facet value this build does not know (rejected).
    Unknown(u16),
}

/// A kind of capability the kernel can mint, mirroring the schema's `KernelCapKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelKind {
    /// Serial console.
    Console,
    /// Terminal session.
    Terminal,
    /// Monotonic timer.
    Timer,
    /// A fresh endpoint, owner side.
    Endpoint,
    /// Process spawner.
    ProcessSpawner,
    /// Boot package (init only).
    BootPackage,
    /// Frame allocator.
    FrameAllocator,
    /// The holder's virtual memory.
    VirtualMemory,
    /// The holder's thread spawner.
    ThreadSpawner,
    /// The measurement-only `Null` interface (each holder gets its own).
    Null,
    /// Random bytes.
    Entropy,
    /// Uptime, memory, CPUs, processes, message of the day.
    SystemInfo,
    /// Mint, scope and end sessions (the session manager's).
    SessionAuthority,
}

impl KernelKind {
    /// Every kind, in schema order.
    pub const ALL: [KernelKind; 13] = [
        KernelKind::Console,
        KernelKind::Terminal,
        KernelKind::Timer,
        KernelKind::Endpoint,
        KernelKind::ProcessSpawner,
        KernelKind::BootPackage,
        KernelKind::FrameAllocator,
        KernelKind::VirtualMemory,
        KernelKind::ThreadSpawner,
        KernelKind::Null,
        KernelKind::Entropy,
        KernelKind::SystemInfo,
        KernelKind::SessionAuthority,
    ];

    /// The interface a cap of this kind exposes.
    pub const fn interface_id(self) -> u64 {
        match self {
            KernelKind::Console => interfaces::CONSOLE,
            KernelKind::Terminal => interfaces::TERMINAL_SESSION,
            KernelKind::Timer => interfaces::TIMER,
            KernelKind::Endpoint => interfaces::ENDPOINT,
            KernelKind::ProcessSpawner => interfaces::PROCESS_SPAWNER,
            KernelKind::BootPackage => interfaces::BOOT_PACKAGE,
            KernelKind::FrameAllocator => interfaces::FRAME_ALLOCATOR,
            KernelKind::VirtualMemory => interfaces::VIRTUAL_MEMORY,
            KernelKind::ThreadSpawner => interfaces::THREAD_SPAWNER,
            KernelKind::Null => interfaces::NULL,
            KernelKind::Entropy => interfaces::ENTROPY_SOURCE,
            KernelKind::SystemInfo => interfaces::SYSTEM_INFO,
            KernelKind::SessionAuthority => interfaces::SESSION_AUTHORITY,
        }
    }

    /// Whether ProcessSpawner mints a fresh cap of this kind for each child
    /// (as opposed to init passing on one it holds).
    pub const fn is_child_local(self) -> bool {
        matches!(
            self,
            KernelKind::Endpoint
                | KernelKind::FrameAllocator
                | KernelKind::VirtualMemory
                | KernelKind::ThreadSpawner
                | KernelKind::Null
        )
    }

    /// Whether this kernel can mint a cap of this kind. The manifest check
    /// refuses the others, with [`not_implemented_message`], the text the
    /// kernel itself gives.
    pub const fn is_implemented(self) -> bool {
        !matches!(self, KernelKind::ThreadSpawner)
    }

    /// The schema enumerant name, e.g. `processSpawner`.
    pub const fn name(self) -> &'static str {
        match self {
            KernelKind::Console => "console",
            KernelKind::Terminal => "terminal",
            KernelKind::Timer => "timer",
            KernelKind::Endpoint => "endpoint",
            KernelKind::ProcessSpawner => "processSpawner",
            KernelKind::BootPackage => "bootPackage",
            KernelKind::FrameAllocator => "frameAllocator",
            KernelKind::VirtualMemory => "virtualMemory",
            KernelKind::ThreadSpawner => "threadSpawner",
            KernelKind::Null => "null",
            KernelKind::Entropy => "entropy",
            KernelKind::SystemInfo => "systemInfo",
            KernelKind::SessionAuthority => "sessionAuthority",
        }
    }
}

/// Why a cap of `kind` cannot be minted by this kernel (see
/// [`KernelKind::is_implemented`]).
pub fn not_implemented_message(kind: KernelKind) -> alloc::string::String {
    alloc::format!("kernel capability kind {kind} is not available in this kernel yet")
}

impl fmt::Display for KernelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Manifest {
    /// The binary named `name`, if declared.
    pub fn binary(&self, name: &str) -> Option<&Binary> {
        self.binaries.iter().find(|b| b.name == name)
    }

    /// The first service named `name`, if declared.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

impl Service {
    /// The first cap named `name`, if declared.
    pub fn cap(&self, name: &str) -> Option<&CapRef> {
        self.caps.iter().find(|c| c.name == name)
    }

    /// The first export named `name`, if declared.
    pub fn export(&self, name: &str) -> Option<&Export> {
        self.exports.iter().find(|e| e.name == name)
    }
}

impl CapRef {
    /// A kernel-minted cap of `kind` expecting the kind's own interface.
    pub fn kernel(name: &str, kind: KernelKind) -> CapRef {
        CapRef {
            name: name.into(),
            expected_interface_id: kind.interface_id(),
            source: CapSource::Kernel(kind),
        }
    }

    /// Init's Launcher, expecting the `Launcher` interface.
    pub fn launcher(name: &str) -> CapRef {
        CapRef {
            name: name.into(),
            expected_interface_id: interfaces::LAUNCHER,
            source: CapSource::Launcher,
        }
    }

    /// An import of `export` from `service`, expecting a client endpoint facet.
    pub fn import(name: &str, service: &str, export: &str) -> CapRef {
        CapRef {
            name: name.into(),
            expected_interface_id: interfaces::CLIENT_ENDPOINT,
            source: CapSource::Import {
                service: service.into(),
                export: export.into(),
            },
        }
    }
}

impl Export {
    /// A client-facet export of `cap` under `name`.
    pub fn client(name: &str, cap: &str) -> Export {
        Export {
            name: name.into(),
            cap: cap.into(),
            facet: Facet::Client,
        }
    }
}

#[cfg(test)]
mod tests;
