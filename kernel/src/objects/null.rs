//! `Null`: does nothing, so a benchmark can measure a capability call
//! itself; and the kernel counters a benchmark reads around its timed loops.

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
        // Built in scratch space on the stack: reading the counters must not
        // itself allocate on the heap it counts.
        let mut space = [capnp::word(0, 0, 0, 0, 0, 0, 0, 0); 8];
        let mut out = capnp::message::Builder::new(capnp::message::ScratchSpaceHeapAllocator::new(
            capnp::Word::words_to_bytes_mut(&mut space),
        ));
        let mut r =
            out.init_root::<capos_caps::schema::capos_capnp::null::counters_results::Builder>();
        r.set_heap_allocations(crate::mem::heap::allocations());
        r.set_longest_interrupts_off(crate::irqoff::longest_any().0);
        cx.reply(&out)
    }
}
