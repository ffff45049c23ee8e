//! The one table from a manifest's `KernelCapKind` to a kernel object,
//! shared by boot processes (the manifest's init and boot processes) and by
//! `ProcessSpawner.spawn`'s kernel grants.
//!
//! Which kinds this kernel implements is decided in `capos-caps`
//! (`KernelKind::is_implemented`), so the host's manifest check refuses the
//! others with the same message the kernel gives here.

use super::boot_package::BootPackage;
use super::console::Console;
use super::endpoint::{Endpoint, EndpointOwner};
use super::entropy::EntropySource;
use super::memory::FrameAllocator;
use super::null::Null;
use super::process::ProcessSpawner;
use super::session::SessionAuthority;
use super::sysinfo::SystemInfo;
use super::terminal::TerminalSession;
use super::timer::Timer;
use super::vm::VirtualMemory;
use super::Object;
use alloc::string::String;
use alloc::sync::Arc;
use capos_caps::manifest::KernelKind;

/// A minted capability: the object, and the endpoint behind it when it is
/// an endpoint's owner side (the spawner returns a client facet of it).
pub struct Minted {
    /// The object.
    pub object: Object,
    /// The endpoint, for kind `endpoint`.
    pub endpoint: Option<Arc<Endpoint>>,
}

impl Minted {
    fn of(object: Object) -> Self {
        Minted {
            object,
            endpoint: None,
        }
    }
}

/// Mints `kind`; `boot` is the boot package, for the kinds only init holds
/// (`None`: the caller may not mint them).
fn mint(kind: KernelKind, boot: Option<&Arc<BootPackage>>) -> Result<Minted, String> {
    if !kind.is_implemented() {
        return Err(capos_caps::manifest::not_implemented_message(kind));
    }
    Ok(match kind {
        KernelKind::Console => Minted::of(Arc::new(Console)),
        KernelKind::Timer => Minted::of(Arc::new(Timer)),
        KernelKind::Null => Minted::of(Arc::new(Null)),
        KernelKind::FrameAllocator => Minted::of(Arc::new(FrameAllocator)),
        KernelKind::VirtualMemory => Minted::of(Arc::new(VirtualMemory::new())),
        KernelKind::Endpoint => {
            let ep = Endpoint::new();
            Minted {
                object: Arc::new(EndpointOwner::new(ep.clone())),
                endpoint: Some(ep),
            }
        }
        KernelKind::BootPackage | KernelKind::ProcessSpawner => {
            let Some(boot) = boot else {
                return Err(alloc::format!("{kind:?} is only granted to init"));
            };
            if kind == KernelKind::BootPackage {
                Minted::of(boot.clone())
            } else {
                Minted::of(Arc::new(ProcessSpawner { boot: boot.clone() }))
            }
        }
        KernelKind::Terminal => Minted::of(Arc::new(TerminalSession::open()?)),
        KernelKind::Entropy => Minted::of(Arc::new(EntropySource)),
        KernelKind::SystemInfo => Minted::of(Arc::new(SystemInfo)),
        KernelKind::SessionAuthority => Minted::of(Arc::new(SessionAuthority)),
        KernelKind::ThreadSpawner => {
            return Err(capos_caps::manifest::not_implemented_message(kind))
        }
    })
}

/// Mints `kind` for a process the manifest starts.
pub fn mint_for_boot(kind: KernelKind, boot: &Arc<BootPackage>) -> Result<Minted, String> {
    mint(kind, Some(boot))
}

/// Mints `kind` as a spawner's kernel grant to a child.
pub fn mint_for_child(kind: KernelKind) -> Result<Minted, String> {
    mint(kind, None)
}
