//! Shared-memory producer: allocates a two-page `MemoryObject`, maps it,
//! writes a message into it and serves `SharedMemoryDemo`
//! (`caps/schema/services.capnp`) on its endpoint through the generated
//! dispatch: it hands the object out as a result capability, checks through
//! its own mapping what the consumer wrote, shows two RETURNs the kernel
//! refuses, and moves its FrameAllocator to the consumer.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::capnp;
use capos_rt::capnp::message::Builder;
use capos_rt::caps::api::shared_memory_demo::{dispatch, Server};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::schema::services_capnp::shared_memory_demo as schema;
use capos_rt::ring::{TransportError, TRANSFER_COPY, TRANSFER_MOVE};
use capos_rt::{
    Answer, CallError, Cap, Console, Endpoint, FrameAllocator, Interface, MemoryObject, Owned,
    Runtime, ServerCall, SharedMemory,
};
use core::cell::Cell;

mod protocol;
use protocol::*;

capos_rt::entry!(main);

/// The producer's message.
const MESSAGE: &[u8] = b"written by the producer";

/// What the producer serves from.
struct Producer<'a> {
    rt: &'a Runtime,
    console: Console,
    ep: Endpoint,
    frames: FrameAllocator,
    object: Owned<MemoryObject>,
    shared: SharedMemory,
    done: Cell<bool>,
}

impl Producer<'_> {
    fn say(&self, s: &str) {
        let _ = self.console.write_line(s);
    }
}

impl Server<ServerCall> for Producer<'_> {
    fn share(&self, cx: &mut ServerCall) -> Answer {
        let mut out = Builder::new_default();
        out.init_root::<schema::share_results::Builder>()
            .set_memory(0);
        cx.result_with_caps(
            &out,
            alloc::vec![(self.object.cap().clone(), TRANSFER_COPY)],
        )
    }

    fn check(&self, cx: &mut ServerCall) -> Answer {
        let flag = self
            .shared
            .word(1)
            .load(core::sync::atomic::Ordering::Acquire);
        let mut answer = [0u8; 32];
        self.shared.read(ANSWER_AT, &mut answer);
        let end = answer.iter().position(|&b| b == 0).unwrap_or(answer.len());
        let text = core::str::from_utf8(&answer[..end]).unwrap_or("?");
        if flag != MAGIC {
            return Answer::Exception(CapException::failed(format!(
                "flag is {flag:#x}, not {MAGIC:#x}"
            )));
        }
        self.say(&format!(
            "shm-producer: sees the consumer's write \"{text}\" in its own mapping"
        ));
        let mut out = Builder::new_default();
        out.init_root::<schema::check_results::Builder>()
            .set_answer(text);
        cx.result(&out)
    }

    fn refused_returns(&self, cx: &mut ServerCall) -> Answer {
        let (ep, rt) = (&self.ep, self.rt);
        // A cap id this process never held: the RETURN must fail with
        // BAD_CAP and leave the call open for a real answer.
        let bogus = Cap::new(
            0x7f_0000,
            self.object.cap().interface_id(),
            rt.ring().clone(),
        );
        match ep.reply_with_caps(cx.call_id, Vec::new(), &[(&bogus, TRANSFER_COPY)]) {
            Err(CallError::Transport(TransportError::BadCap)) => {
                self.say("shm-producer: RETURN with a cap it does not hold refused (BAD_CAP)")
            }
            other => self.say(&format!("shm-producer: FAIL bad RETURN: {other:?}")),
        }
        // Capabilities travel only with results, not exceptions.
        let with_exception = rt
            .ring()
            .submit_return(
                ep.cap().id(),
                cx.call_id,
                CapException::failed("x").encode(),
                true,
                &[capos_rt::ring::TransferDescriptor {
                    cap_id: self.object.cap().id(),
                    mode: TRANSFER_COPY,
                    reserved0: 0,
                }],
            )
            .and_then(|t| rt.ring().wait(t))
            .and_then(|c| c.into_result());
        match with_exception {
            Err(CallError::Transport(TransportError::InvalidTransfer)) => self
                .say("shm-producer: RETURN of an exception with a cap refused (INVALID_TRANSFER)"),
            other => self.say(&format!("shm-producer: FAIL exception RETURN: {other:?}")),
        }
        let mut out = Builder::new_default();
        out.init_root::<schema::refused_returns_results::Builder>()
            .set_note("answered after the refusal");
        cx.result(&out)
    }

    fn done(&self, cx: &mut ServerCall) -> Answer {
        self.done.set(true);
        cx.empty()
    }

    fn give_frames(&self, cx: &mut ServerCall) -> Answer {
        let mut out = Builder::new_default();
        out.init_root::<schema::give_frames_results::Builder>()
            .set_frames(0);
        cx.result_with_caps(
            &out,
            alloc::vec![(self.frames.cap().clone(), TRANSFER_MOVE)],
        )
    }
}

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
    let producer = Producer {
        rt,
        console: console.clone(),
        ep: ep.clone(),
        frames,
        object,
        shared,
        done: Cell::new(false),
    };
    loop {
        let mut call = match ep.recv(256) {
            Ok(c) => c,
            Err(e) => {
                say(&format!("shm-producer: FAIL recv: {e}"));
                return 5;
            }
        };
        let params = call.aligned_params();
        let mut cx = call.context();
        let answer = dispatch(
            &producer,
            &mut cx,
            call.method_id,
            &capnp::Word::words_to_bytes(&params)[..call.params.len()],
        );
        let moved_frames = call.method_id == capos_rt::caps::api::shared_memory_demo::GIVE_FRAMES;
        let answered = ep.answer(call.call_id, answer);
        if let Err(e) = &answered {
            say(&format!("shm-producer: FAIL reply: {e}"));
        }
        if moved_frames && answered.is_ok() {
            match producer.frames.allocate(1, false) {
                Err(CallError::Transport(TransportError::BadCap)) => say(
                    "shm-producer: moved its frame allocator to the consumer; its own id is now BAD_CAP",
                ),
                other => say(&format!(
                    "shm-producer: FAIL frame allocator still usable after a move: {}",
                    other.is_ok()
                )),
            }
        }
        if producer.done.get() {
            let unmapped = producer
                .object
                .unmap(producer.shared.addr(), producer.shared.len() as u64);
            say(&format!("shm-producer: done (unmap: {unmapped:?})"));
            return if answered.is_ok() && unmapped.is_ok() {
                0
            } else {
                6
            };
        }
    }
}
