//! Shared-memory producer: allocates a two-page `MemoryObject`, maps it,
//! writes a message into it and serves the protocol in `protocol.rs` on its
//! endpoint: it hands the object out as a result capability, checks through
//! its own mapping what the consumer wrote, shows two RETURNs the kernel
//! refuses, and moves its FrameAllocator to the consumer.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::caps::exception::CapException;
use capos_rt::ring::TRANSFER_MOVE;
use capos_rt::ring::{TransportError, TRANSFER_COPY};
use capos_rt::{CallError, Cap, Console, Endpoint, FrameAllocator, Interface, Runtime};

mod protocol;
use protocol::*;

capos_rt::entry!(main);

/// The producer's message.
const MESSAGE: &[u8] = b"written by the producer";

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let (Ok(frames), Ok(ep)) = (
        rt.cap::<FrameAllocator>("frames"),
        rt.cap::<Endpoint>("endpoint"),
    ) else {
        say("shm-producer: FAIL missing caps");
        return 2;
    };
    let object = match frames.allocate(PAGES, false) {
        Ok(o) => o,
        Err(e) => {
            say(&format!("shm-producer: FAIL allocate: {e}"));
            return 3;
        }
    };
    let shared = match object.map_shared() {
        Ok(m) => m,
        Err(e) => {
            say(&format!("shm-producer: FAIL map: {e}"));
            return 4;
        }
    };
    shared.write(MESSAGE_AT, MESSAGE);
    shared
        .word(0)
        .store(MESSAGE.len() as u64, core::sync::atomic::Ordering::Release);
    say(&format!(
        "shm-producer: wrote {} bytes at {:#x}",
        MESSAGE.len(),
        shared.addr()
    ));
    loop {
        let call = match ep.recv(256) {
            Ok(c) => c,
            Err(e) => {
                say(&format!("shm-producer: FAIL recv: {e}"));
                return 5;
            }
        };
        let answered = match call.method_id {
            SHARE => ep.reply_with_caps(call.call_id, Vec::new(), &[(object.cap(), TRANSFER_COPY)]),
            CHECK => {
                let flag = shared.word(1).load(core::sync::atomic::Ordering::Acquire);
                let mut answer = [0u8; 32];
                shared.read(ANSWER_AT, &mut answer);
                let end = answer.iter().position(|&b| b == 0).unwrap_or(answer.len());
                let text = core::str::from_utf8(&answer[..end]).unwrap_or("?");
                if flag == MAGIC {
                    say(&format!(
                        "shm-producer: sees the consumer's write \"{text}\" in its own mapping"
                    ));
                    ep.reply(call.call_id, text.as_bytes().to_vec())
                } else {
                    ep.reply_exception(
                        call.call_id,
                        &CapException::failed(format!("flag is {flag:#x}, not {MAGIC:#x}")),
                    )
                }
            }
            REFUSED_RETURNS => {
                // A cap id this process never held: the RETURN must fail
                // with BAD_CAP and leave the call open for a real answer.
                let bogus = Cap::new(0x7f_0000, object.cap().interface_id(), rt.ring().clone());
                match ep.reply_with_caps(call.call_id, Vec::new(), &[(&bogus, TRANSFER_COPY)]) {
                    Err(CallError::Transport(TransportError::BadCap)) => {
                        say("shm-producer: RETURN with a cap it does not hold refused (BAD_CAP)")
                    }
                    other => say(&format!("shm-producer: FAIL bad RETURN: {other:?}")),
                }
                // Capabilities travel only with results, not exceptions.
                let with_exception = rt
                    .ring()
                    .submit_return(
                        ep.cap().id(),
                        call.call_id,
                        CapException::failed("x").encode(),
                        true,
                        &[capos_rt::ring::TransferDescriptor {
                            cap_id: object.cap().id(),
                            mode: TRANSFER_COPY,
                            reserved0: 0,
                        }],
                    )
                    .and_then(|t| rt.ring().wait(t))
                    .and_then(|c| c.into_result());
                match with_exception {
                    Err(CallError::Transport(TransportError::InvalidTransfer)) => {
                        say("shm-producer: RETURN of an exception with a cap refused (INVALID_TRANSFER)")
                    }
                    other => say(&format!("shm-producer: FAIL exception RETURN: {other:?}")),
                }
                ep.reply(call.call_id, b"answered after the refusal".to_vec())
            }
            GIVE_FRAMES => {
                let r =
                    ep.reply_with_caps(call.call_id, Vec::new(), &[(frames.cap(), TRANSFER_MOVE)]);
                if r.is_ok() {
                    match frames.allocate(1, false) {
                        Err(CallError::Transport(TransportError::BadCap)) => say(
                            "shm-producer: moved its frame allocator to the consumer; its own id is now BAD_CAP",
                        ),
                        other => say(&format!(
                            "shm-producer: FAIL frame allocator still usable after a move: {}",
                            other.is_ok()
                        )),
                    }
                }
                r
            }
            DONE => {
                let r = ep.reply(call.call_id, Vec::new());
                let unmapped = object.unmap(shared.addr(), shared.len() as u64);
                say(&format!("shm-producer: done (unmap: {unmapped:?})"));
                return if r.is_ok() && unmapped.is_ok() { 0 } else { 6 };
            }
            m => ep.reply_exception(
                call.call_id,
                &CapException::failed(format!("no method {m}")),
            ),
        };
        if let Err(e) = answered {
            say(&format!("shm-producer: FAIL reply: {e}"));
        }
    }
}
