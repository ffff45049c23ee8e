//! `Null`: does nothing, so a benchmark can measure a capability call itself.

use super::{names, serve, Call, KernelObject, Outcome};
use capos_caps::api::null::Server;

/// The measurement-only object.
pub struct Null;

names!(Null, null, "null");

impl KernelObject for Null {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(null, self, cx)
    }
}

impl<'a> Server<Call<'a>> for Null {
    fn ping(&self, _cx: &mut Call<'a>) -> Outcome {
        Outcome::Done(0)
    }
}
