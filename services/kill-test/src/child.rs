//! The children: each reaches the state its role names and stays there
//! until it is killed. None of them should ever get past that point; one
//! that does says `FAIL` and exits with code 3.

use crate::QUICK_CODE;
use alloc::format;
use alloc::vec::Vec;
use capos_rt::capnp::message::Builder;
use capos_rt::caps::schema::capos_capnp::timer;
use capos_rt::{
    wire, CallError, ClientEndpoint, Endpoint, Interface, NullCap, Owned, ProcessHandle, Runtime,
    Timer,
};

/// An hour, in ns: a sleep that only a kill ends.
const AN_HOUR_NS: u64 = 3_600_000_000_000;

/// Runs the child whose role the CapSet names.
pub fn run(rt: &Runtime, say: &dyn Fn(&str)) -> i32 {
    let role = |name: &str| rt.cap::<NullCap>(name).is_ok();
    let pid = rt.pid();
    let outcome = if role("role-spin") {
        spin(rt, say)
    } else if role("role-sleep") {
        sleep(rt)
    } else if role("role-serve") {
        serve(rt)
    } else if role("role-early") {
        // Killed right after its spawn, most likely before this runs.
        loop {
            core::hint::spin_loop();
        }
    } else if role("role-quick") {
        return QUICK_CODE;
    } else if role("role-self") {
        kill_self(rt, say)
    } else {
        say(&format!("kill-test: FAIL child pid {pid} has no role"));
        return 2;
    };
    match outcome {
        Ok(what) => say(&format!("kill-test: FAIL child pid {pid} {what}")),
        Err(e) => say(&format!("kill-test: FAIL child pid {pid}: {e}")),
    }
    3
}

/// Tells the parent (a CALL on `roster` it does not wait for), then spins
/// in user mode with no system call, for ever.
fn spin(rt: &Runtime, say: &dyn Fn(&str)) -> Result<&'static str, CallError> {
    let roster = rt
        .cap::<ClientEndpoint>("roster")
        .map_err(|_| CallError::Protocol("no roster"))?;
    say(&format!(
        "kill-test spinner: pid {} spinning in user mode with no system calls",
        rt.pid()
    ));
    let ring = rt.ring();
    let _ready = ring.submit(roster.cap().id(), 0, Vec::new(), 0)?;
    ring.poll()?;
    let mut n: u64 = 0;
    loop {
        n = n.wrapping_add(1);
        core::hint::spin_loop();
        if n == u64::MAX {
            return Ok("spun to the end");
        }
    }
}

/// The parameters of `Timer.sleep(nanos)`.
fn sleep_params(nanos: u64) -> Vec<u8> {
    let mut m = Builder::new_default();
    m.init_root::<timer::sleep_params::Builder>()
        .set_nanos(nanos);
    wire::to_bytes(&m)
}

/// Submits an hour's sleep and then a CALL telling the parent (one
/// `cap_enter`: the sleep is parked before the parent hears of it), and
/// waits for the sleep.
fn sleep(rt: &Runtime) -> Result<&'static str, CallError> {
    let timer = rt
        .cap::<Timer>("timer")
        .map_err(|_| CallError::Protocol("no timer"))?;
    let roster = rt
        .cap::<ClientEndpoint>("roster")
        .map_err(|_| CallError::Protocol("no roster"))?;
    let ring = rt.ring();
    let slept = ring.submit(
        timer.cap().id(),
        capos_rt::caps::api::timer::SLEEP,
        sleep_params(AN_HOUR_NS),
        0,
    )?;
    let _ready = ring.submit(roster.cap().id(), 0, Vec::new(), 0)?;
    ring.wait(slept)?;
    Ok("woke from an hour's sleep")
}

/// Takes the parent's call on its own endpoint and leaves it unanswered;
/// then, in one `cap_enter`, a second RECV and two CALLs on the parent's
/// endpoint (the parent takes one, the other stays queued), and waits for
/// the RECV.
fn serve(rt: &Runtime) -> Result<&'static str, CallError> {
    let own = rt
        .cap::<Endpoint>("own")
        .map_err(|_| CallError::Protocol("no own endpoint"))?;
    let roster = rt
        .cap::<ClientEndpoint>("roster")
        .map_err(|_| CallError::Protocol("no roster"))?;
    let _held = own.recv(64)?;
    let ring = rt.ring();
    let again = own.start_recv(64)?;
    let _holding = ring.submit(roster.cap().id(), 0, Vec::new(), 0)?;
    let _queued = ring.submit(roster.cap().id(), 0, Vec::new(), 0)?;
    ring.wait(again)?;
    Ok("received a second call")
}

/// Receives its own handle from the parent and kills itself through it.
fn kill_self(rt: &Runtime, say: &dyn Fn(&str)) -> Result<&'static str, CallError> {
    let own = rt
        .cap::<Endpoint>("own")
        .map_err(|_| CallError::Protocol("no own endpoint"))?;
    let call = own.recv(64)?;
    let cap = call
        .caps
        .into_iter()
        .next()
        .ok_or(CallError::Protocol("no handle sent"))?;
    let handle = Owned::<ProcessHandle>::adopt_checked(cap)?;
    say(&format!(
        "kill-test self: pid {} kills itself through its own handle (pid {})",
        rt.pid(),
        handle.pid()?
    ));
    handle.kill()?;
    Ok("still runs after killing itself")
}
