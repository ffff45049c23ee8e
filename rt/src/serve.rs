//! Serving one call with a generated `dispatch`: what every userspace
//! server does with a call its RECV delivered, written once.

use crate::caps::exception::CapException;
use crate::client::{Answer, Endpoint, IncomingCall, ServerCall};
use crate::error::CallError;
use crate::handle::{Cap, CapHandle};
use alloc::vec::Vec;

/// Parameter bytes a server's RECV should take: the most an endpoint call
/// carries (16 KiB, the kernel's `MAX_CALL_PARAMS`) with the records of the
/// most capabilities a call can send, so that no call is too large to
/// receive (a RECV that fails leaves the call queued for the next one,
/// which would fail again).
pub const PARAMS_CAPACITY: usize =
    16 * 1024 + crate::ring::MAX_TRANSFERS as usize * crate::ring::TRANSFER_RESULT_SIZE as usize;

/// A generated server dispatch: `api::<interface>::dispatch`.
pub type Dispatch<S> = fn(&S, &mut ServerCall, u16, &[u8]) -> Answer;

/// Runs `dispatch` on `call` and answers it on `ep`. Capabilities the call
/// carried that the handler did not take (left in [`ServerCall::caps`]) are
/// released; capabilities of an answer the kernel refuses (the caller is
/// gone, or its table is full) are released too, the caller is answered an
/// exception saying so instead, and the error returned. An
/// [`Answer::Later`] is the handler's to answer.
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
    answer_call(ep, call.call_id, answer)
}

/// Answers `call_id` on `ep` with `answer` (what a handler, or a server
/// answering later, produced). If the kernel refuses the answer (the caller
/// is gone, or its table is full), the capabilities it would have sent are
/// released, the caller is answered an exception saying so instead, and
/// the error returned.
pub fn answer_call(ep: &Endpoint, call_id: u64, answer: Answer) -> Result<(), CallError> {
    let returned: Vec<Cap> = match &answer {
        Answer::Result { caps, .. } => caps.iter().map(|(c, _)| c.clone()).collect(),
        Answer::Exception(_) | Answer::Later => Vec::new(),
    };
    ep.answer(call_id, answer).inspect_err(|e| {
        for c in returned {
            drop(CapHandle::adopt(c));
        }
        // Nothing moved; a caller still there learns why.
        let refusal = CapException::failed(alloc::format!("the result could not be returned: {e}"));
        let _ = ep.reply_exception(call_id, &refusal);
    })
}
