//! Quickcheck properties of the capability ring: SQE validation and the queue protocol.
//!
//! - Arbitrary SQE bytes never panic the validator, and anything it accepts
//!   re-encodes to exactly the same bytes (no bit is ignored).
//! - Arbitrary interleavings of submit / drain / deferred post / reap on an
//!   honest ring keep FIFO order and complete every submission exactly once,
//!   and the drain stops for a full CQ only when it really is full.
//! - Arbitrary corrupted index values never make the kernel side read out of
//!   bounds, do more than one queue's worth of work per drain, lose a
//!   reserved completion, or write anything but its own counters; once the
//!   indices are repaired the ring works again.

use std::cell::Cell;
use std::collections::VecDeque;

use capos_ring::entry::{CQE_WORDS, SQE_WORDS};
use capos_ring::{
    CompletionConsumer, CompletionPoster, CqCredit, Cqe, CqeStatus, DrainStop, Op, OwnedRing,
    RingIndex, RingMemory, Sqe, SubmissionDrain, SubmissionProducer, SubmitError, TransportError,
};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use std::sync::atomic::Ordering::Relaxed;

const TESTS: u64 = 400;

// ---------------------------------------------------------------------------
// SQE validation
// ---------------------------------------------------------------------------

/// SQE words biased towards the values validation cares about: defined
/// opcodes, zero fields, small lengths, aligned user addresses; with a share
/// of fully random words.
#[derive(Clone, Debug)]
struct SqeWords([u64; SQE_WORDS]);

fn pick<T: Copy>(g: &mut Gen, items: &[T]) -> T {
    *g.choose(items).unwrap()
}

fn biased_u64(g: &mut Gen) -> u64 {
    match u8::arbitrary(g) % 6 {
        0..=2 => 0,
        3 => u64::from(u16::arbitrary(g)) * 8,
        4 => pick(
            g,
            &[
                1,
                0x1000,
                0x0000_7FFF_FFFF_F000,
                0x0000_8000_0000_0000,
                u64::MAX,
            ],
        ),
        _ => u64::arbitrary(g),
    }
}

fn biased_u32(g: &mut Gen) -> u32 {
    match u8::arbitrary(g) % 5 {
        0..=2 => 0,
        3 => pick(g, &[1, 16, 64 * 1024, 64 * 1024 + 1, u32::MAX]),
        _ => u32::arbitrary(g),
    }
}

impl Arbitrary for SqeWords {
    fn arbitrary(g: &mut Gen) -> Self {
        if u8::arbitrary(g) % 8 == 0 {
            return SqeWords(std::array::from_fn(|_| u64::arbitrary(g)));
        }
        let small = |g: &mut Gen, n: u8| {
            if bool::arbitrary(g) {
                0
            } else {
                u8::arbitrary(g) % n
            }
        };
        let sqe = Sqe {
            opcode: if u8::arbitrary(g) % 8 == 0 {
                u8::arbitrary(g)
            } else {
                1 + u8::arbitrary(g) % 5
            },
            flags: if u8::arbitrary(g) % 4 == 0 {
                u8::arbitrary(g)
            } else {
                small(g, 2)
            },
            method_id: small(g, 4).into(),
            xfer_count: if u8::arbitrary(g) % 4 == 0 {
                u16::arbitrary(g)
            } else {
                small(g, 3).into()
            },
            reserved0: if u8::arbitrary(g) % 8 == 0 { 1 } else { 0 },
            cap_id: biased_u64(g),
            user_data: u64::arbitrary(g),
            params_addr: biased_u64(g),
            result_addr: biased_u64(g),
            params_len: biased_u32(g),
            result_len: biased_u32(g),
            xfer_addr: biased_u64(g),
            call_id: biased_u64(g),
        };
        SqeWords(sqe.to_words())
    }
}

const VALIDATION_ERRORS: [TransportError; 7] = [
    TransportError::InvalidOpcode,
    TransportError::InvalidFlags,
    TransportError::ReservedNonZero,
    TransportError::BadLength,
    TransportError::BadAddress,
    TransportError::InvalidTransfer,
    TransportError::BadCallId,
];

fn validator_is_total_and_canonical(words: SqeWords) -> bool {
    let sqe = Sqe::from_words(&words.0);
    assert_eq!(sqe.to_words(), words.0);
    assert_eq!(Sqe::from_bytes(&sqe.to_bytes()), sqe);
    match sqe.validate() {
        Ok(op) => op.encode(sqe.user_data) == sqe,
        Err(e) => VALIDATION_ERRORS.contains(&e),
    }
}

#[test]
fn prop_validator_total_and_canonical() {
    QuickCheck::new()
        .tests(5000)
        .quickcheck(validator_is_total_and_canonical as fn(SqeWords) -> bool);
}

/// The short paths of `validate_words` (NOP, RECV, CALL and RETURN without
/// flags or transfers) decide
/// exactly as the full validator, on the same biased inputs; and they are
/// taken often enough that this compares something.
#[test]
fn prop_validate_words_matches_validate() {
    let mut g = Gen::new(64);
    let mut short = 0;
    for i in 0..20_000 {
        let SqeWords(mut w) = SqeWords::arbitrary(&mut g);
        // Every other entry a NOP or CALL with its unused fields mostly
        // clear, where the short paths apply (or narrowly do not).
        if i % 2 == 0 {
            let op = pick(&mut g, &[1u64, 2, 3, 5]);
            w[0] = (w[0] & !0xff) | op;
            for (word, keep) in [(6, 8u8), (7, 8)] {
                if u8::arbitrary(&mut g) % keep != 0 {
                    w[word] = 0;
                }
            }
            if u8::arbitrary(&mut g) % 4 != 0 {
                w[0] &= 0xffff_ffff;
            }
            if op == 5 && u8::arbitrary(&mut g) % 4 != 0 {
                w = [5, 0, w[2], 0, 0, 0, 0, 0];
            }
        }
        let full = Sqe::from_words(&w).validate();
        assert_eq!(Sqe::validate_words(&w), full, "{w:x?}");
        short += usize::from(matches!(
            full,
            Ok(Op::Nop) | Ok(Op::Call(_)) | Ok(Op::Recv(_)) | Ok(Op::Return(_))
        ));
    }
    assert!(short > 1000, "only {short} NOPs and CALLs validated");
}

/// The generator above reaches every outcome of validation, so the property
/// is not vacuously passing on one class of input.
#[test]
fn sqe_generator_reaches_every_outcome() {
    let mut g = Gen::new(64);
    let mut ok = [false; 5];
    let mut errs = [false; VALIDATION_ERRORS.len()];
    for _ in 0..20_000 {
        let sqe = Sqe::from_words(&SqeWords::arbitrary(&mut g).0);
        match sqe.validate() {
            Ok(op) => ok[op.opcode() as usize - 1] = true,
            Err(e) => errs[VALIDATION_ERRORS.iter().position(|x| *x == e).unwrap()] = true,
        }
    }
    assert_eq!(ok, [true; 5], "valid opcodes reached");
    assert_eq!(errs, [true; VALIDATION_ERRORS.len()], "errors reached");
}

// ---------------------------------------------------------------------------
// Queue protocol
// ---------------------------------------------------------------------------

/// Ring memory that checks every slot index it is given is already reduced
/// modulo the queue size, and counts SQ slot reads.
struct Checked<'a, const SQ: usize, const CQ: usize> {
    ring: &'a OwnedRing<SQ, CQ>,
    sq_loads: Cell<u32>,
}

impl<'a, const SQ: usize, const CQ: usize> Checked<'a, SQ, CQ> {
    fn new(ring: &'a OwnedRing<SQ, CQ>) -> Self {
        Checked {
            ring,
            sq_loads: Cell::new(0),
        }
    }

    fn word(&self, which: RingIndex) -> u32 {
        self.ring.load_index(which, Relaxed)
    }

    fn set(&self, which: RingIndex, value: u32) {
        self.ring.store_index(which, value, Relaxed)
    }
}

impl<const SQ: usize, const CQ: usize> RingMemory for Checked<'_, SQ, CQ> {
    fn sq_entries(&self) -> u32 {
        SQ as u32
    }
    fn cq_entries(&self) -> u32 {
        CQ as u32
    }
    fn load_index(&self, which: RingIndex, order: std::sync::atomic::Ordering) -> u32 {
        self.ring.load_index(which, order)
    }
    fn store_index(&self, which: RingIndex, value: u32, order: std::sync::atomic::Ordering) {
        self.ring.store_index(which, value, order)
    }
    fn load_sqe(&self, slot: u32) -> [u64; SQE_WORDS] {
        assert!((slot as usize) < SQ, "SQ slot {slot} out of bounds");
        self.sq_loads.set(self.sq_loads.get() + 1);
        self.ring.load_sqe(slot)
    }
    fn store_sqe(&self, slot: u32, words: &[u64; SQE_WORDS]) {
        assert!((slot as usize) < SQ, "SQ slot {slot} out of bounds");
        self.ring.store_sqe(slot, words)
    }
    fn load_cqe(&self, slot: u32) -> [u64; CQE_WORDS] {
        assert!((slot as usize) < CQ, "CQ slot {slot} out of bounds");
        self.ring.load_cqe(slot)
    }
    fn store_cqe(&self, slot: u32, words: &[u64; CQE_WORDS]) {
        assert!((slot as usize) < CQ, "CQ slot {slot} out of bounds");
        self.ring.store_cqe(slot, words)
    }
}

/// One step of a scenario.
#[derive(Clone, Debug)]
enum Step {
    /// Userspace submits up to n entries.
    Submit(u8),
    /// The kernel drains at most `max` entries; bit i of `defer` set means the
    /// i-th popped entry completes later (like a RECV waiting for a caller).
    Drain { max: u8, defer: u8 },
    /// The kernel completes the deferred entry at this index (mod count).
    Complete(u8),
    /// Userspace reaps up to n completions.
    Reap(u8),
    /// Userspace scribbles `value` over an index word (hostile scenarios only).
    Corrupt { which: u8, value: Corruption },
}

/// How a corrupted index value is chosen.
#[derive(Clone, Copy, Debug)]
enum Corruption {
    /// Any value at all.
    Any(u32),
    /// The current value plus a small signed delta.
    Nudge(i8),
    /// The boundary the kernel checks this word against, plus a small signed
    /// delta: the off-by-one cases.
    Edge(i8),
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 9 {
            0..=1 => Step::Submit(1 + u8::arbitrary(g) % 6),
            2..=3 => Step::Drain {
                max: u8::arbitrary(g) % 10,
                defer: u8::arbitrary(g),
            },
            4 => Step::Complete(u8::arbitrary(g)),
            5..=6 => Step::Reap(1 + u8::arbitrary(g) % 6),
            _ => Step::Corrupt {
                which: u8::arbitrary(g) % 4,
                value: match u8::arbitrary(g) % 3 {
                    0 => Corruption::Any(u32::arbitrary(g)),
                    1 => Corruption::Nudge(i8::arbitrary(g) % 12),
                    _ => Corruption::Edge(i8::arbitrary(g) % 4),
                },
            },
        }
    }
}

/// A scenario: where the indices start (to cross the u32 wrap point) and the
/// steps to run.
#[derive(Clone, Debug)]
struct Scenario {
    start: u32,
    steps: Vec<Step>,
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Self {
        let start = match u8::arbitrary(g) % 3 {
            0 => 0,
            1 => u32::MAX - u32::from(u8::arbitrary(g) % 16),
            _ => u32::arbitrary(g),
        };
        let len = usize::arbitrary(g) % 80;
        Scenario {
            start,
            steps: (0..len).map(|_| Step::arbitrary(g)).collect(),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let start = self.start;
        Box::new(
            self.steps
                .shrink()
                .map(move |steps| Scenario { start, steps }),
        )
    }
}

/// Every third submission is malformed; the rest are NOPs.
fn submission(user_data: u64) -> Sqe {
    if user_data.is_multiple_of(3) {
        Sqe {
            opcode: 0xC0,
            user_data,
            ..Sqe::default()
        }
    } else {
        Op::Nop.encode(user_data)
    }
}

fn expected_status(user_data: u64) -> CqeStatus {
    if user_data.is_multiple_of(3) {
        CqeStatus::Err(TransportError::InvalidOpcode)
    } else {
        CqeStatus::Ok(user_data as u32 & 0xFFFF)
    }
}

type Deferred = (u64, Result<Op, TransportError>, CqCredit);

/// Posts the completion for a consumed submission and checks that the only
/// index word the post wrote is the kernel's own CQ tail.
fn complete<const SQ: usize, const CQ: usize>(
    mem: &Checked<'_, SQ, CQ>,
    post: &mut CompletionPoster<&Checked<'_, SQ, CQ>>,
    (user_data, op, credit): Deferred,
) {
    match op {
        Ok(Op::Nop) => post.post(credit, &Cqe::success(user_data, user_data as u32 & 0xFFFF)),
        Ok(other) => panic!("unexpected op {other:?}"),
        Err(e) => post.post_error(credit, user_data, e),
    }
    assert_eq!(mem.word(RingIndex::CqTail), post.tail());
}

/// Reference model of an honest ring: what each queue should hold.
#[derive(Default)]
struct Model {
    next_ud: u64,
    in_sq: VecDeque<u64>,
    deferred: Vec<Deferred>,
    in_cq: VecDeque<u64>,
    reaped: Vec<u64>,
}

struct Honest<'m, const SQ: usize, const CQ: usize> {
    mem: &'m Checked<'m, SQ, CQ>,
    sq: SubmissionProducer<&'m Checked<'m, SQ, CQ>>,
    cq: CompletionConsumer<&'m Checked<'m, SQ, CQ>>,
    drain: SubmissionDrain<&'m Checked<'m, SQ, CQ>>,
    post: CompletionPoster<&'m Checked<'m, SQ, CQ>>,
    model: Model,
}

impl<const SQ: usize, const CQ: usize> Honest<'_, SQ, CQ> {
    fn submit(&mut self, n: u8) {
        for _ in 0..n {
            let full = self.model.in_sq.len() == SQ;
            match self.sq.try_submit(&submission(self.model.next_ud)) {
                Ok(()) => {
                    assert!(!full, "submitted into a full SQ");
                    self.model.in_sq.push_back(self.model.next_ud);
                    self.model.next_ud += 1;
                }
                Err(e) => {
                    assert!(full, "SQ refused with room");
                    assert_eq!(e, SubmitError::Full);
                }
            }
        }
    }

    fn drain(&mut self, max: u32, defer: u8) {
        let m = &mut self.model;
        self.mem.sq_loads.set(0);
        let head = self.drain.head();
        let mut batch = self.drain.begin().expect("honest ring reported corruption");
        assert_eq!(batch.remaining() as usize, m.in_sq.len());
        let mut popped = 0;
        while popped < max {
            match batch.pop(&mut self.post) {
                Ok(s) => {
                    assert_eq!(Some(s.user_data), m.in_sq.pop_front(), "SQ not FIFO");
                    popped += 1;
                    if defer & (1 << (popped % 8)) != 0 {
                        m.deferred.push((s.user_data, s.op, s.credit));
                    } else {
                        m.in_cq.push_back(s.user_data);
                        complete(self.mem, &mut self.post, (s.user_data, s.op, s.credit));
                    }
                }
                Err(DrainStop::Done) => {
                    assert!(m.in_sq.is_empty());
                    break;
                }
                Err(DrainStop::CqFull) => {
                    assert_eq!(m.in_cq.len() + m.deferred.len(), CQ, "CqFull with room");
                    break;
                }
                Err(stop) => panic!("honest ring stopped with {stop:?}"),
            }
        }
        assert!(popped as usize <= SQ);
        drop(batch);
        // sq_head moves once, when the batch ends.
        assert_eq!(self.mem.word(RingIndex::SqHead), head.wrapping_add(popped));
        assert_eq!(
            self.mem.sq_loads.get(),
            popped,
            "SQ slots read but not consumed"
        );
    }

    fn complete_deferred(&mut self, i: usize) {
        if !self.model.deferred.is_empty() {
            let d = self.model.deferred.remove(i % self.model.deferred.len());
            self.model.in_cq.push_back(d.0);
            complete(self.mem, &mut self.post, d);
        }
    }

    fn reap(&mut self, n: u32) {
        for _ in 0..n {
            match self.cq.try_reap().expect("honest ring reported corruption") {
                Some(c) => {
                    assert_eq!(
                        Some(c.user_data),
                        self.model.in_cq.pop_front(),
                        "CQ not FIFO"
                    );
                    assert_eq!(c.status(), expected_status(c.user_data));
                    self.model.reaped.push(c.user_data);
                }
                None => {
                    assert!(self.model.in_cq.is_empty(), "completion not visible");
                    break;
                }
            }
        }
    }
}

/// Honest interleavings against a reference model of both queues.
fn honest<const SQ: usize, const CQ: usize>(scenario: Scenario) -> bool {
    let ring = OwnedRing::<SQ, CQ>::new();
    let mem = Checked::new(&ring);
    for which in RingIndex::ALL {
        mem.set(which, scenario.start);
    }
    let mut h = Honest {
        mem: &mem,
        sq: SubmissionProducer::new(&mem).unwrap(),
        cq: CompletionConsumer::new(&mem).unwrap(),
        drain: SubmissionDrain::starting_at(&mem, scenario.start).unwrap(),
        post: CompletionPoster::starting_at(&mem, scenario.start).unwrap(),
        model: Model::default(),
    };
    for step in scenario.steps {
        match step {
            Step::Submit(n) => h.submit(n),
            Step::Drain { max, defer } => h.drain(max.into(), defer),
            Step::Complete(i) => h.complete_deferred(i.into()),
            Step::Reap(n) => h.reap(n.into()),
            Step::Corrupt { .. } => {}
        }
        assert_eq!(h.post.reserved() as usize, h.model.deferred.len());
        assert!(h.model.in_cq.len() + h.model.deferred.len() <= CQ);
    }

    // Flush: everything submitted completes exactly once.
    let mut rounds = 0;
    while !(h.model.in_sq.is_empty() && h.model.deferred.is_empty() && h.model.in_cq.is_empty()) {
        rounds += 1;
        assert!(rounds <= 2 * (SQ + CQ) + 2, "ring did not make progress");
        while !h.model.deferred.is_empty() {
            h.complete_deferred(0);
        }
        h.reap(u32::MAX);
        h.drain(u32::MAX, 0);
    }
    let mut reaped = h.model.reaped;
    reaped.sort_unstable();
    reaped == (0..h.model.next_ud).collect::<Vec<_>>()
}

#[test]
fn prop_honest_interleavings() {
    let mut qc = QuickCheck::new().tests(TESTS);
    qc.quickcheck(honest::<4, 4> as fn(Scenario) -> bool);
    qc.quickcheck(honest::<4, 2> as fn(Scenario) -> bool);
    qc.quickcheck(honest::<2, 8> as fn(Scenario) -> bool);
    qc.quickcheck(honest::<1, 1> as fn(Scenario) -> bool);
}

/// Hostile interleavings: userspace scribbles on every index word between
/// steps. The kernel side must stay in bounds, bounded and accountable.
fn hostile<const SQ: usize, const CQ: usize>(scenario: Scenario) -> bool {
    let ring = OwnedRing::<SQ, CQ>::new();
    let mem = Checked::new(&ring);
    for which in RingIndex::ALL {
        mem.set(which, scenario.start);
    }
    let mut drain = SubmissionDrain::starting_at(&mem, scenario.start).unwrap();
    let mut post = CompletionPoster::starting_at(&mem, scenario.start).unwrap();
    let mut deferred: Vec<Deferred> = Vec::new();
    let mut credits_issued = 0u64;
    let mut posted = 0u64;
    let mut next_ud = 0u64;

    for step in scenario.steps {
        match step {
            Step::Submit(n) => {
                // Userspace fills slots and bumps sq_tail, up to what it
                // believes is free; its hostility comes from `Corrupt`.
                for _ in 0..n {
                    let tail = mem.word(RingIndex::SqTail);
                    if tail.wrapping_sub(mem.word(RingIndex::SqHead)) >= SQ as u32 {
                        break;
                    }
                    mem.store_sqe(tail & (SQ as u32 - 1), &submission(next_ud).to_words());
                    mem.set(RingIndex::SqTail, tail.wrapping_add(1));
                    next_ud += 1;
                }
            }
            Step::Drain { max, defer } => {
                let tail = mem.word(RingIndex::SqTail);
                let head = drain.head();
                mem.sq_loads.set(0);
                let mut drained_to = None;
                match drain.begin() {
                    Err(c) => {
                        assert!(tail.wrapping_sub(head) > SQ as u32, "false corruption");
                        assert_eq!((c.head, c.tail), (head, tail));
                    }
                    Ok(mut batch) => {
                        assert!(tail.wrapping_sub(head) <= SQ as u32, "missed corruption");
                        assert_eq!(batch.remaining(), tail.wrapping_sub(head));
                        let mut popped = 0u32;
                        while popped < u32::from(max) {
                            match batch.pop(&mut post) {
                                Ok(s) => {
                                    credits_issued += 1;
                                    popped += 1;
                                    if defer & (1 << (popped % 8)) != 0 {
                                        deferred.push((s.user_data, s.op, s.credit));
                                    } else {
                                        complete(&mem, &mut post, (s.user_data, s.op, s.credit));
                                        posted += 1;
                                    }
                                }
                                Err(DrainStop::Done) => {
                                    assert_eq!(popped, tail.wrapping_sub(head));
                                    break;
                                }
                                Err(DrainStop::CqFull) => {
                                    let cq_head = mem.word(RingIndex::CqHead);
                                    assert_eq!(
                                        post.tail().wrapping_sub(cq_head) + post.reserved(),
                                        CQ as u32,
                                        "CqFull with room"
                                    );
                                    break;
                                }
                                Err(DrainStop::CqCorrupted(c)) => {
                                    assert_eq!(c.head, mem.word(RingIndex::CqHead));
                                    assert_eq!(c.tail, post.tail());
                                    assert!(
                                        c.head.wrapping_sub(c.tail) != 0,
                                        "head equal to tail is always legal"
                                    );
                                    break;
                                }
                            }
                        }
                        assert!(popped <= SQ as u32, "more than one queue per drain");
                        assert_eq!(mem.sq_loads.get(), popped);
                        drop(batch);
                        if popped > 0 {
                            assert_eq!(mem.word(RingIndex::SqHead), head.wrapping_add(popped));
                        }
                        drained_to = Some(head.wrapping_add(popped));
                    }
                }
                if let Some(h) = drained_to {
                    assert_eq!(drain.head(), h);
                }
            }
            Step::Complete(i) => {
                if !deferred.is_empty() {
                    let d = deferred.remove(usize::from(i) % deferred.len());
                    complete(&mem, &mut post, d);
                    posted += 1;
                }
            }
            Step::Reap(n) => {
                // Userspace consumes up to what it believes was posted.
                let head = mem.word(RingIndex::CqHead);
                let ready = mem.word(RingIndex::CqTail).wrapping_sub(head);
                if ready <= CQ as u32 {
                    mem.set(RingIndex::CqHead, head.wrapping_add(ready.min(n.into())));
                }
            }
            Step::Corrupt { which, value } => {
                let which = RingIndex::ALL[usize::from(which) % 4];
                let current = mem.word(which);
                let value = match value {
                    Corruption::Any(v) => v,
                    Corruption::Nudge(d) => current.wrapping_add_signed(d.into()),
                    Corruption::Edge(d) => {
                        let edge = match which {
                            RingIndex::SqTail => drain.head().wrapping_add(SQ as u32),
                            RingIndex::SqHead => mem.word(RingIndex::SqTail),
                            RingIndex::CqTail => mem.word(RingIndex::CqHead),
                            RingIndex::CqHead => post.tail(),
                        };
                        edge.wrapping_add_signed(d.into())
                    }
                };
                mem.set(which, value);
            }
        }
        // Every credit is accounted for.
        assert_eq!(post.reserved() as usize, deferred.len());
        assert!(post.reserved() as usize <= CQ);
        assert_eq!(credits_issued, posted + deferred.len() as u64);
    }

    // Every reserved completion can still be posted, whatever the indices say.
    for d in deferred.drain(..) {
        complete(&mem, &mut post, d);
        posted += 1;
    }
    assert_eq!(credits_issued, posted);
    assert_eq!(post.reserved(), 0);

    // Repair the user-owned indices; the ring then works normally.
    mem.set(RingIndex::SqTail, drain.head());
    mem.set(RingIndex::CqHead, post.tail());
    mem.set(RingIndex::SqHead, drain.head());
    mem.set(RingIndex::CqTail, post.tail());
    let mut sq = SubmissionProducer::new(&mem).unwrap();
    let mut cq = CompletionConsumer::new(&mem).unwrap();
    sq.try_submit(&Op::Nop.encode(0xABCD)).unwrap();
    let s = drain.begin().unwrap().pop(&mut post).unwrap();
    assert_eq!((s.user_data, s.op), (0xABCD, Ok(Op::Nop)));
    complete(&mem, &mut post, (s.user_data, s.op, s.credit));
    let c = cq.try_reap().unwrap().unwrap();
    c.user_data == 0xABCD && cq.try_reap() == Ok(None)
}

#[test]
fn prop_hostile_indices() {
    let mut qc = QuickCheck::new().tests(TESTS);
    qc.quickcheck(hostile::<4, 4> as fn(Scenario) -> bool);
    qc.quickcheck(hostile::<4, 2> as fn(Scenario) -> bool);
    qc.quickcheck(hostile::<2, 8> as fn(Scenario) -> bool);
    qc.quickcheck(hostile::<1, 1> as fn(Scenario) -> bool);
}
