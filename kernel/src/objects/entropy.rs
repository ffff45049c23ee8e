//! `EntropySource`: random bytes from the kernel's pool
//! ([`crate::entropy`]), 1 to 256 per read.

use super::{names, serve, Call, KernelObject, Outcome};
use capnp::message::Builder;
use capos_caps::exception::CapException;
use capos_caps::schema::capos_capnp::entropy_source;
use capos_kcore::entropy::{Source, MAX_READ};

/// Shared: no state of its own.
pub struct EntropySource;

names!(EntropySource, entropy_source, "entropy");

impl KernelObject for EntropySource {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(entropy_source, self, cx)
    }
}

impl<'a> capos_caps::api::entropy_source::Server<Call<'a>> for EntropySource {
    fn read(&self, cx: &mut Call<'a>, p: entropy_source::read_params::Reader<'_>) -> Outcome {
        let count = p.get_count() as usize;
        if count == 0 || count > MAX_READ {
            return Outcome::Exception(CapException::failed(alloc::format!(
                "read of {count} bytes: 1 to {MAX_READ} allowed"
            )));
        }
        let mut bytes = [0u8; MAX_READ];
        crate::entropy::fill(&mut bytes[..count]);
        let mut out = Builder::new_default();
        out.init_root::<entropy_source::read_results::Builder>()
            .set_bytes(&bytes[..count]);
        cx.reply(&out)
    }

    fn source(&self, cx: &mut Call<'a>) -> Outcome {
        let mut out = Builder::new_default();
        out.init_root::<entropy_source::source_results::Builder>()
            .set_source(match crate::entropy::source() {
                Source::Rdseed => entropy_source::Source::Rdseed,
                Source::Rdrand => entropy_source::Source::Rdrand,
                Source::TscJitter => entropy_source::Source::TscJitter,
            });
        cx.reply(&out)
    }
}
