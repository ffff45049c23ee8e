//! The first kernel capability objects: `Console`, `BootPackage` and the
//! measurement-only `Null`. Parameters arrive as Cap'n Proto messages the
//! kernel has already copied out of user memory; results are written as
//! Cap'n Proto messages into a kernel buffer the dispatcher copies back.

use alloc::vec::Vec;
use capnp::message::{Builder, ReaderOptions};
use capnp::serialize;
use capos_caps::cap_table::{CapObject, Invocation};
use capos_caps::exception::CapException;
use capos_caps::interfaces;
use capos_caps::schema::capos_capnp::{boot_package, console, timer};

/// Bounds for decoding parameters: small messages only.
fn reader_options() -> ReaderOptions {
    let mut o = ReaderOptions::new();
    o.traversal_limit_in_words(Some(64 * 1024)).nesting_limit(8);
    o
}

/// Decodes a call's serialized parameters with the kernel's bounds.
pub(crate) fn read_params(
    params: &[u8],
) -> Result<capnp::message::Reader<capnp::serialize::BufferSegments<&[u8]>>, CapException> {
    serialize::read_message_from_flat_slice(&mut &params[..], reader_options()).map_err(bad_params)
}

/// The exception for parameters that do not decode.
pub(crate) fn bad_params(e: capnp::Error) -> CapException {
    CapException::failed(alloc::format!("malformed parameters: {e}"))
}

/// Serialises `builder` into `out`, or fails if it does not fit.
pub(crate) fn write_results(
    builder: &Builder<capnp::message::HeapAllocator>,
    out: &mut [u8],
) -> Result<usize, CapException> {
    let words = serialize::write_message_to_words(builder);
    let dst = out.get_mut(..words.len()).ok_or_else(|| {
        CapException::failed(alloc::format!(
            "result buffer too small: {} bytes needed",
            words.len()
        ))
    })?;
    dst.copy_from_slice(&words);
    Ok(words.len())
}

/// Write-only text output on the serial console.
pub struct Console;

impl CapObject for Console {
    fn interface_id(&self) -> u64 {
        interfaces::CONSOLE
    }

    fn label(&self) -> &str {
        "console"
    }

    fn call(&self, inv: Invocation<'_>) -> Result<usize, CapException> {
        let msg = read_params(inv.params)?;
        match inv.method_id {
            0 => {
                let p = msg
                    .get_root::<console::write_params::Reader>()
                    .map_err(bad_params)?;
                let data = p.get_data().map_err(bad_params)?;
                crate::console::write_bytes(data);
                Ok(0)
            }
            1 => {
                let p = msg
                    .get_root::<console::write_line_params::Reader>()
                    .map_err(bad_params)?;
                let text = p.get_text().map_err(bad_params)?;
                crate::console::write_bytes(text.as_bytes());
                crate::console::write_bytes(b"\n");
                Ok(0)
            }
            m => Err(CapException::unimplemented(interfaces::CONSOLE, m)),
        }
    }
}

/// One boot binary as `BootPackage` exposes it.
pub struct BootBinary {
    /// Manifest name.
    pub name: alloc::string::String,
    /// The module bytes (in the direct map, never freed).
    pub bytes: &'static [u8],
}

/// Read-only access to the boot manifest and the boot binaries.
pub struct BootPackage {
    /// The manifest message.
    pub manifest: &'static [u8],
    /// Binaries named by the manifest.
    pub binaries: Vec<BootBinary>,
}

/// Largest chunk one read returns.
pub const MAX_CHUNK: u32 = 16 * 1024;

fn chunk(bytes: &[u8], offset: u64, max: u32) -> &[u8] {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let len = max.min(MAX_CHUNK) as usize;
    &bytes[start..(start.saturating_add(len)).min(bytes.len())]
}

impl CapObject for BootPackage {
    fn interface_id(&self) -> u64 {
        interfaces::BOOT_PACKAGE
    }

    fn label(&self) -> &str {
        "boot-package"
    }

    fn call(&self, inv: Invocation<'_>) -> Result<usize, CapException> {
        let msg = read_params(inv.params)?;
        let mut out = Builder::new_default();
        match inv.method_id {
            0 => {
                out.init_root::<boot_package::manifest_size_results::Builder>()
                    .set_size(self.manifest.len() as u64);
            }
            1 => {
                let p = msg
                    .get_root::<boot_package::read_manifest_params::Reader>()
                    .map_err(bad_params)?;
                let data = chunk(self.manifest, p.get_offset(), p.get_max_bytes());
                out.init_root::<boot_package::read_manifest_results::Builder>()
                    .set_data(data);
            }
            2 => {
                let r = out.init_root::<boot_package::list_binaries_results::Builder>();
                let mut list = r.init_binaries(self.binaries.len() as u32);
                for (i, b) in self.binaries.iter().enumerate() {
                    let mut e = list.reborrow().get(i as u32);
                    e.set_name(b.name.as_str());
                    e.set_size(b.bytes.len() as u64);
                }
            }
            3 => {
                let p = msg
                    .get_root::<boot_package::read_binary_params::Reader>()
                    .map_err(bad_params)?;
                let name = p
                    .get_name()
                    .map_err(bad_params)?
                    .to_str()
                    .map_err(|_| CapException::failed("binary name is not UTF-8"))?;
                let b = self
                    .binaries
                    .iter()
                    .find(|b| b.name == name)
                    .ok_or_else(|| {
                        CapException::failed(alloc::format!("no boot binary named \"{name}\""))
                    })?;
                let data = chunk(b.bytes, p.get_offset(), p.get_max_bytes());
                out.init_root::<boot_package::read_binary_results::Builder>()
                    .set_data(data);
            }
            m => return Err(CapException::unimplemented(interfaces::BOOT_PACKAGE, m)),
        }
        write_results(&out, inv.results)
    }
}

/// Does nothing: measures the cost of a capability call itself.
pub struct Null;

impl CapObject for Null {
    fn interface_id(&self) -> u64 {
        interfaces::NULL
    }

    fn label(&self) -> &str {
        "null"
    }

    fn call(&self, inv: Invocation<'_>) -> Result<usize, CapException> {
        match inv.method_id {
            0 => Ok(0),
            m => Err(CapException::unimplemented(interfaces::NULL, m)),
        }
    }
}

/// Monotonic time (`now`) and sleeps that complete later through the ring
/// (`sleep`, `sleepUntil`; see `timers.rs`). One per holder.
pub struct Timer;

impl CapObject for Timer {
    fn interface_id(&self) -> u64 {
        interfaces::TIMER
    }

    fn label(&self) -> &str {
        "timer"
    }

    /// Dispatch recognises the timer to defer its sleeps.
    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }

    fn call(&self, inv: Invocation<'_>) -> Result<usize, CapException> {
        match inv.method_id {
            0 => {
                let mut out = Builder::new_default();
                out.init_root::<timer::now_results::Builder>()
                    .set_nanos(crate::time::now_ns().unwrap_or(0));
                write_results(&out, inv.results)
            }
            // sleep and sleepUntil never get here: dispatch defers them.
            m => Err(CapException::unimplemented(interfaces::TIMER, m)),
        }
    }
}

/// The absolute deadline (ns) a `sleep` (method 1) or `sleepUntil` (method 2)
/// call asks for, or `None` for any other method.
pub fn sleep_deadline(method_id: u16, params: &[u8]) -> Option<Result<u64, CapException>> {
    let decode = || -> Result<u64, CapException> {
        let msg = read_params(params)?;
        Ok(match method_id {
            1 => {
                let p = msg
                    .get_root::<timer::sleep_params::Reader>()
                    .map_err(bad_params)?;
                crate::time::now_ns()
                    .unwrap_or(0)
                    .saturating_add(p.get_nanos())
            }
            _ => msg
                .get_root::<timer::sleep_until_params::Reader>()
                .map_err(bad_params)?
                .get_deadline(),
        })
    };
    matches!(method_id, 1 | 2).then(decode)
}
