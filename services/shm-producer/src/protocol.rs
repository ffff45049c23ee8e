//! The shared-memory demo's protocol, used by both `shm-producer` and
//! `shm-consumer` (the consumer includes this file).
//!
//! Endpoint methods: 0 returns the memory object (a copied result cap);
//! 1 asks the producer to check the consumer's answer; 2 makes the
//! producer try two RETURNs the kernel must refuse before answering; 4
//! moves the producer's FrameAllocator to the caller; 3 ends the demo.
//!
//! Layout of the two shared pages: word 0 holds the length of the
//! producer's message at `MESSAGE_AT`; the consumer writes its answer at
//! `ANSWER_AT` and then sets word 1 to `MAGIC`.

/// Method: get the memory object.
pub const SHARE: u16 = 0;
/// Method: check the consumer's answer.
pub const CHECK: u16 = 1;
/// Method: refused RETURNs, then an answer.
pub const REFUSED_RETURNS: u16 = 2;
/// Method: end the demo.
pub const DONE: u16 = 3;
/// Method: move the producer's FrameAllocator to the caller.
pub const GIVE_FRAMES: u16 = 4;

/// Pages in the shared object.
pub const PAGES: u32 = 2;
/// Where the producer's message lives.
pub const MESSAGE_AT: usize = 64;
/// Where the consumer writes its answer (on the second page).
pub const ANSWER_AT: usize = 4096 + 64;
/// Word 1 once the answer is written.
pub const MAGIC: u64 = 0xC0DE_CAFE;
