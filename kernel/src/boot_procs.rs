//! Starting processes from the boot manifest: the manifest module is
//! decoded with bounds and validated (kernel-owned layer), then init and any
//! kernel-started boot processes are loaded from the GRUB modules their
//! binaries name, each with a capability table and CapSet built from its
//! manifest caps. Anything invalid stops boot with a message naming what and
//! why.

use crate::bootinfo::Module;
use crate::mem::phys_to_virt;
use crate::objects::boot_package::{BootBinary, BootPackage};
use crate::objects::kinds;
use crate::proc::{self, Grant};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use capos_caps::manifest::{self, CapSource, InitProcess};

/// GRUB module string of the boot manifest.
pub const MANIFEST_MODULE: &str = "manifest";

/// The bytes of module `m` (reserved at boot, never freed, so 'static).
fn module_bytes(m: &Module) -> &'static [u8] {
    // SAFETY: accepted modules lie in RAM the frame allocator never hands
    // out; the direct map covers them; nothing writes them.
    unsafe {
        core::slice::from_raw_parts(
            phys_to_virt(m.range.start) as *const u8,
            m.range.len() as usize,
        )
    }
}

/// Loads and starts the processes the manifest names. Returns `Ok(false)`
/// if there is no manifest module (a bare kernel boot).
pub fn start(modules: &[Module]) -> Result<bool, String> {
    let Some(mm) = modules.iter().find(|m| m.name == MANIFEST_MODULE) else {
        return Ok(false);
    };
    let manifest_bytes = module_bytes(mm);
    let manifest =
        manifest::decode(manifest_bytes).map_err(|e| format!("manifest: cannot decode: {e}"))?;
    manifest::validate_kernel_layer(&manifest).map_err(|e| format!("manifest: {e}"))?;

    crate::terminal::configure(manifest.kernel.terminal);
    crate::objects::sysinfo::set_motd(&manifest.kernel.motd);

    let mut binaries = Vec::new();
    for b in &manifest.binaries {
        let m = modules.iter().find(|m| m.name == b.module).ok_or_else(|| {
            format!(
                "manifest: binary \"{}\": no boot module named \"{}\"",
                b.name, b.module
            )
        })?;
        binaries.push(BootBinary {
            name: b.name.clone(),
            bytes: module_bytes(m),
        });
    }
    let boot_package = Arc::new(BootPackage {
        manifest: manifest_bytes,
        binaries,
    });
    crate::info!(
        "manifest: {} binaries, init \"{}\", {} boot processes, {} services for init",
        manifest.binaries.len(),
        manifest.init.binary,
        manifest.kernel.boot_processes.len(),
        manifest.services.len()
    );

    proc::FREE_BEFORE.store(
        crate::mem::frame::stats().free,
        core::sync::atomic::Ordering::Relaxed,
    );
    let mut threads = Vec::new();
    let procs = core::iter::once(("init", &manifest.init)).chain(
        manifest
            .kernel
            .boot_processes
            .iter()
            .map(|p| ("boot process", p)),
    );
    for (role, p) in procs {
        let grants = grants_for(p, &boot_package)
            .map_err(|e| format!("manifest: {role} \"{}\": {e}", p.binary))?;
        let bytes = boot_package
            .binaries
            .iter()
            .find(|b| b.name == p.binary)
            .map(|b| b.bytes)
            .ok_or_else(|| {
                format!(
                    "manifest: {role} \"{}\": binary not in the boot package",
                    p.binary
                )
            })?;
        let cap_slots = (p.cap_slots != 0).then_some(u64::from(p.cap_slots));
        let thread = proc::spawn(
            &p.binary,
            bytes,
            grants,
            None,
            cap_slots,
            crate::objects::session::system(),
        )
        .map_err(|e| format!("manifest: {role} \"{}\": {e}", p.binary))?;
        crate::info!(
            "proc: pid {} ({}) loaded: {} caps, {} frames",
            thread.process.pid,
            p.binary,
            p.caps.len(),
            thread.process.aspace.frames()
        );
        threads.push(thread);
    }
    for t in threads {
        crate::sched::start(t);
    }
    Ok(true)
}

fn grants_for(p: &InitProcess, boot: &Arc<BootPackage>) -> Result<Vec<Grant>, String> {
    let mut grants = Vec::new();
    for cap in &p.caps {
        let kind = match &cap.source {
            CapSource::Kernel(k) => *k,
            _ => return Err(format!("cap \"{}\": not a kernel-minted cap", cap.name)),
        };
        let object = kinds::mint_for_boot(kind, boot)
            .map_err(|e| format!("cap \"{}\": {e}", cap.name))?
            .object;
        grants.push(Grant {
            name: cap.name.clone(),
            interface_id: kind.interface_id(),
            object,
        });
    }
    Ok(grants)
}
