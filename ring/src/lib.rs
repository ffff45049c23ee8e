//! Shared-memory submission/completion ring ABI, identical bytes in kernel and userspace.
//!
//! This crate is the single definition of the capability ring: the byte
//! layout of the ring header and its entries, the opcode and error tables, the
//! checked constructor that turns a submission copied out of shared memory
//! into a typed request, and the lock-free single-producer/single-consumer
//! index logic for both queues. The kernel (built for
//! `x86_64-unknown-none`) and userspace compile the same source, so both sides
//! agree on every offset by construction. `docs/ring-abi.md` is the
//! human-readable contract; any change here is an ABI change and is reviewed
//! as one.
//!
//! Map of the crate:
//!
//! - [`layout`]: the header, entry slots, [`RingLayout`] arithmetic and the
//!   default one-page geometry.
//! - [`entry`]: [`Sqe`], [`Cqe`], transfer records and their word encoding.
//! - [`request`]: opcodes, flags, limits and [`Sqe::validate`], producing an
//!   [`Op`] the kernel can act on.
//! - [`error`]: [`TransportError`], the negative CQE result codes.
//! - [`memory`]: the [`RingMemory`] trait and the two ways to back it here
//!   ([`RawRing`] over mapped memory, [`OwnedRing`] as an owned image).
//! - [`queue`]: the four views. Userspace holds [`SubmissionProducer`] and
//!   [`CompletionConsumer`]; the kernel holds [`SubmissionDrain`] and
//!   [`CompletionPoster`].
//!
//! The crate is `no_std`, does not allocate, and has no dependencies.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!("the capOS ring ABI is little-endian");

pub mod entry;
pub mod error;
pub mod layout;
pub mod memory;
pub mod process;
pub mod queue;
pub mod request;

pub use entry::{
    Cqe, CqeStatus, Sqe, TransferDescriptor, TransferMode, TransferResult, CQE_FLAGS_ALL,
    CQE_FLAG_EXCEPTION, CQE_FLAG_TRANSFER_RESULTS, TRANSFER_COPY, TRANSFER_DESCRIPTOR_ALIGN,
    TRANSFER_DESCRIPTOR_SIZE, TRANSFER_MOVE, TRANSFER_RESULT_SIZE,
};
pub use error::TransportError;
pub use layout::{
    LayoutError, RingHeader, RingIndex, RingLayout, ABI_VERSION, CQE_SIZE, CQ_ENTRIES,
    DEFAULT_LAYOUT, HEADER_SIZE, MAX_ENTRIES, PAGE_SIZE, RING_MAGIC, RING_PAGES, SQE_SIZE,
    SQ_ENTRIES,
};
pub use memory::{DefaultRing, OwnedRing, RawRing, RingMemory};
pub use queue::{
    CompletionConsumer, CompletionPoster, Corruption, CqCredit, Credits, DrainBatch, DrainStop,
    ReserveError, Submission, SubmissionDrain, SubmissionProducer, SubmitError,
};
pub use request::{
    Call, Op, Opcode, Recv, Return, TransferList, UserBuf, MAX_PARAMS_LEN, MAX_RESULT_LEN,
    MAX_TRANSFERS, RECV_FLAG_CALLER_SESSION, SQE_FLAG_EXCEPTION, USER_ADDR_END,
};
