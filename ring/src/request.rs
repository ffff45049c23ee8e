//! Opcodes, SQE flags, limits, and the checked constructor from [`Sqe`] to [`Op`].
//!
//! [`Sqe::validate`] is the only way the kernel turns submission bytes into
//! something it acts on. It is total (never panics on any input) and strict:
//! every bit of the entry either carries meaning for the opcode or must be
//! zero, so a validated request re-encodes to exactly the bytes it came from
//! ([`Op::encode`]). Checks run in a fixed order, and the first failure
//! decides the error:
//!
//! 1. opcode defined, else [`TransportError::InvalidOpcode`];
//! 2. flags within the opcode's allowed set, else [`TransportError::InvalidFlags`];
//! 3. `reserved0` and every field the opcode does not use are zero, else
//!    [`TransportError::ReservedNonZero`];
//! 4. lengths within their limits, else [`TransportError::BadLength`];
//! 5. buffer ranges inside user space, non-wrapping, and empty buffers at
//!    address 0, else [`TransportError::BadAddress`];
//! 6. transfer list: count within [`MAX_TRANSFERS`], else
//!    [`TransportError::InvalidTransfer`]; its byte range as in step 5, else
//!    [`TransportError::BadAddress`]; 8-byte alignment, else
//!    [`TransportError::InvalidTransfer`];
//! 7. RETURN's call id non-zero, else [`TransportError::BadCallId`].
//!
//! Whether an address is actually mapped, and whether a cap id names a live
//! capability, is for the kernel to decide afterwards.

use core::num::NonZeroU64;

use crate::entry::{Sqe, TRANSFER_DESCRIPTOR_ALIGN, TRANSFER_DESCRIPTOR_SIZE};
use crate::error::TransportError;

/// Largest parameter block a CALL may carry (64 KiB).
pub const MAX_PARAMS_LEN: u32 = 64 * 1024;
/// Largest result buffer a CALL or RECV may name, and the largest payload a
/// RETURN may carry (64 KiB).
pub const MAX_RESULT_LEN: u32 = 64 * 1024;
/// Largest number of transfer descriptors in one CALL or RETURN.
pub const MAX_TRANSFERS: u16 = 16;
/// First address above the lower canonical half on x86_64. Every user buffer
/// must end at or below it.
pub const USER_ADDR_END: u64 = 0x0000_8000_0000_0000;

/// `?` for `const fn`s.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err(e),
        }
    };
}

/// `Sqe::flags` bit for RETURN: the payload is a serialized `CapException`,
/// delivered to the caller with `CQE_FLAG_EXCEPTION`.
pub const SQE_FLAG_EXCEPTION: u8 = 1 << 0;

/// `Sqe::flags` bit for RECV: deliver the caller's session context, a
/// [`crate::process::CALL_HEADER_SESSION_SIZE`]-byte header with the
/// caller reference (docs/ring-abi.md).
pub const RECV_FLAG_CALLER_SESSION: u8 = 1 << 1;

/// The defined opcodes. Every other value (0 and 6..=255) is reserved and
/// fails with [`TransportError::InvalidOpcode`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// Invoke a method on a capability.
    Call = 1,
    /// Wait for a call on an endpoint this process serves.
    Recv = 2,
    /// Answer a call received on an endpoint.
    Return = 3,
    /// Drop a capability from this process's table.
    Release = 4,
    /// Do nothing; completes with result 0. Measures the bare ring path.
    Nop = 5,
}

impl Opcode {
    /// Every defined opcode.
    pub const ALL: [Opcode; 5] = [
        Opcode::Call,
        Opcode::Recv,
        Opcode::Return,
        Opcode::Release,
        Opcode::Nop,
    ];

    /// The opcode with wire value `raw`, if defined.
    pub const fn from_u8(raw: u8) -> Option<Self> {
        match raw {
            1 => Some(Opcode::Call),
            2 => Some(Opcode::Recv),
            3 => Some(Opcode::Return),
            4 => Some(Opcode::Release),
            5 => Some(Opcode::Nop),
            _ => None,
        }
    }

    /// Flag bits this opcode accepts.
    pub const fn allowed_flags(self) -> u8 {
        match self {
            Opcode::Return => SQE_FLAG_EXCEPTION,
            Opcode::Recv => RECV_FLAG_CALLER_SESSION,
            _ => 0,
        }
    }

    /// The ABI name.
    pub const fn name(self) -> &'static str {
        match self {
            Opcode::Call => "CALL",
            Opcode::Recv => "RECV",
            Opcode::Return => "RETURN",
            Opcode::Release => "RELEASE",
            Opcode::Nop => "NOP",
        }
    }
}

/// A user buffer that passed the arithmetic checks: it lies entirely below
/// [`USER_ADDR_END`], does not wrap, respects its length limit, and if empty
/// has address 0. Whether it is mapped is still the kernel's question.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserBuf {
    addr: u64,
    len: u32,
}

impl UserBuf {
    /// The empty buffer.
    pub const EMPTY: UserBuf = UserBuf { addr: 0, len: 0 };

    /// Checks `addr`/`len` against `max_len` and the user address range.
    pub const fn new(addr: u64, len: u32, max_len: u32) -> Result<Self, TransportError> {
        if len > max_len {
            return Err(TransportError::BadLength);
        }
        tri!(Self::check_range(addr, len as u64));
        Ok(UserBuf { addr, len })
    }

    const fn check_range(addr: u64, len: u64) -> Result<(), TransportError> {
        if len == 0 {
            return if addr == 0 {
                Ok(())
            } else {
                Err(TransportError::BadAddress)
            };
        }
        match addr.checked_add(len) {
            Some(end) if end <= USER_ADDR_END => Ok(()),
            _ => Err(TransportError::BadAddress),
        }
    }

    /// Start address (0 when empty).
    pub const fn addr(&self) -> u64 {
        self.addr
    }

    /// Length in bytes.
    pub const fn len(&self) -> u32 {
        self.len
    }

    /// Whether the buffer is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the last byte; cannot overflow.
    pub const fn end(&self) -> u64 {
        self.addr + self.len as u64
    }
}

/// A transfer descriptor array that passed the arithmetic checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransferList {
    addr: u64,
    count: u16,
}

impl TransferList {
    /// No transfers.
    pub const NONE: TransferList = TransferList { addr: 0, count: 0 };

    /// Checks a descriptor array of `count` entries at `addr`.
    pub const fn new(addr: u64, count: u16) -> Result<Self, TransportError> {
        if count > MAX_TRANSFERS {
            return Err(TransportError::InvalidTransfer);
        }
        let bytes = count as u64 * TRANSFER_DESCRIPTOR_SIZE as u64;
        tri!(UserBuf::check_range(addr, bytes));
        if !addr.is_multiple_of(TRANSFER_DESCRIPTOR_ALIGN) {
            return Err(TransportError::InvalidTransfer);
        }
        Ok(TransferList { addr, count })
    }

    /// Address of the first descriptor (0 when there are none).
    pub const fn addr(&self) -> u64 {
        self.addr
    }

    /// Number of descriptors.
    pub const fn count(&self) -> u16 {
        self.count
    }

    /// The array as a byte buffer, for the kernel's user-copy routine.
    pub const fn bytes(&self) -> UserBuf {
        UserBuf {
            addr: self.addr,
            len: self.count as u32 * TRANSFER_DESCRIPTOR_SIZE,
        }
    }
}

/// A validated CALL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Call {
    /// Target capability.
    pub cap_id: u64,
    /// Method ordinal in the target's interface.
    pub method_id: u16,
    /// Serialized parameters.
    pub params: UserBuf,
    /// Where the result goes.
    pub result: UserBuf,
    /// Capabilities sent with the call.
    pub transfers: TransferList,
}

/// A validated RECV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Recv {
    /// The endpoint to receive on.
    pub cap_id: u64,
    /// Where the delivered call (header and parameters) goes.
    pub buffer: UserBuf,
    /// [`RECV_FLAG_CALLER_SESSION`]: the header carries the caller
    /// reference.
    pub caller_session: bool,
}

/// A validated RETURN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Return {
    /// The endpoint the call arrived on.
    pub cap_id: u64,
    /// The call being answered (from the RECV completion).
    pub call_id: NonZeroU64,
    /// Result bytes, or a serialized `CapException` when `exception` is set.
    pub payload: UserBuf,
    /// Capabilities returned to the caller.
    pub transfers: TransferList,
    /// Whether `payload` is an application exception.
    pub exception: bool,
}

/// A submission that passed [`Sqe::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`Opcode::Call`].
    Call(Call),
    /// [`Opcode::Recv`].
    Recv(Recv),
    /// [`Opcode::Return`].
    Return(Return),
    /// [`Opcode::Release`] of the given cap id.
    Release {
        /// The capability to drop.
        cap_id: u64,
    },
    /// [`Opcode::Nop`].
    Nop,
}

impl Op {
    /// The opcode of this request.
    pub const fn opcode(&self) -> Opcode {
        match self {
            Op::Call(_) => Opcode::Call,
            Op::Recv(_) => Opcode::Recv,
            Op::Return(_) => Opcode::Return,
            Op::Release { .. } => Opcode::Release,
            Op::Nop => Opcode::Nop,
        }
    }

    /// The canonical SQE for this request. [`Sqe::validate`] of the result
    /// gives back `self`; this is how userspace should build entries.
    pub const fn encode(&self, user_data: u64) -> Sqe {
        let mut sqe = Sqe {
            opcode: self.opcode() as u8,
            flags: 0,
            method_id: 0,
            xfer_count: 0,
            reserved0: 0,
            cap_id: 0,
            user_data,
            params_addr: 0,
            result_addr: 0,
            params_len: 0,
            result_len: 0,
            xfer_addr: 0,
            call_id: 0,
        };
        match self {
            Op::Call(c) => {
                sqe.cap_id = c.cap_id;
                sqe.method_id = c.method_id;
                sqe.params_addr = c.params.addr;
                sqe.params_len = c.params.len;
                sqe.result_addr = c.result.addr;
                sqe.result_len = c.result.len;
                sqe.xfer_addr = c.transfers.addr;
                sqe.xfer_count = c.transfers.count;
            }
            Op::Recv(r) => {
                sqe.cap_id = r.cap_id;
                sqe.result_addr = r.buffer.addr;
                sqe.result_len = r.buffer.len;
                if r.caller_session {
                    sqe.flags = RECV_FLAG_CALLER_SESSION;
                }
            }
            Op::Return(r) => {
                sqe.cap_id = r.cap_id;
                sqe.call_id = r.call_id.get();
                sqe.params_addr = r.payload.addr;
                sqe.params_len = r.payload.len;
                sqe.xfer_addr = r.transfers.addr;
                sqe.xfer_count = r.transfers.count;
                if r.exception {
                    sqe.flags = SQE_FLAG_EXCEPTION;
                }
            }
            Op::Release { cap_id } => sqe.cap_id = *cap_id,
            Op::Nop => {}
        }
        sqe
    }
}

// Which optional SQE fields an opcode reads. Everything else must be zero.
const F_CAP: u8 = 1 << 0;
const F_METHOD: u8 = 1 << 1;
const F_PARAMS: u8 = 1 << 2;
const F_RESULT: u8 = 1 << 3;
const F_XFER: u8 = 1 << 4;
const F_CALL_ID: u8 = 1 << 5;

const fn used_fields(op: Opcode) -> u8 {
    match op {
        Opcode::Call => F_CAP | F_METHOD | F_PARAMS | F_RESULT | F_XFER,
        Opcode::Recv => F_CAP | F_RESULT,
        Opcode::Return => F_CAP | F_PARAMS | F_XFER | F_CALL_ID,
        Opcode::Release => F_CAP,
        Opcode::Nop => 0,
    }
}

impl Sqe {
    /// [`Sqe::validate`] of the entry whose slot words are `w`, with short
    /// paths for the commonest well-formed entries (a NOP, a CALL or RETURN
    /// without flags or transfers, a RECV) that decide exactly as
    /// `validate` does.
    pub fn validate_words(w: &[u64; crate::entry::SQE_WORDS]) -> Result<Op, TransportError> {
        const NOP: u64 = Opcode::Nop as u64;
        const CALL: u64 = Opcode::Call as u64;
        // NOP: opcode, and every other field but user_data zero.
        if w[0] == NOP && (w[1] | w[3] | w[4] | w[5] | w[6] | w[7]) == 0 {
            return Ok(Op::Nop);
        }
        // CALL with no flags, no transfers, no call id, both buffers inside
        // the user half and within their limits (empty ones at address 0).
        if w[0] & 0xffff == CALL && w[0] >> 32 == 0 && (w[6] | w[7]) == 0 {
            let (params_len, result_len) = (w[5] as u32, (w[5] >> 32) as u32);
            if let (Ok(params), Ok(result)) = (
                UserBuf::new(w[3], params_len, MAX_PARAMS_LEN),
                UserBuf::new(w[4], result_len, MAX_RESULT_LEN),
            ) {
                return Ok(Op::Call(Call {
                    cap_id: w[1],
                    method_id: (w[0] >> 16) as u16,
                    params,
                    result,
                    transfers: TransferList::NONE,
                }));
            }
        }
        // RECV: a cap and a non-empty result buffer, perhaps the session
        // flag, nothing else.
        const RECV: u64 = Opcode::Recv as u64;
        const RECV_SESSION: u64 = (RECV_FLAG_CALLER_SESSION as u64) << 8;
        if w[0] & !RECV_SESSION == RECV && (w[3] | w[6] | w[7] | (w[5] & 0xffff_ffff)) == 0 {
            if let Ok(buffer) = UserBuf::new(w[4], (w[5] >> 32) as u32, MAX_RESULT_LEN) {
                return Ok(Op::Recv(Recv {
                    cap_id: w[1],
                    buffer,
                    caller_session: w[0] & RECV_SESSION != 0,
                }));
            }
        }
        // RETURN without flags or transfers: a cap, a call id, a payload.
        const RETURN: u64 = Opcode::Return as u64;
        if w[0] == RETURN && (w[4] | w[6] | (w[5] >> 32)) == 0 {
            if let (Some(call_id), Ok(payload)) = (
                NonZeroU64::new(w[7]),
                UserBuf::new(w[3], w[5] as u32, MAX_RESULT_LEN),
            ) {
                return Ok(Op::Return(Return {
                    cap_id: w[1],
                    call_id,
                    payload,
                    transfers: TransferList::NONE,
                    exception: false,
                }));
            }
        }
        Sqe::from_words(w).validate()
    }

    /// Checks every field of a submission copied out of the ring and returns
    /// the typed request, or the transport error to complete it with. See the
    /// module documentation for the order of checks.
    pub const fn validate(&self) -> Result<Op, TransportError> {
        let op = match Opcode::from_u8(self.opcode) {
            Some(op) => op,
            None => return Err(TransportError::InvalidOpcode),
        };
        if self.flags & !op.allowed_flags() != 0 {
            return Err(TransportError::InvalidFlags);
        }
        let used = used_fields(op);
        let unused_nonzero = self.reserved0 != 0
            || (used & F_CAP == 0 && self.cap_id != 0)
            || (used & F_METHOD == 0 && self.method_id != 0)
            || (used & F_PARAMS == 0 && (self.params_addr != 0 || self.params_len != 0))
            || (used & F_RESULT == 0 && (self.result_addr != 0 || self.result_len != 0))
            || (used & F_XFER == 0 && (self.xfer_addr != 0 || self.xfer_count != 0))
            || (used & F_CALL_ID == 0 && self.call_id != 0);
        if unused_nonzero {
            return Err(TransportError::ReservedNonZero);
        }
        // Length limits are checked for all buffers before any address, so
        // the error does not depend on which buffer happens to be first.
        let params_max = match op {
            Opcode::Return => MAX_RESULT_LEN,
            _ => MAX_PARAMS_LEN,
        };
        if self.params_len > params_max || self.result_len > MAX_RESULT_LEN {
            return Err(TransportError::BadLength);
        }
        let params = tri!(UserBuf::new(self.params_addr, self.params_len, params_max));
        let result = tri!(UserBuf::new(
            self.result_addr,
            self.result_len,
            MAX_RESULT_LEN
        ));
        let transfers = tri!(TransferList::new(self.xfer_addr, self.xfer_count));
        Ok(match op {
            Opcode::Call => Op::Call(Call {
                cap_id: self.cap_id,
                method_id: self.method_id,
                params,
                result,
                transfers,
            }),
            Opcode::Recv => Op::Recv(Recv {
                cap_id: self.cap_id,
                buffer: result,
                caller_session: self.flags & RECV_FLAG_CALLER_SESSION != 0,
            }),
            Opcode::Return => Op::Return(Return {
                cap_id: self.cap_id,
                call_id: match NonZeroU64::new(self.call_id) {
                    Some(id) => id,
                    None => return Err(TransportError::BadCallId),
                },
                payload: params,
                transfers,
                exception: self.flags & SQE_FLAG_EXCEPTION != 0,
            }),
            Opcode::Release => Op::Release {
                cap_id: self.cap_id,
            },
            Opcode::Nop => Op::Nop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_sqe() -> Sqe {
        Sqe {
            opcode: Opcode::Call as u8,
            cap_id: 3,
            method_id: 1,
            user_data: 77,
            params_addr: 0x1000,
            params_len: 64,
            result_addr: 0x2000,
            result_len: 128,
            xfer_addr: 0x3000,
            xfer_count: 2,
            ..Sqe::default()
        }
    }

    fn return_sqe() -> Sqe {
        Sqe {
            opcode: Opcode::Return as u8,
            cap_id: 9,
            call_id: 5,
            params_addr: 0x4000,
            params_len: 10,
            ..Sqe::default()
        }
    }

    #[test]
    fn valid_call_decodes_and_round_trips() {
        let sqe = call_sqe();
        let op = sqe.validate().unwrap();
        let Op::Call(c) = op else {
            panic!("expected CALL, got {op:?}")
        };
        assert_eq!(c.cap_id, 3);
        assert_eq!(c.method_id, 1);
        assert_eq!((c.params.addr(), c.params.len()), (0x1000, 64));
        assert_eq!(c.result.end(), 0x2000 + 128);
        assert_eq!((c.transfers.addr(), c.transfers.count()), (0x3000, 2));
        assert_eq!(c.transfers.bytes().len(), 32);
        assert_eq!(op.encode(77), sqe);
    }

    #[test]
    fn every_opcode_round_trips() {
        let ops = [
            call_sqe(),
            Sqe {
                opcode: Opcode::Recv as u8,
                cap_id: 1,
                result_addr: 0x10,
                result_len: 16,
                ..Sqe::default()
            },
            Sqe {
                opcode: Opcode::Recv as u8,
                flags: RECV_FLAG_CALLER_SESSION,
                cap_id: 1,
                result_addr: 0x10,
                result_len: 16,
                ..Sqe::default()
            },
            return_sqe(),
            Sqe {
                flags: SQE_FLAG_EXCEPTION,
                ..return_sqe()
            },
            Sqe {
                opcode: Opcode::Release as u8,
                cap_id: 0xFFFF_FFFF_FFFF_FFFF,
                ..Sqe::default()
            },
            Sqe {
                opcode: Opcode::Nop as u8,
                user_data: 5,
                ..Sqe::default()
            },
        ];
        for sqe in ops {
            let op = sqe.validate().unwrap_or_else(|e| panic!("{sqe:?}: {e}"));
            assert_eq!(op.encode(sqe.user_data), sqe);
            assert_eq!(op.opcode() as u8, sqe.opcode);
        }
    }

    #[test]
    fn unknown_opcodes_fail_closed() {
        for raw in [0u8, 6, 7, 0x7F, 0x80, 0xFF] {
            let sqe = Sqe {
                opcode: raw,
                ..Sqe::default()
            };
            assert_eq!(sqe.validate(), Err(TransportError::InvalidOpcode));
        }
        // A zero-filled slot is never a valid request.
        assert_eq!(
            Sqe::default().validate(),
            Err(TransportError::InvalidOpcode)
        );
    }

    #[test]
    fn flags_are_checked_per_opcode() {
        let mut sqe = call_sqe();
        sqe.flags = SQE_FLAG_EXCEPTION;
        assert_eq!(sqe.validate(), Err(TransportError::InvalidFlags));
        let mut ret = return_sqe();
        ret.flags = 0x80;
        assert_eq!(ret.validate(), Err(TransportError::InvalidFlags));
        ret.flags = SQE_FLAG_EXCEPTION;
        assert!(matches!(
            ret.validate(),
            Ok(Op::Return(Return {
                exception: true,
                ..
            }))
        ));
    }

    #[test]
    fn recv_takes_only_the_caller_session_flag() {
        let mut recv = Sqe {
            opcode: Opcode::Recv as u8,
            cap_id: 1,
            result_addr: 0x10,
            result_len: 64,
            ..Sqe::default()
        };
        assert!(matches!(
            recv.validate(),
            Ok(Op::Recv(Recv {
                caller_session: false,
                ..
            }))
        ));
        recv.flags = RECV_FLAG_CALLER_SESSION;
        let op = recv.validate().unwrap();
        assert!(matches!(
            op,
            Op::Recv(Recv {
                caller_session: true,
                ..
            })
        ));
        assert_eq!(op.encode(0), recv);
        assert_eq!(Sqe::validate_words(&recv.to_words()), Ok(op));
        recv.flags = SQE_FLAG_EXCEPTION;
        assert_eq!(recv.validate(), Err(TransportError::InvalidFlags));
        assert_eq!(
            Sqe::validate_words(&recv.to_words()),
            Err(TransportError::InvalidFlags)
        );
        recv.flags = RECV_FLAG_CALLER_SESSION | 0x80;
        assert_eq!(recv.validate(), Err(TransportError::InvalidFlags));
    }

    #[test]
    fn unused_fields_must_be_zero() {
        let nop = Opcode::Nop as u8;
        let cases = [
            Sqe {
                opcode: nop,
                reserved0: 1,
                ..Sqe::default()
            },
            Sqe {
                opcode: nop,
                cap_id: 1,
                ..Sqe::default()
            },
            Sqe {
                opcode: Opcode::Release as u8,
                method_id: 1,
                ..Sqe::default()
            },
            Sqe {
                opcode: Opcode::Recv as u8,
                params_len: 1,
                ..Sqe::default()
            },
            Sqe {
                opcode: Opcode::Recv as u8,
                xfer_count: 1,
                ..Sqe::default()
            },
            Sqe {
                call_id: 1,
                ..call_sqe()
            },
            Sqe {
                result_addr: 8,
                ..return_sqe()
            },
            Sqe {
                method_id: 2,
                ..return_sqe()
            },
        ];
        for sqe in cases {
            assert_eq!(
                sqe.validate(),
                Err(TransportError::ReservedNonZero),
                "{sqe:?}"
            );
        }
    }

    #[test]
    fn length_limits() {
        let mut sqe = call_sqe();
        sqe.params_len = MAX_PARAMS_LEN;
        assert!(sqe.validate().is_ok());
        sqe.params_len = MAX_PARAMS_LEN + 1;
        assert_eq!(sqe.validate(), Err(TransportError::BadLength));
        let mut sqe = call_sqe();
        sqe.result_len = MAX_RESULT_LEN + 1;
        assert_eq!(sqe.validate(), Err(TransportError::BadLength));
        let mut ret = return_sqe();
        ret.params_len = MAX_RESULT_LEN + 1;
        assert_eq!(ret.validate(), Err(TransportError::BadLength));
    }

    #[test]
    fn address_arithmetic() {
        let mut sqe = call_sqe();
        sqe.params_addr = u64::MAX - 10;
        assert_eq!(sqe.validate(), Err(TransportError::BadAddress));
        sqe.params_addr = USER_ADDR_END - 64;
        assert!(sqe.validate().is_ok());
        sqe.params_addr = USER_ADDR_END - 63;
        assert_eq!(sqe.validate(), Err(TransportError::BadAddress));
        let mut sqe = call_sqe();
        sqe.result_len = 0;
        assert_eq!(sqe.validate(), Err(TransportError::BadAddress));
        sqe.result_addr = 0;
        assert!(sqe.validate().is_ok());
    }

    #[test]
    fn transfer_list_checks() {
        let mut sqe = call_sqe();
        sqe.xfer_count = MAX_TRANSFERS + 1;
        assert_eq!(sqe.validate(), Err(TransportError::InvalidTransfer));
        sqe.xfer_count = MAX_TRANSFERS;
        assert!(sqe.validate().is_ok());
        sqe.xfer_addr = 0x3004;
        assert_eq!(sqe.validate(), Err(TransportError::InvalidTransfer));
        sqe.xfer_addr = USER_ADDR_END - 8;
        assert_eq!(sqe.validate(), Err(TransportError::BadAddress));
        sqe.xfer_count = 0;
        assert_eq!(sqe.validate(), Err(TransportError::BadAddress));
        sqe.xfer_addr = 0;
        assert!(sqe.validate().is_ok());
    }

    #[test]
    fn return_needs_a_call_id() {
        let mut ret = return_sqe();
        ret.call_id = 0;
        assert_eq!(ret.validate(), Err(TransportError::BadCallId));
    }

    #[test]
    fn check_order_is_fixed() {
        // Everything wrong at once: the opcode wins.
        let mut sqe = Sqe {
            opcode: 0,
            flags: 0xFF,
            reserved0: 1,
            params_len: u32::MAX,
            ..Sqe::default()
        };
        assert_eq!(sqe.validate(), Err(TransportError::InvalidOpcode));
        sqe.opcode = Opcode::Call as u8;
        assert_eq!(sqe.validate(), Err(TransportError::InvalidFlags));
        sqe.flags = 0;
        assert_eq!(sqe.validate(), Err(TransportError::ReservedNonZero));
        sqe.reserved0 = 0;
        sqe.params_addr = u64::MAX;
        assert_eq!(sqe.validate(), Err(TransportError::BadLength));
        sqe.params_len = 1;
        assert_eq!(sqe.validate(), Err(TransportError::BadAddress));
    }

    #[test]
    fn opcode_table() {
        for op in Opcode::ALL {
            assert_eq!(Opcode::from_u8(op as u8), Some(op));
            assert!(!op.name().is_empty());
        }
        let defined = (0..=255u8)
            .filter(|b| Opcode::from_u8(*b).is_some())
            .count();
        assert_eq!(defined, Opcode::ALL.len());
    }
}
