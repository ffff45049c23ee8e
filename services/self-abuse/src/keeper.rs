//! The keeper role: serves the `Keeper` protocol on its endpoint. `keep`
//! takes the endpoint owner the caller moves with the call; once the answer
//! is out, the keeper serves exactly one call on that endpoint (answering
//! `kept:` and the parameters), proving calls on it now reach the new
//! holder. `quit` releases what it holds before answering, so the caller
//! finds the endpoint closed as soon as it has the answer.

use alloc::format;
use alloc::vec::Vec;
use capos_rt::caps::api::keeper::{dispatch, Server};
use capos_rt::caps::exception::CapException;
use capos_rt::{capnp, Answer, Cap, CapHandle, Endpoint, Interface, Owned, Runtime, ServerCall};
use core::cell::{Cell, RefCell};

/// The keeper's state: the endpoint it was given, whether it still owes
/// that endpoint its one served call, and whether it was asked to quit.
struct Keeper<'a> {
    say: &'a dyn Fn(&str),
    kept: RefCell<Option<Owned<Endpoint>>>,
    serve_one: Cell<bool>,
    quit: Cell<bool>,
}

impl Server<ServerCall> for Keeper<'_> {
    fn keep(&self, cx: &mut ServerCall) -> Answer {
        let mut caps: Vec<Cap> = core::mem::take(&mut cx.caps);
        if caps.len() == 1 && caps[0].interface_id() == Endpoint::INTERFACE_ID {
            (self.say)(&format!(
                "self-abuse keeper: holds the endpoint owner moved to it by pid {}",
                cx.caller_pid
            ));
            *self.kept.borrow_mut() = Some(Owned::adopt(caps.remove(0)));
            self.serve_one.set(true);
            return cx.empty();
        }
        let n = caps.len();
        for c in caps {
            drop(CapHandle::adopt(c));
        }
        (self.say)(&format!(
            "self-abuse keeper: FAIL keep without exactly one endpoint owner ({n} caps)"
        ));
        Answer::Exception(CapException::failed(
            "keep takes exactly one endpoint owner",
        ))
    }

    fn quit(&self, cx: &mut ServerCall) -> Answer {
        // Released before the answer goes out (queued releases are
        // submitted ahead of the RETURN).
        drop(self.kept.borrow_mut().take());
        self.quit.set(true);
        cx.empty()
    }
}

/// Serves the keeper's endpoint until `quit`.
pub fn run(rt: &Runtime, say: &dyn Fn(&str)) -> i32 {
    let Ok(ep) = rt.cap::<Endpoint>("keeper") else {
        return 2;
    };
    let keeper = Keeper {
        say,
        kept: RefCell::new(None),
        serve_one: Cell::new(false),
        quit: Cell::new(false),
    };
    say("self-abuse keeper: ready");
    loop {
        let mut call = match ep.recv(1024) {
            Ok(c) => c,
            Err(e) => {
                say(&format!("self-abuse keeper: FAIL recv: {e}"));
                return 3;
            }
        };
        let params = call.aligned_params();
        let mut cx = call.context();
        let answer = dispatch(
            &keeper,
            &mut cx,
            call.method_id,
            &capnp::Word::words_to_bytes(&params)[..call.params.len()],
        );
        if let Err(e) = ep.answer(call.call_id, answer) {
            say(&format!("self-abuse keeper: FAIL answer: {e}"));
        }
        if keeper.quit.get() {
            say("self-abuse keeper: quit");
            return 0;
        }
        if keeper.serve_one.replace(false) {
            serve_kept(&keeper, say);
        }
    }
}

/// Serves one call on the endpoint it was given.
fn serve_kept(keeper: &Keeper<'_>, say: &dyn Fn(&str)) {
    let kept = keeper.kept.borrow();
    let Some(ep) = kept.as_ref() else { return };
    let served = ep.recv(256).and_then(|call| {
        let mut answer = b"kept:".to_vec();
        answer.extend_from_slice(&call.params);
        ep.reply(call.call_id, answer).map(|()| call.caller_pid)
    });
    match served {
        Ok(pid) => say(&format!(
            "self-abuse keeper: served a call from pid {pid} on the moved endpoint"
        )),
        Err(e) => say(&format!(
            "self-abuse keeper: FAIL serving the moved endpoint: {e}"
        )),
    }
}
