//! The shared-memory demo's memory layout, used by both `shm-producer` and
//! `shm-consumer` (the consumer includes this file). Their endpoint
//! protocol is `SharedMemoryDemo` in `caps/schema/services.capnp`.
//!
//! Layout of the two shared pages: word 0 holds the length of the
//! producer's message at `MESSAGE_AT`; the consumer writes its answer at
//! `ANSWER_AT` and then sets word 1 to `MAGIC`.

/// Pages in the shared object.
pub const PAGES: u32 = 2;
/// Where the producer's message lives.
pub const MESSAGE_AT: usize = 64;
/// Where the consumer writes its answer (on the second page).
pub const ANSWER_AT: usize = 4096 + 64;
/// Word 1 once the answer is written.
pub const MAGIC: u64 = 0xC0DE_CAFE;
