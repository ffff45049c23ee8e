//! `Null`: does nothing, so a benchmark can measure a capability call
//! itself; the kernel counters a benchmark reads around its timed loops;
//! and `echoLater`, a call that completes later built only from the shared
//! mechanisms (a deferred completion, a timer entry): the proof that a new
//! object needs nothing from the dispatcher.

use super::{names, serve, Call, KernelObject, Outcome};
use capos_caps::api::null::Server;

/// The measurement-only object.
pub struct Null;

names!(Null, null, "null");

impl KernelObject for Null {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(null, self, cx)
    }
}

impl<'a> Server<Call<'a>> for Null {
    fn ping(&self, _cx: &mut Call<'a>) -> Outcome {
        Outcome::Done(0)
    }

    fn counters(&self, cx: &mut Call<'a>) -> Outcome {
        // Written by hand, not with a message builder (whose segment list
        // is itself a heap allocation): reading the counters must not
        // change them. One segment of three words: the root struct pointer
        // (offset 0, two data words, no pointers), then `heapAllocations`
        // (@0, word 0) and `longestInterruptsOff` (@1, word 1).
        let allocations = crate::mem::heap::allocations();
        let longest = crate::irqoff::longest_any().0;
        let mut message = [0u8; 32];
        message[4..8].copy_from_slice(&3u32.to_le_bytes());
        message[8..16].copy_from_slice(&(2u64 << 32).to_le_bytes());
        message[16..24].copy_from_slice(&allocations.to_le_bytes());
        message[24..32].copy_from_slice(&longest.to_le_bytes());
        if cx.result_buf.len() < 32 {
            return Outcome::Error(capos_ring::TransportError::BufferTooSmall);
        }
        cx.results.clear();
        cx.results.extend_from_slice(&message);
        Outcome::Done(message.len())
    }

    fn echo_later(
        &self,
        cx: &mut Call<'a>,
        p: capos_caps::schema::capos_capnp::null::echo_later_params::Reader<'_>,
    ) -> Outcome {
        let data = super::tri!(super::param(p.get_data()));
        let mut out = capnp::message::Builder::new_default();
        out.init_root::<capos_caps::schema::capos_capnp::null::echo_later_results::Builder>()
            .set_data(data);
        let result = capnp::serialize::write_message_to_words(&out);
        let deadline = super::timer::now().saturating_add(p.get_nanos());
        super::timer::complete_at(cx, deadline, result)
    }
}
