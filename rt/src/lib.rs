//! capos-rt, the userspace runtime every capOS service links against.
//!
//! A service is a `#![no_std]`, `#![no_main]`, `#![forbid(unsafe_code)]`
//! binary that names its main function with [`entry!`]. Everything below the
//! service's own logic lives here:
//!
//! * the process entry point `_start` (`arch`), which checks the addresses
//!   the kernel passed against the process ABI, attaches the ring, parses the
//!   CapSet, sets up the heap, runs `main` and exits with its code;
//! * the heap ([`heap`]): `talc` over a static arena, grown through the
//!   process's `VirtualMemory` capability by an allocation-free direct ring
//!   call ([`direct`]) that keeps other calls' completions for the client;
//! * the two raw system calls (`syscall`), and the only `syscall`
//!   instructions in userspace;
//! * the ring client ([`RingClient`], shared as [`Ring`]): unique
//!   `user_data`, buffers kept alive until their completion, out-of-order
//!   completion matching, blocking and non-blocking calls;
//! * CapSet lookup by name with an interface check ([`Runtime::cap`]);
//! * typed clients for every schema interface ([`api`], generated from
//!   `caps/schema` like the kernel's dispatch), plus what cannot be
//!   generated ([`client`]): chunked reads, spawning with grant lists,
//!   endpoint RECV/RETURN and serving a protocol ([`ServerCall`]);
//! * owned capability handles that release themselves ([`CapHandle`],
//!   [`Owned`]);
//! * the panic path (`panic: <message>` on the console, exit code 101) and
//!   deliberate CPU faults for fault tests (`fault`).
//!
//! The logic (CapSet lookup, completion matching, wire encoding, heap
//! growth, direct calls) builds and is unit-tested on the host; the parts
//! that only make sense inside a capOS process (entry, syscalls, the global
//! allocator, panic handler, faults) are compiled only for
//! `target_os = "none"`. `docs/runtime.md` describes the whole runtime.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod api;
pub mod capset;
pub mod client;
#[cfg(target_os = "none")]
pub mod config;
pub mod direct;
pub mod error;
pub mod handle;
pub mod heap;
pub mod launch;
pub mod ring_client;
pub mod runtime;
pub mod serve;
pub mod wire;

#[cfg(test)]
mod sim;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
pub mod fault;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod start;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod time;

pub use capnp;
pub use capos_caps as caps;
pub use capos_ring as ring;

pub use api::Reply;
pub use capset::{CapLookupError, Interface};
pub use client::{
    prot, Answer, BinaryInfo, BootPackage, ClientEndpoint, Console, Endpoint, EntropySource,
    FrameAllocator, GrantSpec, IncomingCall, KernelGrant, MemoryObject, NullCap, Placement,
    ProcessHandle, ProcessSpawner, ServerCall, SessionAuthority, SpawnOptions, Spawned, SystemInfo,
    TerminalSession, Timer, UserSession, VirtualMemory,
};
#[cfg(target_os = "none")]
pub use client::{AnonBuffer, SharedMemory};
pub use error::CallError;
#[cfg(target_os = "none")]
pub use handle::RawTicket;
pub use handle::{Cap, CapHandle, Owned, Ring};
pub use ring_client::{
    BenchBuf, BenchSqe, Completion, Enter, RingClient, RingStats, Ticket, BENCH_BUF_LEN,
};
pub use runtime::Runtime;

/// Exit code of a process whose `main` panicked.
pub const PANIC_EXIT_CODE: i32 = 101;

/// Exit codes `_start` uses when the kernel's hand-over is not what the
/// process ABI promises. `main` never runs in these cases, and nothing can be
/// printed because the console capability cannot be trusted either.
pub mod start_error {
    /// `RDI` was not `RING_ADDR`.
    pub const BAD_RING_ADDR: i32 = 120;
    /// `RDX` was not `CAPSET_ADDR`.
    pub const BAD_CAPSET_ADDR: i32 = 121;
    /// The ring header's magic, version or geometry is wrong.
    pub const BAD_RING: i32 = 122;
    /// The CapSet page does not parse.
    pub const BAD_CAPSET: i32 = 123;
    /// The heap arena could not be handed to the allocator.
    pub const NO_HEAP: i32 = 124;
}

/// Names the service's main function; put it once at the top level of the
/// binary crate:
///
/// ```ignore
/// #![no_std]
/// #![no_main]
/// #![forbid(unsafe_code)]
///
/// capos_rt::entry!(main);
///
/// fn main(rt: &mut capos_rt::Runtime) -> i32 {
///     0
/// }
/// ```
///
/// `main` must have the type `fn(&mut Runtime) -> i32`; its return value is
/// the process's exit code. The macro defines the symbol `_start` calls; the
/// service itself writes no `unsafe` code.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[doc(hidden)]
        #[no_mangle]
        pub fn __capos_rt_main(rt: &mut $crate::Runtime) -> i32 {
            let main: fn(&mut $crate::Runtime) -> i32 = $main;
            main(rt)
        }
    };
}
