//! Shared-memory consumer: gets the producer's `MemoryObject` as a result
//! capability (refusing it when asked to take it as the wrong type), maps
//! it, reads the producer's message, writes an answer the producer checks
//! through its own mapping, probes the object with bad requests, and shows
//! that a mapping keeps the memory alive after the cap is released.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use capos_rt::api::SharedMemoryDemo;
use capos_rt::{
    prot, CallError, ClientEndpoint, Console, MemoryObject, Runtime, SharedMemory, Timer,
};
use core::sync::atomic::Ordering;

#[path = "../../shm-producer/src/protocol.rs"]
mod protocol;
use protocol::*;

capos_rt::entry!(main);

const ANSWER: &[u8] = b"consumer was here";

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let Ok(shm) = rt.cap::<ClientEndpoint>("shm") else {
        say("shm-consumer: FAIL no shm cap");
        return 2;
    };
    // The protocol promises a MemoryObject: adopting it as anything else
    // is refused (and releases it).
    let demo: SharedMemoryDemo = shm.protocol();
    match demo.call_share(|_| {}, &[]) {
        Ok(mut reply) => match reply.take_cap::<Timer>(0) {
            Err(CallError::Protocol(m)) => {
                say(&format!("shm-consumer: wrong-type adoption refused: {m}"))
            }
            Err(e) => say(&format!("shm-consumer: FAIL wrong-type adoption: {e}")),
            Ok(_) => say("shm-consumer: FAIL adopted a MemoryObject as a Timer"),
        },
        Err(e) => say(&format!("shm-consumer: FAIL share: {e}")),
    }
    let object = match demo.share() {
        Ok(o) => o,
        Err(e) => {
            say(&format!("shm-consumer: FAIL share: {e}"));
            return 3;
        }
    };
    let shared = match object.map_shared() {
        Ok(m) => m,
        Err(e) => {
            say(&format!("shm-consumer: FAIL map: {e}"));
            return 4;
        }
    };
    if shared.len() != PAGES as usize * 4096 {
        say(&format!("shm-consumer: FAIL mapped {} bytes", shared.len()));
    }
    let message = read_message(&shared);
    say(&format!(
        "shm-consumer: read \"{message}\" from the producer's memory ({} bytes mapped at {:#x})",
        shared.len(),
        shared.addr()
    ));
    shared.write(ANSWER_AT, ANSWER);
    shared.word(1).store(MAGIC, Ordering::Release);
    match demo.check() {
        Ok(r) if r.as_bytes() == ANSWER => say("shm-consumer: the producer saw the answer"),
        other => say(&format!("shm-consumer: FAIL check: {other:?}")),
    }
    hostile_requests(&object, &shared, &say);
    let refused = demo.call_refused_returns(|_| {}, &[]).and_then(|r| {
        let note = r.get()?.get_note()?.to_string().unwrap_or_default();
        Ok((note, r.caps_left()))
    });
    match refused {
        Ok((note, 0)) => say(&format!(
            "shm-consumer: after the refused RETURN: \"{note}\", no caps"
        )),
        other => say(&format!("shm-consumer: FAIL refused RETURN: {other:?}")),
    }
    // Release the cap while mapped: the mapping keeps the memory alive.
    drop(object);
    let _ = rt.ring().poll();
    let again = read_message(&shared);
    if again == message {
        say("shm-consumer: memory still readable after releasing the cap");
    } else {
        say(&format!("shm-consumer: FAIL after release: \"{again}\""));
    }
    take_frame_allocator(&demo, &say);
    match demo.done() {
        Ok(_) => 0,
        Err(e) => {
            say(&format!("shm-consumer: FAIL done: {e}"));
            5
        }
    }
}

/// Takes the producer's FrameAllocator (moved on RETURN) and uses it for a
/// physically contiguous page of its own.
fn take_frame_allocator(demo: &SharedMemoryDemo, say: &dyn Fn(&str)) {
    let frames = demo.give_frames();
    let page = frames.and_then(|f| f.allocate(4, true)).and_then(|o| {
        let m = o.map_shared()?;
        m.word(0).store(7, Ordering::Relaxed);
        Ok(m.word(0).load(Ordering::Relaxed))
    });
    match page {
        Ok(7) => say("shm-consumer: the moved frame allocator works here (4 contiguous pages)"),
        other => say(&format!("shm-consumer: FAIL moved allocator: {other:?}")),
    }
}

/// The producer's message, as its length word says.
fn read_message(shared: &SharedMemory) -> alloc::string::String {
    let len = shared.word(0).load(Ordering::Acquire) as usize;
    let mut buf = alloc::vec![0u8; len.min(256)];
    shared.read(MESSAGE_AT, &mut buf);
    alloc::string::String::from_utf8_lossy(&buf).into_owned()
}

/// Requests the object must refuse, each with a readable exception.
fn hostile_requests(object: &MemoryObject, shared: &SharedMemory, say: &dyn Fn(&str)) {
    let cases: [(&str, Result<(), CallError>); 4] = [
        (
            "executable mapping",
            object.map(0, 0, 4096, prot::READ | prot::EXEC).map(|_| ()),
        ),
        (
            "mapping past the end",
            object.map(0, 4096, 8192, prot::READ).map(|_| ()),
        ),
        ("partial unmap", object.unmap(shared.addr(), 4096)),
        (
            "unmap of a foreign address",
            object.unmap(0x1000_0000_0000, 8192),
        ),
    ];
    for (what, r) in cases {
        match r {
            Err(CallError::Exception(e)) => {
                say(&format!("shm-consumer: {what} refused: {}", e.message))
            }
            other => say(&format!("shm-consumer: FAIL {what}: {other:?}")),
        }
    }
}
