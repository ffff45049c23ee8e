//! `Console`: write-only text on the serial console.

use super::{names, param, serve, tri, Call, KernelObject, Outcome};
use capos_caps::api::console::Server;
use capos_caps::schema::capos_capnp::console;

/// The serial console, shared by every holder.
pub struct Console;

names!(Console, console, "console");

impl KernelObject for Console {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(console, self, cx)
    }
}

impl<'a> Server<Call<'a>> for Console {
    fn write(&self, cx: &mut Call<'a>, p: console::write_params::Reader<'_>) -> Outcome {
        crate::console::write_bytes(tri!(param(p.get_data())));
        cx.reply_empty()
    }

    fn write_line(&self, cx: &mut Call<'a>, p: console::write_line_params::Reader<'_>) -> Outcome {
        let text = tri!(param(p.get_text()));
        crate::console::write_parts(&[text.as_bytes(), b"\n"]);
        cx.reply_empty()
    }
}
