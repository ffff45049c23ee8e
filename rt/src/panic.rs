//! The panic handler: report `panic: <message> at <file>:<line>` on the
//! console if the process has one, then exit with code 101. The report of
//! an allocation failure also states the heap's size and why it could not
//! grow.
//!
//! The report must work in the worst state a panic can leave: the heap
//! exhausted or mid-operation, the ring client borrowed. So it allocates
//! nothing (the text and the CALL parameters live on the stack), and it uses
//! fresh producer and consumer views over the ring instead of the client.
//! The views start from the indices in shared memory, which the client keeps
//! current after every operation. Completions of other calls still in flight
//! are reaped and dropped: the process is about to exit.

use capos_ring::{
    Call, CompletionConsumer, Op, RawRing, SubmissionProducer, TransferList, UserBuf,
    MAX_PARAMS_LEN,
};
use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{syscall, wire, PANIC_EXIT_CODE};

/// The ring, once `_start` has attached it.
static RING: spin::Once<RawRing<'static>> = spin::Once::new();
/// The console cap id, or 0 if the CapSet has no `console` Console.
static CONSOLE: AtomicU64 = AtomicU64::new(0);
/// Set by the first panic; a panic while reporting one exits at once.
static PANICKING: AtomicBool = AtomicBool::new(false);

/// `user_data` of the report's CALL; the ring client never reaches it.
const REPORT_USER_DATA: u64 = u64::MAX;
/// How long to wait for the report to complete, per attempt.
const REPORT_TIMEOUT_NS: u64 = 1_000_000_000;
/// Longest report line.
const TEXT_MAX: usize = 480;

/// Makes the console path available; called by `_start` once the ring is
/// attached and the CapSet parsed.
pub(crate) fn install(ring: RawRing<'static>, console: Option<u64>) {
    RING.call_once(|| ring);
    // Cap id 0 is never valid (`CapId::NULL`), so it can mean "none".
    CONSOLE.store(console.unwrap_or(0), Ordering::Relaxed);
}

/// A fixed-size text buffer that cuts what does not fit.
struct Line {
    buf: [u8; TEXT_MAX],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = TEXT_MAX - 1 - self.len; // keep one byte for the newline
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[panic_handler]
fn on_panic(info: &PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        report(info);
    }
    syscall::exit(i64::from(PANIC_EXIT_CODE))
}

fn report(info: &PanicInfo<'_>) {
    let console = CONSOLE.load(Ordering::Relaxed);
    let Some(&ring) = RING.get() else { return };
    if console == 0 {
        return;
    }
    let mut line = Line {
        buf: [0; TEXT_MAX],
        len: 0,
    };
    let _ = write!(line, "panic: {}", info.message());
    // An allocation failure says what the heap had and why it could not
    // grow (no VirtualMemory capability, the frame quota, ...).
    if line.buf[..line.len].starts_with(b"panic: memory allocation of ") {
        let _ = crate::heap::write_failure(&mut line);
    }
    if let Some(loc) = info.location() {
        let _ = write!(line, " at {}:{}", loc.file(), loc.line());
    }
    line.buf[line.len] = b'\n';
    line.len += 1;

    let mut params = [0u8; TEXT_MAX + wire::DATA_PARAMS_OVERHEAD + 8];
    let n = wire::encode_data_params(&line.buf[..line.len], &mut params);
    let Ok(params_buf) = UserBuf::new(params.as_ptr() as u64, n as u32, MAX_PARAMS_LEN) else {
        return;
    };
    // No result buffer: Console.write has empty results, and an exception
    // could not be reported anyway.
    let sqe = Op::Call(Call {
        cap_id: console,
        method_id: capos_caps::api::console::WRITE,
        params: params_buf,
        result: UserBuf::EMPTY,
        transfers: TransferList::NONE,
    })
    .encode(REPORT_USER_DATA);

    let (Ok(mut sq), Ok(mut cq)) = (SubmissionProducer::new(ring), CompletionConsumer::new(ring))
    else {
        return;
    };
    // Make CQ room first, then submit; if the SQ is full let the kernel
    // drain it once.
    while let Ok(Some(_)) = cq.try_reap() {}
    if sq.try_submit(&sqe).is_err() {
        syscall::cap_enter(0, 0);
        while let Ok(Some(_)) = cq.try_reap() {}
        if sq.try_submit(&sqe).is_err() {
            return;
        }
    }
    for _ in 0..8 {
        if syscall::cap_enter(1, REPORT_TIMEOUT_NS) < 0 {
            return;
        }
        while let Ok(Some(cqe)) = cq.try_reap() {
            if cqe.user_data == REPORT_USER_DATA {
                return;
            }
        }
    }
    // Gave up waiting. `params` is still alive here, and the caller exits
    // without entering the kernel again, so the kernel never reads it after
    // this frame is gone.
}
