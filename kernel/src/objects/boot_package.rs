//! `BootPackage`: read-only access to the boot manifest and the boot
//! binaries (held by init only). Reads are chunked.

use super::{names, param, serve, tri, Call, KernelObject, Outcome};
use alloc::vec::Vec;
use capnp::message::Builder;
use capos_caps::api::boot_package::Server;
use capos_caps::exception::CapException;
use capos_caps::schema::capos_capnp::boot_package;

/// One boot binary as `BootPackage` exposes it.
pub struct BootBinary {
    /// Manifest name.
    pub name: alloc::string::String,
    /// The module bytes (in the direct map, never freed).
    pub bytes: &'static [u8],
}

/// The manifest and the binaries it names.
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

impl BootPackage {
    /// The bytes of binary `name`.
    pub fn binary(&self, name: &str) -> Option<&'static [u8]> {
        self.binaries
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.bytes)
    }
}

names!(BootPackage, boot_package, "boot-package");

impl KernelObject for BootPackage {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(boot_package, self, cx)
    }
}

impl<'a> Server<Call<'a>> for BootPackage {
    fn manifest_size(&self, cx: &mut Call<'a>) -> Outcome {
        let mut out = Builder::new_default();
        out.init_root::<boot_package::manifest_size_results::Builder>()
            .set_size(self.manifest.len() as u64);
        cx.reply(&out)
    }

    fn read_manifest(
        &self,
        cx: &mut Call<'a>,
        p: boot_package::read_manifest_params::Reader<'_>,
    ) -> Outcome {
        let mut out = Builder::new_default();
        out.init_root::<boot_package::read_manifest_results::Builder>()
            .set_data(chunk(self.manifest, p.get_offset(), p.get_max_bytes()));
        cx.reply(&out)
    }

    fn list_binaries(&self, cx: &mut Call<'a>) -> Outcome {
        let mut out = Builder::new_default();
        let r = out.init_root::<boot_package::list_binaries_results::Builder>();
        let mut list = r.init_binaries(self.binaries.len() as u32);
        for (i, b) in self.binaries.iter().enumerate() {
            let mut e = list.reborrow().get(i as u32);
            e.set_name(b.name.as_str());
            e.set_size(b.bytes.len() as u64);
        }
        cx.reply(&out)
    }

    fn read_binary(
        &self,
        cx: &mut Call<'a>,
        p: boot_package::read_binary_params::Reader<'_>,
    ) -> Outcome {
        let name = tri!(tri!(param(p.get_name()))
            .to_str()
            .map_err(|_| CapException::failed("binary name is not UTF-8")));
        let Some(bytes) = self.binary(name) else {
            return Outcome::Exception(CapException::failed(alloc::format!(
                "no boot binary named \"{name}\""
            )));
        };
        let mut out = Builder::new_default();
        out.init_root::<boot_package::read_binary_results::Builder>()
            .set_data(chunk(bytes, p.get_offset(), p.get_max_bytes()));
        cx.reply(&out)
    }
}
