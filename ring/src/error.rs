//! Transport error codes: the negative values a CQE `result` can carry.
//!
//! Transport errors describe a failure of the ring or of the kernel's
//! handling of a request (malformed entry, bad capability, exhausted quota).
//! Application errors are not here: they arrive as a serialized
//! `CapException` in the result buffer with `CQE_FLAG_EXCEPTION` set.
//!
//! The numeric values are ABI. Adding a code is an ABI change; renumbering
//! one is never allowed.

use core::fmt;

/// A transport failure reported as a negative CQE result.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportError {
    /// The opcode is not defined (including the reserved range).
    InvalidOpcode = -1,
    /// A flag bit is set that the opcode does not accept.
    InvalidFlags = -2,
    /// A reserved field, or a field the opcode does not use, is non-zero.
    ReservedNonZero = -3,
    /// A length exceeds its documented limit.
    BadLength = -4,
    /// A buffer address is outside user space, wraps, or is set on an empty
    /// buffer; or the kernel could not access it.
    BadAddress = -5,
    /// The transfer descriptor list or a descriptor in it is malformed.
    InvalidTransfer = -6,
    /// The capability id is out of range, stale, or released.
    BadCap = -7,
    /// The method id is not part of the capability's interface.
    NoSuchMethod = -8,
    /// The capability's interface does not accept this operation (for example
    /// RECV on something that is not an endpoint, or on a client facet).
    InterfaceMismatch = -9,
    /// A kernel-side queue for the target is full; retry later.
    QueueFull = -10,
    /// The caller's resource ledger would exceed a limit.
    Quota = -11,
    /// The operation was cancelled before it completed (for example the peer
    /// or the endpoint went away while it was queued).
    Cancelled = -12,
    /// The result buffer is too small for the result.
    BufferTooSmall = -13,
    /// RETURN names a call id that is zero or not in flight on that endpoint.
    BadCallId = -14,
    /// A capability could not be transferred (not transferable, or the
    /// transfer was refused by policy).
    TransferDenied = -15,
    /// The ring's index words are inconsistent; the kernel stopped draining it.
    RingCorrupted = -16,
}

impl TransportError {
    /// Every defined code, in numeric order (−1 downwards).
    pub const ALL: [TransportError; 16] = [
        TransportError::InvalidOpcode,
        TransportError::InvalidFlags,
        TransportError::ReservedNonZero,
        TransportError::BadLength,
        TransportError::BadAddress,
        TransportError::InvalidTransfer,
        TransportError::BadCap,
        TransportError::NoSuchMethod,
        TransportError::InterfaceMismatch,
        TransportError::QueueFull,
        TransportError::Quota,
        TransportError::Cancelled,
        TransportError::BufferTooSmall,
        TransportError::BadCallId,
        TransportError::TransferDenied,
        TransportError::RingCorrupted,
    ];

    /// The value carried in `Cqe::result`.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The error with code `code`, if it is defined.
    pub const fn from_i32(code: i32) -> Option<Self> {
        Some(match code {
            -1 => TransportError::InvalidOpcode,
            -2 => TransportError::InvalidFlags,
            -3 => TransportError::ReservedNonZero,
            -4 => TransportError::BadLength,
            -5 => TransportError::BadAddress,
            -6 => TransportError::InvalidTransfer,
            -7 => TransportError::BadCap,
            -8 => TransportError::NoSuchMethod,
            -9 => TransportError::InterfaceMismatch,
            -10 => TransportError::QueueFull,
            -11 => TransportError::Quota,
            -12 => TransportError::Cancelled,
            -13 => TransportError::BufferTooSmall,
            -14 => TransportError::BadCallId,
            -15 => TransportError::TransferDenied,
            -16 => TransportError::RingCorrupted,
            _ => return None,
        })
    }

    /// The ABI name of the code, as written in `docs/ring-abi.md`.
    pub const fn name(self) -> &'static str {
        match self {
            TransportError::InvalidOpcode => "INVALID_OPCODE",
            TransportError::InvalidFlags => "INVALID_FLAGS",
            TransportError::ReservedNonZero => "RESERVED_NONZERO",
            TransportError::BadLength => "BAD_LENGTH",
            TransportError::BadAddress => "BAD_ADDRESS",
            TransportError::InvalidTransfer => "INVALID_TRANSFER",
            TransportError::BadCap => "BAD_CAP",
            TransportError::NoSuchMethod => "NO_SUCH_METHOD",
            TransportError::InterfaceMismatch => "INTERFACE_MISMATCH",
            TransportError::QueueFull => "QUEUE_FULL",
            TransportError::Quota => "QUOTA",
            TransportError::Cancelled => "CANCELLED",
            TransportError::BufferTooSmall => "BUFFER_TOO_SMALL",
            TransportError::BadCallId => "BAD_CALL_ID",
            TransportError::TransferDenied => "TRANSFER_DENIED",
            TransportError::RingCorrupted => "RING_CORRUPTED",
        }
    }

    /// A short human-readable description.
    pub const fn description(self) -> &'static str {
        match self {
            TransportError::InvalidOpcode => "unknown or reserved opcode",
            TransportError::InvalidFlags => "flag not accepted by this opcode",
            TransportError::ReservedNonZero => "reserved or unused field is non-zero",
            TransportError::BadLength => "length exceeds its limit",
            TransportError::BadAddress => "buffer address invalid or inaccessible",
            TransportError::InvalidTransfer => "malformed transfer descriptor",
            TransportError::BadCap => "capability id stale or out of range",
            TransportError::NoSuchMethod => "method not in the capability's interface",
            TransportError::InterfaceMismatch => "operation not accepted by this capability",
            TransportError::QueueFull => "target queue full, retry later",
            TransportError::Quota => "resource limit reached",
            TransportError::Cancelled => "operation cancelled",
            TransportError::BufferTooSmall => "result buffer too small",
            TransportError::BadCallId => "no such call in flight",
            TransportError::TransferDenied => "capability transfer refused",
            TransportError::RingCorrupted => "ring indices corrupted",
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.name(),
            self.code(),
            self.description()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_negative_and_round_trip() {
        for (n, err) in TransportError::ALL.into_iter().enumerate() {
            assert_eq!(err.code(), -(n as i32) - 1);
            assert_eq!(TransportError::from_i32(err.code()), Some(err));
        }
        assert_eq!(TransportError::from_i32(0), None);
        assert_eq!(TransportError::from_i32(1), None);
        assert_eq!(TransportError::from_i32(-17), None);
        assert_eq!(TransportError::from_i32(i32::MIN), None);
    }

    #[test]
    fn names_and_descriptions_are_unique() {
        let all = TransportError::ALL;
        for (i, a) in all.iter().enumerate() {
            assert!(!a.description().is_empty());
            for b in &all[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(a.description(), b.description());
            }
        }
        assert_eq!(
            TransportError::BadCap.to_string(),
            "BAD_CAP (-7): capability id stale or out of range"
        );
    }

    #[test]
    fn stable_values() {
        // Spot checks against the table in docs/ring-abi.md.
        assert_eq!(TransportError::InvalidOpcode as i32, -1);
        assert_eq!(TransportError::ReservedNonZero as i32, -3);
        assert_eq!(TransportError::BadCap as i32, -7);
        assert_eq!(TransportError::Cancelled as i32, -12);
        assert_eq!(TransportError::RingCorrupted as i32, -16);
    }
}
