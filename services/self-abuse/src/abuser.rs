//! The abuser role: turns its own capabilities on itself, one case per
//! function, each ending with one line naming every completion it saw.
//!
//! Several cases put many SQEs in one batch and enter the kernel once
//! ([`Ring::poll`]), so the kernel meets the whole sequence inside one
//! drain: that is the shape (an endpoint closed under the drain's own
//! pending operations) that once deadlocked it.

use crate::{error_name, name, result_name, wait_name};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::api::Keeper;
use capos_rt::caps::api::watch::{dispatch, Server, FULL};
use capos_rt::caps::exception::CapException;
use capos_rt::ring::process::{CallHeader, RING_ADDR};
use capos_rt::ring::{
    Call, Op, Recv, Sqe, TransferDescriptor, TransferList, TransferResult, UserBuf,
    CQE_FLAG_TRANSFER_RESULTS, DEFAULT_LAYOUT, MAX_PARAMS_LEN, MAX_RESULT_LEN, RING_MAGIC,
    TRANSFER_MOVE,
};
use capos_rt::{
    capnp, Answer, CallError, Cap, CapHandle, ClientEndpoint, Completion, Endpoint, Interface,
    Owned, Ring, Runtime, ServerCall, Ticket, Timer, VirtualMemory,
};
use core::cell::RefCell;

/// Bytes of the `CallHeader` in front of a delivered call.
const HEADER: usize = capos_rt::ring::process::CALL_HEADER_SIZE;

/// The abuser's capabilities.
struct Caps {
    timer: Timer,
    vm: VirtualMemory,
    keeper: Keeper,
    control: Endpoint,
    sink: Endpoint,
    release: Endpoint,
    moved: Endpoint,
    queued: Endpoint,
    twice: Endpoint,
    itself: Endpoint,
    own: Endpoint,
    other: Endpoint,
}

fn caps(rt: &Runtime) -> Result<Caps, String> {
    let ep = |n: &str| rt.cap::<Endpoint>(n).map_err(|e| format!("{e}"));
    Ok(Caps {
        timer: rt.cap::<Timer>("timer").map_err(|e| format!("{e}"))?,
        vm: rt.cap::<VirtualMemory>("vm").map_err(|e| format!("{e}"))?,
        keeper: rt
            .cap::<ClientEndpoint>("keeper")
            .map_err(|e| format!("{e}"))?
            .protocol(),
        control: ep("control")?,
        sink: ep("sink")?,
        release: ep("release")?,
        moved: ep("moved")?,
        queued: ep("queued")?,
        twice: ep("twice")?,
        itself: ep("itself")?,
        own: ep("own")?,
        other: ep("other")?,
    })
}

/// Runs every case in order; a case that cannot even be set up prints
/// `FAIL` and the next one runs.
pub fn run(rt: &Runtime, say: &dyn Fn(&str)) -> i32 {
    let c = match caps(rt) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("self-abuse: FAIL missing caps: {e}"));
            return 2;
        }
    };
    say(&format!("self-abuse: started (pid {})", rt.pid()));
    let report = |case: &str, r: Result<(), CallError>| {
        if let Err(e) = r {
            say(&format!("self-abuse: FAIL {case}: {e}"));
        }
    };
    report("watching the victim", watch_the_victim(rt, &c, say));
    report(
        "release",
        release_with_own_calls_pending(rt, &c.release, say),
    );
    let moved_facet = move_with_own_calls_pending(rt, &c.moved, &c.keeper, say);
    report("queued", release_with_own_calls_queued(rt, &c, say));
    report("release twice", release_twice(rt, &c.twice, say));
    report("move to itself", move_to_itself(rt, &c.itself, say));
    report(
        "returns",
        return_twice_and_elsewhere(rt, &c.own, &c.other, say),
    );
    report("aliased buffers", aliased_buffers(rt, &c.own, &c.vm, say));
    report("unmapped", unmapped_parameters(rt, &c.own, &c.vm, say));
    report("overlapping", overlapping_copy(rt, &c.own, &c.vm, say));
    report("cross-space", cross_space(rt, &c.keeper, &c.vm, say));
    let quit = c.keeper.quit();
    match moved_facet {
        Ok(facet) => {
            let after = facet.call(0, b"anyone?".to_vec());
            say(&format!(
                "self-abuse: the keeper quit ({}); a CALL on the moved endpoint's facet: {}",
                result_name(&quit),
                result_name(&after)
            ));
        }
        Err(e) => say(&format!("self-abuse: FAIL move: {e}")),
    }
    say("self-abuse: done");
    0
}

/// A raw RELEASE of `cap_id` whose completion the caller waits for.
fn release(ring: &Ring, cap_id: u64) -> Result<Ticket, CallError> {
    ring.submit_raw(Op::Release { cap_id }.encode(0))
}

/// Takes the completions of `tickets` that have arrived (after one
/// `poll`), naming each (`pending` if it has not), and lists them in the
/// order they were posted.
fn after_one_enter(ring: &Ring, tickets: &[(&'static str, Ticket)]) -> (Vec<String>, String) {
    let mut done: Vec<(u64, &str)> = Vec::new();
    let names = tickets
        .iter()
        .map(|(label, t)| match ring.take(*t) {
            Some(c) => {
                done.push((c.seq, label));
                format!("{label} {}", name(&c))
            }
            None => format!("{label} pending"),
        })
        .collect();
    done.sort_unstable();
    let order: Vec<&str> = done.iter().map(|(_, l)| *l).collect();
    (names, order.join(" "))
}

/// A client facet of `ep` whose id this case releases itself (the owned
/// handle is forgotten so that it does not release the id a second time).
fn facet_id(ep: &Endpoint) -> Result<u64, CallError> {
    let facet = ep.client_facet()?;
    let id = facet.cap().id();
    core::mem::forget(facet);
    Ok(id)
}

/// The call id a RECV completion carries, if it delivered one.
fn call_id(c: &Option<Completion>) -> Option<u64> {
    c.as_ref()
        .filter(|c| name(c) == "ok")
        .map(|c| c.cqe.call_id)
}

/// Case 1a: in ONE `cap_enter`, RECV#1, a CALL on its own facet (delivered
/// into RECV#1), RECV#2 (waits), then RELEASE of its own owner cap.
fn release_with_own_calls_pending(
    rt: &Runtime,
    ep: &Endpoint,
    say: &dyn Fn(&str),
) -> Result<(), CallError> {
    let ring = rt.ring();
    let facet = ep.client_facet()?;
    let id = ep.cap().id();
    let recv1 = ring.submit_recv(id, 64)?;
    let call = ring.submit(facet.cap().id(), 0, b"to myself".to_vec(), 64)?;
    let recv2 = ring.submit_recv(id, 64)?;
    let rel = release(ring, id)?;
    let enters = ring.stats().enters;
    ring.poll()?;
    let one_enter = ring.stats().enters == enters + 1;
    let (names, order) = after_one_enter(
        ring,
        &[
            ("RECV#1", recv1),
            ("CALL", call),
            ("RECV#2", recv2),
            ("RELEASE", rel),
        ],
    );
    let later = facet.call(0, b"after the release".to_vec());
    let stale = ring
        .submit_recv(id, 64)
        .map(|t| wait_name(ring, t))
        .unwrap_or("runtime error");
    say(&format!(
        "self-abuse: 1a released its endpoint owner in one cap_enter ({one_enter}) behind its own RECV#1, CALL and RECV#2: {}; CQ order {order}; then a CALL on its facet: {}, a RECV on the released id: {stale}",
        names.join(", "),
        result_name(&later)
    ));
    Ok(())
}

/// Case 1b: the same state as 1a, but the owner is moved to the keeper.
/// Returns the facet, to call once the keeper has quit.
fn move_with_own_calls_pending(
    rt: &Runtime,
    ep: &Endpoint,
    keeper: &Keeper,
    say: &dyn Fn(&str),
) -> Result<Owned<ClientEndpoint>, CallError> {
    let ring = rt.ring();
    let facet = ep.client_facet()?;
    let id = ep.cap().id();
    let recv1 = ring.submit_recv(id, 64)?;
    let call = ring.submit(facet.cap().id(), 0, b"in flight".to_vec(), 64)?;
    let recv2 = ring.submit_recv(id, 64)?;
    ring.poll()?;
    let first = ring.take(recv1);
    let before = format!(
        "RECV#1 {}, CALL {}, RECV#2 {}",
        first.as_ref().map_or("pending", name),
        ring.take(call).map_or("pending", |c| name(&c)),
        ring.take(recv2).map_or("pending", |c| name(&c)),
    );
    let moved = keeper.call_keep(|_| {}, &[(ep.cap(), TRANSFER_MOVE)]);
    let call = wait_name(ring, call);
    let recv2 = wait_name(ring, recv2);
    let ret = match call_id(&first) {
        Some(cid) => ring
            .submit_return(id, cid, b"too late".to_vec(), false, &[])
            .map(|t| wait_name(ring, t))
            .unwrap_or("runtime error"),
        None => "no call id",
    };
    let stale = ring
        .submit_recv(id, 64)
        .map(|t| wait_name(ring, t))
        .unwrap_or("runtime error");
    // Only if nothing of the old holder still waits on the endpoint can the
    // next call reach the keeper (else it would hang in a RECV here).
    let next = if recv2 == "CANCELLED" {
        match facet.call(0, b"after the move".to_vec()) {
            Ok(r) => String::from_utf8(r).unwrap_or_else(|_| "?".into()),
            Err(e) => String::from(error_name(&e)),
        }
    } else {
        String::from("not tried")
    };
    say(&format!(
        "self-abuse: 1b moved its endpoint owner to the keeper ({}) behind its own calls ({before}): the unanswered CALL {call}, RECV#2 {recv2}; its old id: RETURN {ret}, RECV {stale}; its next CALL answered \"{next}\"",
        result_name(&moved)
    ));
    Ok(facet)
}

/// Case 1c: two of its own CALLs queued (one carrying a moved timer), no
/// RECV ever, then RELEASE of the owner, all in one `cap_enter`.
fn release_with_own_calls_queued(
    rt: &Runtime,
    c: &Caps,
    say: &dyn Fn(&str),
) -> Result<(), CallError> {
    let ring = rt.ring();
    let ep = &c.queued;
    let facet = ep.client_facet()?;
    let timer = TransferDescriptor {
        cap_id: c.timer.cap().id(),
        mode: TRANSFER_MOVE,
        reserved0: 0,
    };
    let plain = ring.submit(facet.cap().id(), 0, b"queued".to_vec(), 64)?;
    let carrying = ring.submit_with_transfers(
        facet.cap().id(),
        0,
        b"carrying a timer".to_vec(),
        64,
        &[timer],
    )?;
    let rel = release(ring, ep.cap().id())?;
    ring.poll()?;
    let (names, _) = after_one_enter(
        ring,
        &[
            ("CALL", plain),
            ("CALL with a moved timer", carrying),
            ("RELEASE", rel),
        ],
    );
    let kept = c.timer.now().is_ok();
    let later = facet.call(0, b"after the release".to_vec());
    say(&format!(
        "self-abuse: 1c released its endpoint owner in one cap_enter behind two of its own queued CALLs: {}; the timer is still its own: {kept}; a later CALL: {}",
        names.join(", "),
        result_name(&later)
    ));
    Ok(())
}

/// Releases a facet twice in one batch behind a CALL queued through it,
/// then the owner twice in one batch behind its own RECV.
fn release_twice(rt: &Runtime, ep: &Endpoint, say: &dyn Fn(&str)) -> Result<(), CallError> {
    let ring = rt.ring();
    let fid = facet_id(ep)?;
    let call = ring.submit(fid, 0, b"through a released facet".to_vec(), 64)?;
    let r1 = release(ring, fid)?;
    let r2 = release(ring, fid)?;
    ring.poll()?;
    let (facet, _) = after_one_enter(ring, &[("RELEASE", r1), ("RELEASE", r2)]);
    // The endpoint outlives the facet: the queued call is still served.
    let served = ep
        .recv(64)
        .and_then(|c| ep.reply(c.call_id, b"answered".to_vec()));
    let call = match ring.wait(call).and_then(Completion::into_result) {
        Ok(r) if r == b"answered" && served.is_ok() => "answered",
        Ok(_) => "wrong answer",
        Err(e) => error_name(&e),
    };
    let recv = ring.submit_recv(ep.cap().id(), 64)?;
    let o1 = release(ring, ep.cap().id())?;
    let o2 = release(ring, ep.cap().id())?;
    ring.poll()?;
    let (owner, _) = after_one_enter(ring, &[("RECV", recv), ("RELEASE", o1), ("RELEASE", o2)]);
    say(&format!(
        "self-abuse: 1d released a facet twice in one cap_enter behind its own queued CALL: {}; the CALL was {call}; released the owner twice in one cap_enter behind its own RECV: {}",
        facet.join(", "),
        owner.join(", ")
    ));
    Ok(())
}

/// Moves its endpoint owner to itself, in a CALL on its own facet received
/// by its own RECV, with a second RECV waiting.
fn move_to_itself(rt: &Runtime, ep: &Endpoint, say: &dyn Fn(&str)) -> Result<(), CallError> {
    let ring = rt.ring();
    let fid = facet_id(ep)?;
    let old = ep.cap().id();
    let me = TransferDescriptor {
        cap_id: old,
        mode: TRANSFER_MOVE,
        reserved0: 0,
    };
    // Both RECVs go in before the CALL, so the second is waiting (made
    // through the old id) when the move happens.
    let recv1 = ring.submit_recv(old, 128)?;
    let recv2 = ring.submit_recv(old, 128)?;
    let call = ring.submit_with_transfers(fid, 0, b"moving you to me".to_vec(), 64, &[me])?;
    ring.poll()?;
    let first = ring.take(recv1);
    // The delivered call carries one transfer-result record after the
    // header and parameters: the owner's new id in this same table.
    let record = first.as_ref().and_then(|c| {
        let records = c.cqe.flags & CQE_FLAG_TRANSFER_RESULTS != 0 && c.cqe.xfer_count == 1;
        let at = c.cqe.result.max(0) as usize;
        let bytes: [u8; 16] = c.result.get(at..at + 16)?.try_into().ok()?;
        records.then(|| TransferResult::from_bytes(&bytes))
    });
    let Some(record) = record else {
        say(&format!(
            "self-abuse: FAIL move to itself: RECV#1 {}",
            first.as_ref().map_or("pending", name)
        ));
        return Ok(());
    };
    let new = record.cap_id;
    let is_owner = record.interface_id == Endpoint::INTERFACE_ID && new != old;
    let stale = ring
        .submit_recv(old, 64)
        .map(|t| wait_name(ring, t))
        .unwrap_or("runtime error");
    // The RECV made through the old id before the move still waits: the
    // holder did not change.
    let second = ring.submit(fid, 0, b"second".to_vec(), 64)?;
    let recv2 = ring.wait(recv2);
    let answered = |cid: Option<u64>, payload: &[u8]| match cid {
        Some(cid) => ring
            .submit_return(new, cid, payload.to_vec(), false, &[])
            .map(|t| wait_name(ring, t))
            .unwrap_or("runtime error"),
        None => "no call id",
    };
    let r1 = answered(call_id(&first), b"one");
    let r2 = answered(
        recv2
            .as_ref()
            .ok()
            .filter(|c| name(c) == "ok")
            .map(|c| c.cqe.call_id),
        b"two",
    );
    // Released before the CALLs are waited for: one left unanswered then
    // completes (CANCELLED) instead of waiting for ever.
    let rel = wait_name(ring, release(ring, new)?);
    let got = |t: Ticket, want: &[u8]| match ring.wait(t).and_then(Completion::into_result) {
        Ok(r) if r == want => "ok",
        Ok(_) => "wrong answer",
        Err(e) => error_name(&e),
    };
    let (g1, g2) = (got(call, b"one"), got(second, b"two"));
    let facet = wait_name(ring, release(ring, fid)?);
    say(&format!(
        "self-abuse: 1d moved its endpoint owner to itself through its own endpoint: delivered with a new owner id ({is_owner}); the old id: RECV {stale}; the RECV made before the move took the next CALL: {}; RETURNs through the new id {r1}, {r2}; the CALLs got {g1}, {g2}; RELEASE of the new id {rel}, of the facet {facet}",
        match &recv2 {
            Ok(c) => name(c),
            Err(e) => error_name(e),
        }
    ));
    Ok(())
}

/// RETURN of its call id on another endpoint it owns, then of the same
/// call id twice in one batch.
fn return_twice_and_elsewhere(
    rt: &Runtime,
    a: &Endpoint,
    b: &Endpoint,
    say: &dyn Fn(&str),
) -> Result<(), CallError> {
    let ring = rt.ring();
    let facet = a.client_facet()?;
    let call = ring.submit(facet.cap().id(), 0, b"answer me once".to_vec(), 64)?;
    let incoming = a.recv(64)?;
    let cid = incoming.call_id;
    let elsewhere = wait_name(
        ring,
        ring.submit_return(b.cap().id(), cid, b"wrong endpoint".to_vec(), false, &[])?,
    );
    let r1 = ring.submit_return(a.cap().id(), cid, b"first".to_vec(), false, &[])?;
    let r2 = ring.submit_return(a.cap().id(), cid, b"second".to_vec(), false, &[])?;
    ring.poll()?;
    let (names, _) = after_one_enter(ring, &[("RETURN", r1), ("RETURN", r2)]);
    let got = match ring.wait(call).and_then(Completion::into_result) {
        Ok(r) if r == b"first" => "the first",
        Ok(_) => "another",
        Err(e) => error_name(&e),
    };
    say(&format!(
        "self-abuse: 1d RETURN of its call id on another endpoint it owns: {elsewhere}; the same call id RETURNed twice in one cap_enter: {}; the caller got {got} answer",
        names.join(", ")
    ));
    Ok(())
}

/// A raw CALL of method 0 on `cap_id` with the given buffers.
fn raw_call(cap_id: u64, params: (u64, u32), result: (u64, u32)) -> Result<Sqe, CallError> {
    Ok(Op::Call(Call {
        cap_id,
        method_id: 0,
        params: UserBuf::new(params.0, params.1, MAX_PARAMS_LEN).map_err(CallError::Transport)?,
        result: UserBuf::new(result.0, result.1, MAX_RESULT_LEN).map_err(CallError::Transport)?,
        transfers: TransferList::NONE,
    })
    .encode(0))
}

/// Calls whose buffers alias its own live memory. A CALL whose parameters
/// are its own ring (the SQ slot holding that very CALL, and the CQ the
/// kernel is posting into) received by its own RECV: the kernel reads ring
/// memory as the ordinary user memory it is. And a CALL whose result
/// buffer is its own parameter buffer: the runtime refuses to submit it
/// (the kernel would write memory the program may still use), so that
/// aliasing never reaches the kernel from a service without `unsafe`.
fn aliased_buffers(
    rt: &Runtime,
    ep: &Endpoint,
    vm: &VirtualMemory,
    say: &dyn Fn(&str),
) -> Result<(), CallError> {
    let ring = rt.ring();
    let facet = ep.client_facet()?;
    let bytes = DEFAULT_LAYOUT.ring_bytes();
    let recv = ring.submit_recv(ep.cap().id(), HEADER + bytes as usize)?;
    let call = ring.submit_raw(raw_call(facet.cap().id(), (RING_ADDR, bytes), (0, 0))?)?;
    ring.poll()?;
    let delivered = ring.take(recv);
    let copy = delivered.as_ref().filter(|c| name(c) == "ok").map(|c| {
        let magic = c.result.get(HEADER..HEADER + 4) == Some(&RING_MAGIC.to_le_bytes()[..]);
        (c.result.len() - HEADER, magic)
    });
    let ret = match call_id(&delivered) {
        Some(cid) => wait_name(
            ring,
            ring.submit_return(ep.cap().id(), cid, Vec::new(), false, &[])?,
        ),
        None => "no call id",
    };
    let ring_line = match copy {
        Some((n, magic)) => format!(
            "RECV ok with {n} bytes of its ring (magic intact: {magic}), RETURN {ret}, CALL {}",
            wait_name(ring, call)
        ),
        None => format!(
            "RECV {}, CALL {}",
            delivered.as_ref().map_or("pending", name),
            wait_name(ring, call)
        ),
    };
    let mut buf = vm.map_buffer(4096)?;
    buf.as_mut_slice()[..8].copy_from_slice(b"aliased!");
    let p = (buf.addr(), 8);
    let aliased = ring.submit_raw(raw_call(facet.cap().id(), p, (p.0, 64))?);
    let refused = match aliased {
        Err(CallError::UnsafeBuffer) => "refused by the runtime (UnsafeBuffer)",
        Err(_) => "refused otherwise",
        Ok(_) => "submitted",
    };
    say(&format!(
        "self-abuse: 1d a CALL whose parameters are its own ring ({bytes} bytes), received by its own RECV: {ring_line}; a CALL whose result buffer is its parameter buffer: {refused}"
    ));
    vm.unmap(buf.addr(), 4096)
}

/// A queued CALL whose parameters it unmaps before it receives the call.
fn unmapped_parameters(
    rt: &Runtime,
    ep: &Endpoint,
    vm: &VirtualMemory,
    say: &dyn Fn(&str),
) -> Result<(), CallError> {
    let ring = rt.ring();
    let mut buf = vm.map_buffer(4096)?;
    buf.as_mut_slice()[..16].copy_from_slice(b"soon to be gone!");
    let facet = ep.client_facet()?;
    let first = ring.submit_raw(raw_call(facet.cap().id(), (buf.addr(), 16), (0, 0))?)?;
    let second = ring.submit(facet.cap().id(), 0, b"second".to_vec(), 64)?;
    ring.poll()?;
    vm.unmap(buf.addr(), 4096)?;
    let served = ep.recv(64).and_then(|c| {
        let params = c.params.clone();
        ep.reply(c.call_id, b"ok".to_vec()).map(|()| params)
    });
    let took = match &served {
        Ok(p) if p == b"second" => "its next CALL",
        Ok(_) => "another CALL",
        Err(e) => error_name(e),
    };
    say(&format!(
        "self-abuse: 1d a queued CALL whose parameters it unmapped before receiving it: {}; the same RECV took {took}, which completed {}",
        wait_name(ring, first),
        wait_name(ring, second)
    ));
    Ok(())
}

/// Copies between two spaces that fail on one side, against the keeper
/// (another process, waiting in a RECV): a CALL whose parameters are
/// unmapped fails with BAD_ADDRESS without reaching the keeper (its RECV
/// stays open); a CALL whose result buffer is read-only is answered by the
/// keeper (an unknown method: an exception) and completes with
/// BAD_ADDRESS when the answer cannot be written. The keeper keeps serving:
/// its `quit` is answered later.
fn cross_space(
    rt: &Runtime,
    keeper: &Keeper,
    vm: &VirtualMemory,
    say: &dyn Fn(&str),
) -> Result<(), CallError> {
    let ring = rt.ring();
    let id = keeper.cap().id();
    let gone = vm.map_buffer(4096)?;
    vm.unmap(gone.addr(), 4096)?;
    let unmapped = ring.submit_raw(raw_call(id, (gone.addr(), 16), (0, 0))?)?;
    let unmapped = wait_name(ring, unmapped);
    let buf = vm.map_buffer(4096)?;
    let addr = buf.addr();
    vm.protect(addr, 4096, capos_rt::prot::READ)?;
    let mut sqe = raw_call(id, (0, 0), (addr, 256))?;
    sqe.method_id = 0x7ff0;
    let read_only = ring.submit_raw_into(sqe, buf)?;
    let read_only = match ring.wait_raw(read_only) {
        Ok((c, _)) => name(&c),
        Err(e) => error_name(&e),
    };
    say(&format!(
        "self-abuse: 1e calls on another process: parameters unmapped {unmapped}; result buffer read-only {read_only}"
    ));
    vm.protect(addr, 4096, capos_rt::prot::READ | capos_rt::prot::WRITE)?;
    vm.unmap(addr, 4096)
}

/// A CALL on its own endpoint whose parameters cross a page boundary and
/// overlap the RECV buffer they are delivered into (one anonymous buffer,
/// held by the runtime while the kernel writes it): the destination starts
/// 64 bytes into the parameters (the header then covers some of their
/// bytes), and 64 bytes before them. Both times the delivered parameters
/// must be exactly the bytes the CALL sent, as a `memmove` would leave
/// them.
fn overlapping_copy(
    rt: &Runtime,
    ep: &Endpoint,
    vm: &VirtualMemory,
    say: &dyn Fn(&str),
) -> Result<(), CallError> {
    const SRC: usize = 0xf00;
    const LEN: usize = 0x300;
    const SIZE: u64 = 0x2000;
    let ring = rt.ring();
    let facet = ep.client_facet()?;
    let mut buf = vm.map_buffer(SIZE)?;
    let base = buf.addr();
    let pattern = |i: usize| (i * 7 + 3) as u8;
    let mut outcome = Vec::new();
    for shift in [64isize, -64] {
        for (i, b) in buf.as_mut_slice()[SRC..SRC + LEN].iter_mut().enumerate() {
            *b = pattern(i);
        }
        let dst = SRC.saturating_add_signed(shift);
        let at = dst - HEADER;
        let recv = Op::Recv(Recv {
            cap_id: ep.cap().id(),
            buffer: UserBuf::new(base + at as u64, (HEADER + LEN) as u32, MAX_RESULT_LEN)
                .map_err(CallError::Transport)?,
            caller_session: false,
        })
        .encode(0);
        let recv = ring.submit_raw_into(recv, buf)?;
        // The runtime holds the buffer for the kernel: it may not go.
        let unmap = match vm.unmap(base, SIZE) {
            Err(CallError::InvalidArgument(_)) => "refused",
            Err(_) => "failed otherwise",
            Ok(()) => "done",
        };
        let call = ring.submit_raw(raw_call(
            facet.cap().id(),
            (base + SRC as u64, LEN as u32),
            (0, 0),
        )?)?;
        let (delivered, back) = ring.wait_raw(recv)?;
        buf = back;
        let mem = buf.as_mut_slice();
        let header = CallHeader::from_bytes(&mem[at..dst]);
        let exact = mem[dst..dst + LEN]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == pattern(i));
        let ret = match (name(&delivered), header) {
            ("ok", Some(h)) => wait_name(
                ring,
                ring.submit_return(ep.cap().id(), h.call_id, Vec::new(), false, &[])?,
            ),
            _ => "not sent",
        };
        // Without a RETURN the CALL would wait for good: say so instead.
        let called = if ret == "not sent" {
            "left waiting"
        } else {
            wait_name(ring, call)
        };
        outcome.push(format!(
            "{shift:+}: unmap while lent {unmap}, RECV {}, parameters exact: {exact}, RETURN {ret}, CALL {called}",
            name(&delivered),
        ));
    }
    say(&format!(
        "self-abuse: 1d a CALL across a page boundary delivered into its own parameters shifted by {}",
        outcome.join("; ")
    ));
    vm.unmap(base, SIZE)
}

/// Case 2, the owner's side: the victim hands over its notice facet
/// (`watch`), fills the `sink` and says so (`full`), then faults. Its calls
/// held the sink's whole `QueuedCalls` quota (one more is refused); once
/// it is gone (the call on its notice facet completes `CANCELLED`) the
/// quota must be back.
fn watch_the_victim(rt: &Runtime, c: &Caps, say: &dyn Fn(&str)) -> Result<(), CallError> {
    let ring = rt.ring();
    let control = c.control.cap().id();
    let watcher = Watcher {
        notice: RefCell::new(None),
    };
    let mut call = c.control.recv(256)?;
    let params = call.aligned_params();
    let mut cx = call.context();
    let answer = dispatch(
        &watcher,
        &mut cx,
        call.method_id,
        &capnp::Word::words_to_bytes(&params)[..call.params.len()],
    );
    // The RECV for `full` goes in before the answer to `watch`: once the
    // sink's calls hold this process's whole `QueuedCalls` quota, a call on
    // `control` can only be delivered, never queued.
    let next = ring.submit_recv(control, HEADER + 64)?;
    let (bytes, exception) = match answer {
        Answer::Result { bytes, .. } => (bytes, false),
        Answer::Exception(e) => (e.encode(), true),
        Answer::Later => return Err(CallError::Protocol("the keeper never answers later")),
    };
    ring.wait(ring.submit_return(control, call.call_id, bytes, exception, &[])?)?
        .into_result()?;
    let notice = watcher
        .notice
        .take()
        .ok_or(CallError::Protocol("watch sent no notice facet"))?;
    let full = ring.wait(next)?.into_result()?;
    let header = CallHeader::from_bytes(&full).ok_or(CallError::Protocol("short call header"))?;
    if header.method_id != FULL {
        return Err(CallError::Protocol("the victim's second call is not full"));
    }
    let facet = c.sink.client_facet()?;
    let probe = facet.call(0, b"one more".to_vec());
    ring.wait(ring.submit_return(control, header.call_id, Vec::new(), false, &[])?)?
        .into_result()?;
    let died = wait_name(ring, ring.submit(notice.id(), 0, b"alive?".to_vec(), 64)?);
    drop(CapHandle::adopt(notice));
    let tickets: Vec<Ticket> = (0u64..16)
        .map(|i| ring.submit(facet.cap().id(), 0, i.to_le_bytes().to_vec(), 64))
        .collect::<Result<_, _>>()?;
    ring.poll()?;
    let (mut queued, mut refused) = (0, 0);
    for t in &tickets {
        match ring.take(*t) {
            None => queued += 1,
            Some(c) if name(&c) == "QUOTA" => refused += 1,
            Some(c) => say(&format!(
                "self-abuse: FAIL a call on the sink completed at once: {}",
                name(&c)
            )),
        }
    }
    for _ in 0..queued {
        let call = c.sink.recv(64)?;
        c.sink.reply(call.call_id, call.params)?;
    }
    let answered = tickets
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            ring.wait(**t)
                .and_then(Completion::into_result)
                .is_ok_and(|r| r == (*i as u64).to_le_bytes())
        })
        .count();
    say(&format!(
        "self-abuse: 2 the sink full of the victim's calls: one more {}; the victim gone (its notice call {died}); then 16 calls of its own on the sink: {queued} queued, {refused} refused (QUOTA), {answered} answered in order",
        result_name(&probe)
    ));
    Ok(())
}

/// Serves `watch`: keeps the notice facet the victim sends.
struct Watcher {
    notice: RefCell<Option<Cap>>,
}

impl Server<ServerCall> for Watcher {
    fn watch(&self, cx: &mut ServerCall) -> Answer {
        let mut caps = core::mem::take(&mut cx.caps);
        if caps.len() == 1 && caps[0].interface_id() == ClientEndpoint::INTERFACE_ID {
            *self.notice.borrow_mut() = Some(caps.remove(0));
            return cx.empty();
        }
        for c in caps {
            drop(CapHandle::adopt(c));
        }
        Answer::Exception(CapException::failed("watch takes exactly one client facet"))
    }

    fn full(&self, cx: &mut ServerCall) -> Answer {
        cx.empty()
    }
}
