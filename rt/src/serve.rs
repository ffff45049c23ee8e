//! Serving one call with a generated `dispatch`: what every userspace
//! server does with a call its RECV delivered, written once.

use crate::client::{Answer, Endpoint, IncomingCall, ServerCall};
use crate::error::CallError;
use crate::handle::{Cap, CapHandle};
use alloc::vec::Vec;

/// A generated server dispatch: `api::<interface>::dispatch`.
pub type Dispatch<S> = fn(&S, &mut ServerCall, u16, &[u8]) -> Answer;

/// Runs `dispatch` on `call` and answers it on `ep`. Capabilities the call
/// carried that the handler did not take (left in [`ServerCall::caps`]) are
/// released; capabilities of an answer the kernel refuses (the caller is
/// gone, or its table is full) are released too, and the error returned.
/// An [`Answer::Later`] is the handler's to answer.
pub fn serve<S>(
    ep: &Endpoint,
    mut call: IncomingCall,
    server: &S,
    dispatch: Dispatch<S>,
) -> Result<(), CallError> {
    let params = call.aligned_params();
    let mut cx = call.context();
    let answer = dispatch(
        server,
        &mut cx,
        call.method_id,
        &capnp::Word::words_to_bytes(&params)[..call.params.len()],
    );
    for c in core::mem::take(&mut cx.caps) {
        drop(CapHandle::adopt(c));
    }
    let returned: Vec<Cap> = match &answer {
        Answer::Result { caps, .. } => caps.iter().map(|(c, _)| c.clone()).collect(),
        Answer::Exception(_) | Answer::Later => Vec::new(),
    };
    ep.answer(call.call_id, answer).inspect_err(|_| {
        for c in returned {
            drop(CapHandle::adopt(c));
        }
    })
}
