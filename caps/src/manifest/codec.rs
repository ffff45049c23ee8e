//! Bounded decoding of `SystemManifest` messages into [`Manifest`], and encoding back.
//!
//! The bytes come from a boot module and are hostile until proven otherwise: the
//! decoder caps the message size, the Cap'n Proto traversal and nesting limits, every
//! list length and every text length, requires valid UTF-8, and rejects trailing bytes.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::{
    Account, Binary, CapRef, CapSource, Export, Facet, ImportRef, InitProcess, KernelKind,
    KernelParams, LogLevel, Manifest, Placement, Profile, SerialPort, Service, SessionsConfig,
};
use crate::schema::capos_capnp::{placement, KernelCapKind};
use crate::schema::manifest_capnp::{
    cap_ref, export, kernel_params, sessions_config, system_manifest,
};

/// Decoding limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message, in bytes.
    pub max_bytes: usize,
    /// Most binaries.
    pub max_binaries: usize,
    /// Most services.
    pub max_services: usize,
    /// Most kernel-started boot processes (validation allows fewer; see
    /// [`MAX_BOOT_PROCESSES`](super::MAX_BOOT_PROCESSES)).
    pub max_boot_processes: usize,
    /// Most caps of one process.
    pub max_caps: usize,
    /// Most exports of one service.
    pub max_exports: usize,
    /// Most names in one service's `launchable` list (validation allows
    /// fewer; see [`MAX_LAUNCHABLE`](super::MAX_LAUNCHABLE)).
    pub max_launchable: usize,
    /// Most accounts.
    pub max_accounts: usize,
    /// Most profiles.
    pub max_profiles: usize,
    /// Most names in one profile's `launchable` or `bundle` list.
    pub max_profile_names: usize,
    /// Longest text field, in bytes.
    pub max_text: usize,
    /// Cap'n Proto nesting limit.
    pub nesting: i32,
}

impl Limits {
    /// The limits [`decode`] uses: 1 MiB, 256 binaries, 128 services, 64 boot
    /// processes, 64 caps per process, 32 exports per service, 256 launchable
    /// binaries per service, 256 accounts, 64 profiles, 256 names in each
    /// profile list, 256-byte texts, nesting depth 16.
    pub const DEFAULT: Limits = Limits {
        max_bytes: 1 << 20,
        max_binaries: 256,
        max_services: 128,
        max_boot_processes: 64,
        max_caps: 64,
        max_exports: 32,
        max_launchable: 256,
        max_accounts: 256,
        max_profiles: 64,
        max_profile_names: 256,
        max_text: 256,
        nesting: 16,
    };
}

/// Why manifest bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The message is larger than the limit.
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a well-formed message of the expected shape.
    Malformed(String),
    /// Bytes follow the message.
    TrailingBytes(usize),
    /// A list is longer than its limit.
    TooMany {
        /// What the list holds.
        what: &'static str,
        /// Its length.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A text field is longer than the limit.
    TextTooLong {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A text field is not UTF-8.
    NotUtf8(&'static str),
    /// The log level is not one this build knows.
    UnknownLogLevel(u16),
    /// `kernel.terminal` names a serial port this build does not know.
    UnknownSerialPort(u16),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "manifest is {len} bytes; at most {max} are accepted")
            }
            Self::Malformed(why) => {
                write!(f, "manifest is not a valid SystemManifest message: {why}")
            }
            Self::TrailingBytes(n) => {
                write!(f, "manifest has {n} bytes after the end of the message")
            }
            Self::TooMany { what, count, max } => {
                write!(f, "manifest has {count} {what}; at most {max} are accepted")
            }
            Self::TextTooLong { what, len, max } => {
                write!(
                    f,
                    "a {what} is {len} bytes long; at most {max} are accepted"
                )
            }
            Self::NotUtf8(what) => write!(f, "a {what} is not valid UTF-8"),
            Self::UnknownLogLevel(n) => write!(f, "kernel log level {n} is not known"),
            Self::UnknownSerialPort(n) => write!(f, "kernel terminal serial port {n} is not known"),
        }
    }
}

impl From<capnp::Error> for DecodeError {
    fn from(e: capnp::Error) -> Self {
        DecodeError::Malformed(alloc::format!("{e}"))
    }
}

/// Decodes a manifest with [`Limits::DEFAULT`]. Does not validate it.
pub fn decode(bytes: &[u8]) -> Result<Manifest, DecodeError> {
    decode_with(bytes, &Limits::DEFAULT)
}

/// Decodes a manifest with explicit limits. Does not validate it.
pub fn decode_with(bytes: &[u8], limits: &Limits) -> Result<Manifest, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let mut options = capnp::message::ReaderOptions::new();
    // Each word of a canonical message is read once; allow a small factor for the
    // segment table and pointer overhead, and nothing like an amplification attack.
    options
        .traversal_limit_in_words(Some(bytes.len() / 8 * 2 + 64))
        .nesting_limit(limits.nesting);
    let mut rest = bytes;
    let message = capnp::serialize::read_message(&mut rest, options)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    let root = message.get_root::<system_manifest::Reader<'_>>()?;
    let d = Decoder { limits };

    let binaries = root.get_binaries()?;
    d.list("binaries", binaries.len(), limits.max_binaries)?;
    let mut manifest = Manifest {
        schema_version: root.get_schema_version(),
        ..Manifest::default()
    };
    for b in binaries.iter() {
        manifest.binaries.push(Binary {
            name: d.text("binary name", b.get_name())?,
            module: d.text("module string", b.get_module())?,
        });
    }
    let kernel = root.get_kernel()?;
    manifest.kernel = KernelParams {
        log_level: match kernel.get_log_level() {
            Ok(kernel_params::LogLevel::Error) => LogLevel::Error,
            Ok(kernel_params::LogLevel::Warn) => LogLevel::Warn,
            Ok(kernel_params::LogLevel::Info) => LogLevel::Info,
            Ok(kernel_params::LogLevel::Debug) => LogLevel::Debug,
            Ok(kernel_params::LogLevel::Trace) => LogLevel::Trace,
            Err(capnp::NotInSchema(n)) => return Err(DecodeError::UnknownLogLevel(n)),
        },
        max_cpus: kernel.get_max_cpus(),
        boot_processes: Vec::new(),
        terminal: match kernel.get_terminal() {
            Ok(kernel_params::SerialPort::Com1) => SerialPort::Com1,
            Ok(kernel_params::SerialPort::Com2) => SerialPort::Com2,
            Err(capnp::NotInSchema(n)) => return Err(DecodeError::UnknownSerialPort(n)),
        },
        motd: if kernel.has_motd() {
            d.text("kernel motd", kernel.get_motd())?
        } else {
            String::new()
        },
    };
    let boot = kernel.get_boot_processes()?;
    d.list("boot processes", boot.len(), limits.max_boot_processes)?;
    for p in boot.iter() {
        manifest.kernel.boot_processes.push(InitProcess {
            binary: d.text("binary name", p.get_binary())?,
            caps: d.caps(p.get_caps()?)?,
            cap_slots: p.get_cap_slots(),
        });
    }
    let init = root.get_init()?;
    manifest.init = InitProcess {
        binary: d.text("binary name", init.get_binary())?,
        caps: d.caps(init.get_caps()?)?,
        cap_slots: init.get_cap_slots(),
    };
    let services = root.get_services()?;
    d.list("services", services.len(), limits.max_services)?;
    for s in services.iter() {
        let exports = s.get_exports()?;
        d.list("exports in one service", exports.len(), limits.max_exports)?;
        let mut decoded = Vec::with_capacity(exports.len() as usize);
        for e in exports.iter() {
            decoded.push(Export {
                name: d.text("export name", e.get_name())?,
                cap: d.text("cap name", e.get_cap())?,
                facet: match e.get_facet() {
                    Ok(export::Facet::Client) => Facet::Client,
                    Ok(export::Facet::Raw) => Facet::Raw,
                    Err(capnp::NotInSchema(n)) => Facet::Unknown(n),
                },
            });
        }
        let launchable = s.get_launchable()?;
        d.list(
            "launchable binaries in one service",
            launchable.len(),
            limits.max_launchable,
        )?;
        let launchable = launchable
            .iter()
            .map(|t| d.text("launchable binary name", t))
            .collect::<Result<Vec<_>, _>>()?;
        let session = if s.has_session() {
            let r = s.get_session()?;
            Some(ImportRef {
                service: d.text("service name", r.get_service())?,
                export: d.text("export name", r.get_export())?,
            })
        } else {
            None
        };
        manifest.services.push(Service {
            name: d.text("service name", s.get_name())?,
            binary: d.text("binary name", s.get_binary())?,
            caps: d.caps(s.get_caps()?)?,
            exports: decoded,
            placement: placement_from_schema(s.get_placement()?),
            cap_slots: s.get_cap_slots(),
            launchable,
            frame_limit: s.get_frame_limit(),
            session,
            sessions_config: s.get_sessions_config(),
            ends_system: s.get_ends_system(),
        });
    }
    if root.has_sessions() {
        manifest.sessions = d.sessions(root.get_sessions()?)?;
    }
    Ok(manifest)
}

/// Decodes the `config` a service with `sessionsConfig = true` receives:
/// a little-endian u64 byte count, then a single-segment `SessionsConfig`
/// message of that many bytes (see [`SessionsConfig::to_config_bytes`]);
/// bytes after it (the rest of the MemoryObject's pages) are ignored.
/// Bounded like [`decode`]; not validated.
pub fn decode_sessions_config(bytes: &[u8]) -> Result<SessionsConfig, DecodeError> {
    let limits = &Limits::DEFAULT;
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(DecodeError::Malformed("no length prefix".into()));
    };
    let len = usize::try_from(u64::from_le_bytes(*len)).unwrap_or(usize::MAX);
    if len > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            len,
            max: limits.max_bytes,
        });
    }
    let Some(mut message) = rest.get(..len) else {
        return Err(DecodeError::Malformed(alloc::format!(
            "the length prefix says {len} bytes, but only {} follow",
            rest.len()
        )));
    };
    let mut options = capnp::message::ReaderOptions::new();
    options
        .traversal_limit_in_words(Some(len / 8 * 2 + 64))
        .nesting_limit(limits.nesting);
    let reader = capnp::serialize::read_message(&mut message, options)?;
    if !message.is_empty() {
        return Err(DecodeError::TrailingBytes(message.len()));
    }
    Decoder { limits }.sessions(reader.get_root::<sessions_config::Reader<'_>>()?)
}

struct Decoder<'l> {
    limits: &'l Limits,
}

impl Decoder<'_> {
    fn list(&self, what: &'static str, count: u32, max: usize) -> Result<usize, DecodeError> {
        let count = count as usize;
        if count > max {
            return Err(DecodeError::TooMany { what, count, max });
        }
        Ok(count)
    }

    fn text(
        &self,
        what: &'static str,
        text: capnp::Result<capnp::text::Reader<'_>>,
    ) -> Result<String, DecodeError> {
        let text = text?;
        if text.len() > self.limits.max_text {
            return Err(DecodeError::TextTooLong {
                what,
                len: text.len(),
                max: self.limits.max_text,
            });
        }
        text.to_str()
            .map(String::from)
            .map_err(|_| DecodeError::NotUtf8(what))
    }

    fn names(
        &self,
        what: &'static str,
        list: capnp::Result<capnp::text_list::Reader<'_>>,
    ) -> Result<Vec<String>, DecodeError> {
        let list = list?;
        self.list(what, list.len(), self.limits.max_profile_names)?;
        list.iter().map(|t| self.text(what, t)).collect()
    }

    fn sessions(&self, r: sessions_config::Reader<'_>) -> Result<SessionsConfig, DecodeError> {
        let accounts = r.get_accounts()?;
        self.list("accounts", accounts.len(), self.limits.max_accounts)?;
        let profiles = r.get_profiles()?;
        self.list("profiles", profiles.len(), self.limits.max_profiles)?;
        let mut out = SessionsConfig::default();
        for a in accounts.iter() {
            out.accounts.push(Account {
                name: self.text("account name", a.get_name())?,
                principal: self.text("principal", a.get_principal())?,
                profile: self.text("profile name", a.get_profile())?,
                password_hash: self.text("password hash", a.get_password_hash())?,
            });
        }
        for p in profiles.iter() {
            out.profiles.push(Profile {
                name: self.text("profile name", p.get_name())?,
                launchable: self.names("launchable binary name", p.get_launchable())?,
                bundle: self.names("bundle cap name", p.get_bundle())?,
            });
        }
        Ok(out)
    }

    fn caps(
        &self,
        caps: capnp::struct_list::Reader<'_, cap_ref::Owned>,
    ) -> Result<Vec<CapRef>, DecodeError> {
        self.list("caps in one process", caps.len(), self.limits.max_caps)?;
        let mut out = Vec::with_capacity(caps.len() as usize);
        for c in caps.iter() {
            let source = match c.get_source().which() {
                Ok(cap_ref::source::Unset(())) => CapSource::Unset,
                Ok(cap_ref::source::Kernel(Ok(kind))) => CapSource::Kernel(kind_from_schema(kind)),
                Ok(cap_ref::source::Kernel(Err(capnp::NotInSchema(n)))) => {
                    CapSource::UnknownKernelKind(n)
                }
                Ok(cap_ref::source::Service(import)) => {
                    let import = import?;
                    CapSource::Import {
                        service: self.text("service name", import.get_service())?,
                        export: self.text("export name", import.get_export())?,
                    }
                }
                Ok(cap_ref::source::Launcher(())) => CapSource::Launcher,
                Ok(cap_ref::source::Spawner(())) => CapSource::Spawner,
                Err(capnp::NotInSchema(n)) => CapSource::UnknownVariant(n),
            };
            out.push(CapRef {
                name: self.text("cap name", c.get_name())?,
                expected_interface_id: c.get_expected_interface_id(),
                source,
            });
        }
        Ok(out)
    }
}

/// The model placement of a schema `Placement` (an absent one reads as
/// [`Placement::AnyCpu`]).
pub fn placement_from_schema(p: placement::Reader<'_>) -> Placement {
    match p.which() {
        Ok(placement::AnyCpu(())) => Placement::AnyCpu,
        Ok(placement::Cpu(n)) => Placement::Cpu(n),
        Err(capnp::NotInSchema(n)) => Placement::Unknown(n),
    }
}

/// Writes `p` into a schema `Placement`; an unknown variant (which the
/// schema cannot express) is written as [`Placement::AnyCpu`].
pub fn write_placement(p: Placement, mut b: placement::Builder<'_>) {
    match p {
        Placement::Cpu(n) => b.set_cpu(n),
        Placement::AnyCpu | Placement::Unknown(_) => b.set_any_cpu(()),
    }
}

/// The model kind of a schema `KernelCapKind`.
pub fn kind_from_schema(kind: KernelCapKind) -> KernelKind {
    match kind {
        KernelCapKind::Console => KernelKind::Console,
        KernelCapKind::Terminal => KernelKind::Terminal,
        KernelCapKind::Timer => KernelKind::Timer,
        KernelCapKind::Endpoint => KernelKind::Endpoint,
        KernelCapKind::ProcessSpawner => KernelKind::ProcessSpawner,
        KernelCapKind::BootPackage => KernelKind::BootPackage,
        KernelCapKind::FrameAllocator => KernelKind::FrameAllocator,
        KernelCapKind::VirtualMemory => KernelKind::VirtualMemory,
        KernelCapKind::ThreadSpawner => KernelKind::ThreadSpawner,
        KernelCapKind::Null => KernelKind::Null,
        KernelCapKind::Entropy => KernelKind::Entropy,
        KernelCapKind::SystemInfo => KernelKind::SystemInfo,
        KernelCapKind::SessionAuthority => KernelKind::SessionAuthority,
    }
}

/// The schema `KernelCapKind` of a model kind.
pub fn kind_to_schema(kind: KernelKind) -> KernelCapKind {
    match kind {
        KernelKind::Console => KernelCapKind::Console,
        KernelKind::Terminal => KernelCapKind::Terminal,
        KernelKind::Timer => KernelCapKind::Timer,
        KernelKind::Endpoint => KernelCapKind::Endpoint,
        KernelKind::ProcessSpawner => KernelCapKind::ProcessSpawner,
        KernelKind::BootPackage => KernelCapKind::BootPackage,
        KernelKind::FrameAllocator => KernelCapKind::FrameAllocator,
        KernelKind::VirtualMemory => KernelCapKind::VirtualMemory,
        KernelKind::ThreadSpawner => KernelCapKind::ThreadSpawner,
        KernelKind::Null => KernelCapKind::Null,
        KernelKind::Entropy => KernelCapKind::Entropy,
        KernelKind::SystemInfo => KernelCapKind::SystemInfo,
        KernelKind::SessionAuthority => KernelCapKind::SessionAuthority,
    }
}

fn encode_caps(caps: &[CapRef], mut list: capnp::struct_list::Builder<'_, cap_ref::Owned>) {
    for (i, c) in caps.iter().enumerate() {
        let mut b = list.reborrow().get(i as u32);
        b.set_name(c.name.as_str());
        b.set_expected_interface_id(c.expected_interface_id);
        let mut source = b.init_source();
        match &c.source {
            CapSource::Kernel(kind) => source.set_kernel(kind_to_schema(*kind)),
            CapSource::Import { service, export } => {
                let mut import = source.init_service();
                import.set_service(service.as_str());
                import.set_export(export.as_str());
            }
            CapSource::Launcher => source.set_launcher(()),
            CapSource::Spawner => source.set_spawner(()),
            // Values the schema cannot express are written as "no source".
            CapSource::Unset | CapSource::UnknownKernelKind(_) | CapSource::UnknownVariant(_) => {
                source.set_unset(())
            }
        }
    }
}

fn encode_names(names: &[String], mut list: capnp::text_list::Builder<'_>) {
    for (i, name) in names.iter().enumerate() {
        list.set(i as u32, name.as_str());
    }
}

fn encode_sessions(c: &SessionsConfig, mut b: sessions_config::Builder<'_>) {
    let mut accounts = b.reborrow().init_accounts(len32(c.accounts.len()));
    for (i, a) in c.accounts.iter().enumerate() {
        let mut e = accounts.reborrow().get(i as u32);
        e.set_name(a.name.as_str());
        e.set_principal(a.principal.as_str());
        e.set_profile(a.profile.as_str());
        e.set_password_hash(a.password_hash.as_str());
    }
    let mut profiles = b.init_profiles(len32(c.profiles.len()));
    for (i, p) in c.profiles.iter().enumerate() {
        let mut e = profiles.reborrow().get(i as u32);
        e.set_name(p.name.as_str());
        encode_names(
            &p.launchable,
            e.reborrow().init_launchable(len32(p.launchable.len())),
        );
        encode_names(&p.bundle, e.init_bundle(len32(p.bundle.len())));
    }
}

impl SessionsConfig {
    /// The bytes init writes into a `config` MemoryObject: a little-endian
    /// u64 byte count, then this section as a single-segment `SessionsConfig`
    /// message (the standard serialization: segment table, then the one
    /// segment). [`decode_sessions_config`] reads them back.
    pub fn to_config_bytes(&self) -> Vec<u8> {
        let mut first = capnp::message::Builder::new_default();
        encode_sessions(self, first.init_root::<sessions_config::Builder<'_>>());
        // Size the first segment to hold everything, so the copy is one segment.
        let words = first
            .get_root_as_reader::<sessions_config::Reader<'_>>()
            .and_then(|r| r.total_size())
            .map_or(0, |s| s.word_count as u32);
        let mut single = capnp::message::Builder::new(
            capnp::message::HeapAllocator::new().first_segment_words(words + 8),
        );
        encode_sessions(self, single.init_root::<sessions_config::Builder<'_>>());
        let message = capnp::serialize::write_message_to_words(&single);
        let mut out = Vec::with_capacity(8 + message.len());
        out.extend_from_slice(&(message.len() as u64).to_le_bytes());
        out.extend_from_slice(&message);
        out
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Manifest {
    /// Serializes this manifest as a `SystemManifest` message.
    ///
    /// Unknown kinds, variants and facets cannot be expressed in the schema and are
    /// written as an unset source or a raw facet respectively.
    pub fn encode(&self) -> Vec<u8> {
        let mut message = capnp::message::Builder::new_default();
        let mut root = message.init_root::<system_manifest::Builder<'_>>();
        root.set_schema_version(self.schema_version);
        let mut binaries = root.reborrow().init_binaries(len32(self.binaries.len()));
        for (i, b) in self.binaries.iter().enumerate() {
            let mut e = binaries.reborrow().get(i as u32);
            e.set_name(b.name.as_str());
            e.set_module(b.module.as_str());
        }
        let mut kernel = root.reborrow().init_kernel();
        kernel.set_log_level(match self.kernel.log_level {
            LogLevel::Error => kernel_params::LogLevel::Error,
            LogLevel::Warn => kernel_params::LogLevel::Warn,
            LogLevel::Info => kernel_params::LogLevel::Info,
            LogLevel::Debug => kernel_params::LogLevel::Debug,
            LogLevel::Trace => kernel_params::LogLevel::Trace,
        });
        kernel.set_max_cpus(self.kernel.max_cpus);
        kernel.set_terminal(match self.kernel.terminal {
            SerialPort::Com1 => kernel_params::SerialPort::Com1,
            SerialPort::Com2 => kernel_params::SerialPort::Com2,
        });
        if !self.kernel.motd.is_empty() {
            kernel.set_motd(self.kernel.motd.as_str());
        }
        let boot = &self.kernel.boot_processes;
        let mut list = kernel.init_boot_processes(len32(boot.len()));
        for (i, p) in boot.iter().enumerate() {
            let mut e = list.reborrow().get(i as u32);
            e.set_binary(p.binary.as_str());
            e.set_cap_slots(p.cap_slots);
            encode_caps(&p.caps, e.init_caps(len32(p.caps.len())));
        }
        let mut init = root.reborrow().init_init();
        init.set_binary(self.init.binary.as_str());
        init.set_cap_slots(self.init.cap_slots);
        encode_caps(&self.init.caps, init.init_caps(len32(self.init.caps.len())));
        if self.sessions != SessionsConfig::default() {
            encode_sessions(&self.sessions, root.reborrow().init_sessions());
        }
        let mut services = root.init_services(len32(self.services.len()));
        for (i, s) in self.services.iter().enumerate() {
            let mut b = services.reborrow().get(i as u32);
            b.set_name(s.name.as_str());
            b.set_binary(s.binary.as_str());
            b.set_cap_slots(s.cap_slots);
            b.set_frame_limit(s.frame_limit);
            b.set_sessions_config(s.sessions_config);
            b.set_ends_system(s.ends_system);
            if let Some(r) = &s.session {
                let mut import = b.reborrow().init_session();
                import.set_service(r.service.as_str());
                import.set_export(r.export.as_str());
            }
            encode_caps(&s.caps, b.reborrow().init_caps(len32(s.caps.len())));
            if s.placement != Placement::AnyCpu {
                write_placement(s.placement, b.reborrow().init_placement());
            }
            let mut launchable = b.reborrow().init_launchable(len32(s.launchable.len()));
            for (j, name) in s.launchable.iter().enumerate() {
                launchable.set(j as u32, name.as_str());
            }
            let mut exports = b.init_exports(len32(s.exports.len()));
            for (j, e) in s.exports.iter().enumerate() {
                let mut x = exports.reborrow().get(j as u32);
                x.set_name(e.name.as_str());
                x.set_cap(e.cap.as_str());
                x.set_facet(match e.facet {
                    Facet::Client => export::Facet::Client,
                    Facet::Raw | Facet::Unknown(_) => export::Facet::Raw,
                });
            }
        }
        capnp::serialize::write_message_to_words(&message)
    }
}
