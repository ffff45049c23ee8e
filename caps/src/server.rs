//! Support for the generated server side ([`crate::api`]): the [`Context`]
//! a handler answers through, and parameter decoding with fixed bounds.
//!
//! Parameters travel as a standard Cap'n Proto message. Zero bytes stand for
//! the empty message (every field at its default), so a caller need not
//! encode a parameter struct whose fields it leaves at their defaults.
//!
//! Every schema method is a required handler, so a server that leaves one
//! out does not build (here `ping`):
//!
//! ```compile_fail
//! use capos_caps::api::null::Server;
//! use capos_caps::schema::capos_capnp::null::echo_later_params;
//! use capos_caps::server::Context;
//!
//! struct Cx;
//! impl Context for Cx {
//!     type Reply = &'static str;
//!     fn bad_params(&mut self, _: u64, _: u16, _: capnp::Error) -> &'static str { "bad" }
//!     fn no_such_method(&mut self, _: u64, _: u16) -> &'static str { "none" }
//! }
//! struct Forgetful;
//! impl Server<Cx> for Forgetful {
//!     fn counters(&self, _: &mut Cx) -> &'static str { "counted" }
//!     fn echo_later(&self, _: &mut Cx, _: echo_later_params::Reader<'_>) -> &'static str { "later" }
//! }
//! ```
//!
//! With every handler it builds, and `dispatch` routes by ordinal (zero
//! parameter bytes decode as the empty message, malformed ones reach
//! `bad_params`):
//!
//! ```
//! use capos_caps::api::null::{dispatch, Server, COUNTERS, ECHO_LATER, ID, PING};
//! use capos_caps::schema::capos_capnp::null::echo_later_params;
//! use capos_caps::server::Context;
//!
//! struct Cx;
//! impl Context for Cx {
//!     type Reply = &'static str;
//!     fn bad_params(&mut self, _: u64, _: u16, _: capnp::Error) -> &'static str { "bad" }
//!     fn no_such_method(&mut self, interface: u64, _: u16) -> &'static str {
//!         assert_eq!(interface, ID);
//!         "none"
//!     }
//! }
//! struct Pinger;
//! impl Server<Cx> for Pinger {
//!     fn ping(&self, _: &mut Cx) -> &'static str { "pong" }
//!     fn counters(&self, _: &mut Cx) -> &'static str { "counted" }
//!     fn echo_later(&self, _: &mut Cx, p: echo_later_params::Reader<'_>) -> &'static str {
//!         if p.get_nanos() == 0 && !p.has_data() { "later" } else { "unexpected" }
//!     }
//! }
//! assert_eq!(dispatch(&Pinger, &mut Cx, PING, &[]), "pong");
//! assert_eq!(dispatch(&Pinger, &mut Cx, COUNTERS, &[]), "counted");
//! assert_eq!(dispatch(&Pinger, &mut Cx, ECHO_LATER, &[]), "later");
//! assert_eq!(dispatch(&Pinger, &mut Cx, ECHO_LATER, &[0, 0, 0, 0, 9, 0, 0, 0]), "bad");
//! assert_eq!(dispatch(&Pinger, &mut Cx, u16::MAX, &[]), "none");
//! ```

use capnp::message::{Reader, ReaderOptions};
use capnp::serialize::BufferSegments;

/// The calling side as a handler sees it: how an answer is represented, and
/// what to answer for calls that never reach a handler.
pub trait Context {
    /// What a handler returns (the kernel's outcome, a userspace server's
    /// reply).
    type Reply;

    /// `method` of `interface` got parameters that do not decode.
    fn bad_params(&mut self, interface: u64, method: u16, error: capnp::Error) -> Self::Reply;

    /// `interface` has no method `method`.
    fn no_such_method(&mut self, interface: u64, method: u16) -> Self::Reply;
}

/// Word-aligned bytes (the reader wants segments on 8-byte boundaries).
#[repr(align(8))]
struct Aligned([u8; 16]);

/// The empty message: a segment table for one segment of one word, and a
/// null root pointer (a struct with every field at its default).
static EMPTY_MESSAGE: Aligned = Aligned([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/// Decoding limits for parameters: small messages, shallow nesting.
pub fn reader_options() -> ReaderOptions {
    let mut o = ReaderOptions::new();
    o.traversal_limit_in_words(Some(64 * 1024)).nesting_limit(8);
    o
}

/// Reads a parameter message (zero bytes: the empty message).
pub fn read_params(params: &[u8]) -> capnp::Result<Reader<BufferSegments<&[u8]>>> {
    let mut bytes = if params.is_empty() {
        &EMPTY_MESSAGE.0[..]
    } else {
        params
    };
    capnp::serialize::read_message_from_flat_slice(&mut bytes, reader_options())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::capos_capnp::timer;

    #[test]
    fn zero_bytes_read_as_defaults() {
        let m = read_params(&[]).unwrap();
        let p = m.get_root::<timer::sleep_params::Reader<'_>>().unwrap();
        assert_eq!(p.get_nanos(), 0);
    }

    #[test]
    fn truncated_parameters_are_refused() {
        assert!(read_params(&[0, 0, 0, 0, 9, 0, 0, 0]).is_err());
    }
}
