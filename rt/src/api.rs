//! Typed clients generated from the schema (`caps/schema/*.capnp`) by
//! `capos-codegen`, and what the generated stubs call: [`stub_call`] and
//! [`Reply`].
//!
//! Every interface gets a client struct of the same name with one stub per
//! method: `call_{method}(build, caps)` builds the parameters with a
//! closure, may send capabilities, and returns the whole [`Reply`]; where
//! the parameters are plain values, `{method}(args..)` takes them as
//! arguments and returns the one plain result (or result capability, adopted
//! as its interface) when there is exactly one. Method ordinals come from
//! `capos_caps::api`; nothing here numbers a method by hand.
//!
//! Hand-written additions (whole-manifest reads, spawning with grant lists,
//! endpoint RECV/RETURN, shared-memory views) live in [`crate::client`].

#![allow(missing_docs, clippy::all)]

use crate::error::CallError;
use crate::handle::{Cap, CapHandle};
use crate::Interface;
use alloc::vec::Vec;
use capnp::message::{Builder, Reader, ReaderOptions};
use capnp::serialize::OwnedSegments;
use core::marker::PhantomData;

pub use crate::handle::Owned;

include!(concat!(env!("OUT_DIR"), "/api.rs"));

/// A method's reply: the result message (read as `R`) and the capabilities
/// it returned, owned until taken (the rest are released when the reply is
/// dropped).
pub struct Reply<R> {
    message: Reader<OwnedSegments>,
    caps: Vec<Option<CapHandle>>,
    _results: PhantomData<R>,
}

/// The empty message (zero result bytes mean every field at its default).
const EMPTY: [u8; 16] = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

impl<R> core::fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Reply({} result caps left)",
            self.caps.iter().flatten().count()
        )
    }
}

impl<R: capnp::traits::Owned> Reply<R> {
    /// A reply of `bytes` with result capabilities `caps`.
    pub fn new(bytes: &[u8], caps: Vec<CapHandle>) -> Result<Self, CallError> {
        let bytes = if bytes.is_empty() { &EMPTY[..] } else { bytes };
        let mut options = ReaderOptions::new();
        options
            .traversal_limit_in_words(Some(bytes.len() / 8 * 4 + 64))
            .nesting_limit(16);
        Ok(Reply {
            message: capnp::serialize::read_message(bytes, options)?,
            caps: caps.into_iter().map(Some).collect(),
            _results: PhantomData,
        })
    }

    /// The result struct.
    pub fn get(&self) -> Result<R::Reader<'_>, CallError> {
        Ok(self.message.get_root::<R::Reader<'_>>()?)
    }

    /// Takes result capability `index` as interface `T` (a cap of another
    /// interface is released and refused).
    pub fn take_cap<T: Interface>(&mut self, index: u16) -> Result<Owned<T>, CallError> {
        let handle = self
            .caps
            .get_mut(usize::from(index))
            .and_then(Option::take)
            .ok_or(CallError::Protocol("result capability index out of range"))?;
        Owned::adopt_checked(handle.into_cap())
    }

    /// Takes result capability `index` whatever its interface.
    pub fn take_any(&mut self, index: u16) -> Result<CapHandle, CallError> {
        self.caps
            .get_mut(usize::from(index))
            .and_then(Option::take)
            .ok_or(CallError::Protocol("result capability index out of range"))
    }

    /// Result capabilities not taken yet.
    pub fn caps_left(&self) -> usize {
        self.caps.iter().flatten().count()
    }
}

/// One CALL of `method` on `cap` with parameters `P` built by `build`,
/// `caps` sent with it and a result buffer of `capacity` bytes; the reply
/// read as `R`.
pub fn stub_call<P, R>(
    cap: &Cap,
    method: u16,
    capacity: u32,
    build: impl FnOnce(P::Builder<'_>),
    caps: &[(&Cap, u32)],
) -> Result<Reply<R>, CallError>
where
    P: capnp::traits::Owned,
    R: capnp::traits::Owned,
{
    let mut m = Builder::new_default();
    build(m.init_root::<P::Builder<'_>>());
    let params = capnp::serialize::write_message_to_words(&m);
    let (bytes, handles) = crate::client::call_raw(cap, method, params, capacity as usize, caps)?;
    Reply::new(&bytes, handles)
}
