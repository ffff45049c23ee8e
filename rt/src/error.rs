//! [`CallError`]: every way a capability call can fail, as seen by a caller.

use capos_caps::CapException;
use capos_ring::process::SyscallError;
use capos_ring::{Corruption, TransportError};
use core::fmt;

/// Why a call (or another ring operation) did not produce its result.
///
/// The three outcomes the kernel can report are kept apart: a negative CQE
/// result ([`CallError::Transport`]), an application exception in the result
/// buffer ([`CallError::Exception`]), and a failing `cap_enter`
/// ([`CallError::Syscall`]). The remaining variants are failures the runtime
/// detects itself.
#[derive(Clone, Debug)]
pub enum CallError {
    /// The CQE carried a transport error code.
    Transport(TransportError),
    /// The CQE carried a negative code this ABI version does not define.
    UnknownTransport(i32),
    /// The object answered with a `CapException`.
    Exception(CapException),
    /// `cap_enter` returned this negative value (a
    /// [`capos_ring::process::SyscallError`] or a transport code such as
    /// `RING_CORRUPTED`).
    Syscall(i64),
    /// The kernel's index words in the ring are inconsistent with ours.
    Corrupted(Corruption),
    /// The submission queue stayed full with nothing in flight to free it.
    SqStuck,
    /// The ticket is neither pending nor completed (already taken, or never
    /// issued by this ring).
    UnknownTicket,
    /// A raw submission names writable process memory as its result buffer,
    /// which the kernel would overwrite behind the program's back.
    UnsafeBuffer,
    /// The result bytes are not a well-formed message of the expected type.
    Decode(capnp::Error),
    /// The runtime refused a request as given (the text says why).
    InvalidArgument(&'static str),
    /// The object broke the method's contract (for example a chunked read
    /// that stopped early).
    Protocol(&'static str),
}

impl CallError {
    /// The transport error, if this is one.
    pub fn transport(&self) -> Option<TransportError> {
        match self {
            CallError::Transport(e) => Some(*e),
            _ => None,
        }
    }
}

impl From<capnp::Error> for CallError {
    fn from(e: capnp::Error) -> Self {
        CallError::Decode(e)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "transport error {e}"),
            CallError::UnknownTransport(code) => write!(f, "unknown transport error {code}"),
            CallError::Exception(e) => write!(f, "exception: {e}"),
            CallError::Syscall(code) => write!(f, "cap_enter failed: {}", SyscallCode(*code)),
            CallError::Corrupted(c) => {
                write!(
                    f,
                    "ring indices inconsistent (head {}, tail {})",
                    c.head, c.tail
                )
            }
            CallError::SqStuck => f.write_str("submission queue full with nothing in flight"),
            CallError::UnknownTicket => f.write_str("unknown ticket"),
            CallError::UnsafeBuffer => {
                f.write_str("raw submission names writable process memory as a result buffer")
            }
            CallError::Decode(e) => write!(f, "malformed result: {e}"),
            CallError::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            CallError::Protocol(what) => write!(f, "protocol violation: {what}"),
        }
    }
}

/// Displays a raw `cap_enter` return value by its ABI name where it has one:
/// `BadSyscall (-32)`, `RING_CORRUPTED (-16)`, or just the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallCode(pub i64);

impl fmt::Display for SyscallCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.0;
        if let Some(e) = SyscallError::from_code(code) {
            return write!(f, "{e:?} ({code})");
        }
        match i32::try_from(code).ok().and_then(TransportError::from_i32) {
            Some(e) => write!(f, "{} ({code})", e.name()),
            None => write!(f, "{code}"),
        }
    }
}
