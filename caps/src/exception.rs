//! The application exception a capability call answers with, and its wire encoding.
//!
//! Transport failures (bad cap id, bad buffer, ...) are negative CQE codes owned by the
//! ring ABI. Everything an object itself refuses is a [`CapException`], serialized as the
//! schema's `CapException` struct into the caller's result buffer.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::schema::capos_capnp::{cap_exception, cap_exception::Type};

/// Longest exception message kept when decoding (longer messages are cut).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Why a call failed, mirroring `CapException.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExceptionKind {
    /// The request cannot succeed as made.
    Failed,
    /// A limit or quota was hit; retrying later may work.
    Overloaded,
    /// The object behind the capability is gone.
    Disconnected,
    /// The object does not implement the method.
    Unimplemented,
}

impl ExceptionKind {
    fn to_schema(self) -> Type {
        match self {
            Self::Failed => Type::Failed,
            Self::Overloaded => Type::Overloaded,
            Self::Disconnected => Type::Disconnected,
            Self::Unimplemented => Type::Unimplemented,
        }
    }

    fn from_schema(t: Type) -> Self {
        match t {
            Type::Failed => Self::Failed,
            Type::Overloaded => Self::Overloaded,
            Type::Disconnected => Self::Disconnected,
            Type::Unimplemented => Self::Unimplemented,
        }
    }
}

impl fmt::Display for ExceptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Failed => "failed",
            Self::Overloaded => "overloaded",
            Self::Disconnected => "disconnected",
            Self::Unimplemented => "unimplemented",
        })
    }
}

/// An application-level failure of a capability call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapException {
    /// The failure class.
    pub kind: ExceptionKind,
    /// Human-readable detail; never authority-bearing.
    pub message: String,
}

impl CapException {
    /// An exception of `kind` with `message`.
    pub fn new(kind: ExceptionKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// `failed` with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ExceptionKind::Failed, message)
    }

    /// `overloaded` with `message`.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(ExceptionKind::Overloaded, message)
    }

    /// `disconnected` with `message`.
    pub fn disconnected(message: impl Into<String>) -> Self {
        Self::new(ExceptionKind::Disconnected, message)
    }

    /// `unimplemented` for method `method` of interface `interface_id`.
    pub fn unimplemented(interface_id: u64, method: u16) -> Self {
        Self::new(
            ExceptionKind::Unimplemented,
            alloc::format!("method {method} of interface {interface_id:#018x} is not implemented"),
        )
    }

    /// Serializes this exception as a single-segment Cap'n Proto message.
    pub fn encode(&self) -> Vec<u8> {
        let mut message = capnp::message::Builder::new_default();
        let mut root = message.init_root::<cap_exception::Builder<'_>>();
        root.set_type(self.kind.to_schema());
        root.set_message(self.message.as_str());
        capnp::serialize::write_message_to_words(&message)
    }

    /// Decodes an exception from result-buffer bytes, reading at most `bytes.len()` bytes.
    ///
    /// Unknown exception types decode as [`ExceptionKind::Failed`]; messages longer than
    /// [`MAX_MESSAGE_BYTES`] are cut at a character boundary.
    pub fn decode(bytes: &[u8]) -> Result<Self, capnp::Error> {
        let mut options = capnp::message::ReaderOptions::new();
        options
            .traversal_limit_in_words(Some(bytes.len() / 8 + 16))
            .nesting_limit(4);
        let reader = capnp::serialize::read_message(bytes, options)?;
        let root = reader.get_root::<cap_exception::Reader<'_>>()?;
        let kind = root
            .get_type()
            .map_or(ExceptionKind::Failed, ExceptionKind::from_schema);
        let text = root
            .get_message()?
            .to_str()
            .unwrap_or("<message is not UTF-8>");
        let mut end = text.len().min(MAX_MESSAGE_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Ok(Self::new(kind, &text[..end]))
    }
}

impl fmt::Display for CapException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        for kind in [
            ExceptionKind::Failed,
            ExceptionKind::Overloaded,
            ExceptionKind::Disconnected,
            ExceptionKind::Unimplemented,
        ] {
            let e = CapException::new(kind, "no such file");
            let bytes = e.encode();
            assert_eq!(bytes.len() % 8, 0);
            assert_eq!(CapException::decode(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn truncated_or_garbage_bytes_are_errors_not_panics() {
        let bytes = CapException::failed("x").encode();
        for cut in 0..bytes.len() {
            let _ = CapException::decode(&bytes[..cut]);
        }
        assert!(CapException::decode(&[0xff; 64]).is_err());
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let e = CapException::decode(&CapException::failed(long).encode()).unwrap();
        assert!(e.message.len() <= MAX_MESSAGE_BYTES);
        assert!(e.message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn display_names_kind_and_message() {
        assert_eq!(
            CapException::overloaded("queue full").to_string(),
            "overloaded: queue full"
        );
        assert_eq!(
            CapException::unimplemented(0x10, 3).to_string(),
            "unimplemented: method 3 of interface 0x0000000000000010 is not implemented"
        );
    }
}
