#![cfg(loom)]
//! Loom models of the capability ring's two single-producer/single-consumer queues.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p capos-verify --release --test ring_loom`.
//!
//! The ring views in `capos-ring` reach memory only through the `RingMemory`
//! trait, so the models run the real producer/consumer code over a memory
//! built from loom primitives. If any index store or load were weaker than
//! the Release/Acquire the protocol needs, loom would report a race on an
//! entry slot or let a consumer read stale contents, and the model would fail.

use capos_ring::entry::{CQE_WORDS, SQE_WORDS};
use capos_ring::{
    Call, CompletionConsumer, CompletionPoster, Cqe, DrainStop, Op, ReserveError, RingIndex,
    RingMemory, SubmissionDrain, SubmissionProducer, SubmitError, TransferList, UserBuf,
};
use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU32;
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering;

/// Ring memory for the models: index words are loom atomics, entries are
/// loom `UnsafeCell`s. Loom tracks causality on those cells and fails the
/// model if a slot is written while the other side may still be reading it,
/// or read while it may still be being written, so the index protocol has to
/// order every slot access in both directions. (The real ring uses relaxed
/// atomic words, which would hide such races from value checks alone.)
struct LoomMem {
    indices: [AtomicU32; 4],
    sq: Vec<UnsafeCell<[u64; SQE_WORDS]>>,
    cq: Vec<UnsafeCell<[u64; CQE_WORDS]>>,
}

#[derive(Clone)]
struct Shared(Arc<LoomMem>);

impl Shared {
    fn new(sq_entries: usize, cq_entries: usize) -> Self {
        Shared(Arc::new(LoomMem {
            indices: std::array::from_fn(|_| AtomicU32::new(0)),
            sq: (0..sq_entries)
                .map(|_| UnsafeCell::new([0; SQE_WORDS]))
                .collect(),
            cq: (0..cq_entries)
                .map(|_| UnsafeCell::new([0; CQE_WORDS]))
                .collect(),
        }))
    }

    fn index(&self, which: RingIndex) -> &AtomicU32 {
        let i = RingIndex::ALL.iter().position(|w| *w == which).unwrap();
        &self.0.indices[i]
    }
}

impl RingMemory for Shared {
    fn sq_entries(&self) -> u32 {
        self.0.sq.len() as u32
    }
    fn cq_entries(&self) -> u32 {
        self.0.cq.len() as u32
    }
    fn load_index(&self, which: RingIndex, order: Ordering) -> u32 {
        self.index(which).load(order)
    }
    fn store_index(&self, which: RingIndex, value: u32, order: Ordering) {
        self.index(which).store(value, order)
    }
    fn load_sqe(&self, slot: u32) -> [u64; SQE_WORDS] {
        let cell = &self.0.sq[slot as usize % self.0.sq.len()];
        // SAFETY: the pointer comes from a live cell owned by `self`; loom
        // checks that no write to the cell races with this read and fails
        // the model (rather than reading) if one could.
        cell.with(|p| unsafe { *p })
    }
    fn store_sqe(&self, slot: u32, words: &[u64; SQE_WORDS]) {
        let cell = &self.0.sq[slot as usize % self.0.sq.len()];
        // SAFETY: as in `load_sqe`; loom checks this write is ordered after
        // every other access to the cell.
        cell.with_mut(|p| unsafe { *p = *words })
    }
    fn load_cqe(&self, slot: u32) -> [u64; CQE_WORDS] {
        let cell = &self.0.cq[slot as usize % self.0.cq.len()];
        // SAFETY: as in `load_sqe`.
        cell.with(|p| unsafe { *p })
    }
    fn store_cqe(&self, slot: u32, words: &[u64; CQE_WORDS]) {
        let cell = &self.0.cq[slot as usize % self.0.cq.len()];
        // SAFETY: as in `store_sqe`.
        cell.with_mut(|p| unsafe { *p = *words })
    }
}

/// A CALL whose every used field depends on `i`, so a stale word shows up.
fn call(i: u64) -> Op {
    Op::Call(Call {
        cap_id: 0x100 + i,
        method_id: i as u16 + 1,
        params: UserBuf::new(0x1000 * (i + 1), 8 * (i as u32 + 1), u32::MAX).unwrap(),
        result: UserBuf::new(0x9000 + i * 64, 64, u32::MAX).unwrap(),
        transfers: TransferList::NONE,
    })
}

fn completion(i: u64) -> Cqe {
    Cqe {
        user_data: 0xC0DE_0000 + i,
        result: i as i32 * 3,
        flags: 0,
        call_id: 0xCA11_0000 + i,
        xfer_count: 0,
        reserved0: 0,
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    // No preemption bound: the models are small enough for loom to explore
    // every interleaving in a couple of seconds.
    builder.preemption_bound = None;
    builder.check(f);
}

/// Userspace submits three CALLs into a two-entry SQ while the kernel drains
/// it: FIFO, no loss, no duplicates, and every word of every entry intact.
#[test]
fn sq_producer_against_kernel_drain() {
    model(|| {
        const N: u64 = 3;
        let mem = Shared::new(2, 4);
        let user_mem = mem.clone();
        let user = thread::spawn(move || {
            let mut sq = SubmissionProducer::new(user_mem).unwrap();
            for i in 0..N {
                loop {
                    match sq.try_submit(&call(i).encode(i)) {
                        Ok(()) => break,
                        Err(SubmitError::Full) => thread::yield_now(),
                        Err(e) => panic!("honest ring reported {e:?}"),
                    }
                }
            }
        });

        let mut drain = SubmissionDrain::new(mem.clone()).unwrap();
        let mut post = CompletionPoster::new(mem.clone()).unwrap();
        let mut next = 0;
        while next < N {
            let mut batch = drain.begin().expect("honest ring reported corruption");
            assert!(batch.remaining() <= 2);
            let mut popped = false;
            loop {
                match batch.pop(&mut post) {
                    Ok(s) => {
                        assert_eq!(s.user_data, next);
                        assert_eq!(s.op, Ok(call(next)));
                        post.post(s.credit, &Cqe::success(s.user_data, 0));
                        next += 1;
                        popped = true;
                    }
                    Err(DrainStop::Done) => break,
                    Err(stop) => panic!("unexpected stop {stop:?}"),
                }
            }
            if !popped {
                thread::yield_now();
            }
        }
        user.join().unwrap();
        assert_eq!(drain.begin().unwrap().remaining(), 0);
    });
}

/// The kernel posts three completions into a two-entry CQ while userspace
/// reaps: FIFO, nothing dropped or overwritten, contents intact.
#[test]
fn cq_poster_against_user_consumer() {
    model(|| {
        const N: u64 = 3;
        let mem = Shared::new(1, 2);
        let kernel_mem = mem.clone();
        let kernel = thread::spawn(move || {
            let mut post = CompletionPoster::new(kernel_mem).unwrap();
            for i in 0..N {
                loop {
                    match post.reserve() {
                        Ok(credit) => {
                            post.post(credit, &completion(i));
                            break;
                        }
                        Err(ReserveError::Full) => thread::yield_now(),
                        Err(e) => panic!("honest ring reported {e:?}"),
                    }
                }
            }
        });

        let mut cq = CompletionConsumer::new(mem.clone()).unwrap();
        let mut next = 0;
        while next < N {
            match cq.try_reap().expect("honest ring reported corruption") {
                Some(cqe) => {
                    assert_eq!(cqe, completion(next));
                    next += 1;
                }
                None => thread::yield_now(),
            }
        }
        kernel.join().unwrap();
        assert_eq!(cq.try_reap(), Ok(None));
    });
}

/// Both queues at once with one-entry queues: userspace submits two NOPs and
/// reaps their completions while the kernel drains and completes them. Every
/// submission is completed exactly once, in order, and the drain only stops
/// for a full CQ when the CQ really holds an unread or reserved entry.
#[test]
fn round_trip_with_backpressure() {
    model(|| {
        const N: u64 = 2;
        let mem = Shared::new(1, 1);
        let user_mem = mem.clone();
        let user = thread::spawn(move || {
            let mut sq = SubmissionProducer::new(user_mem.clone()).unwrap();
            let mut cq = CompletionConsumer::new(user_mem).unwrap();
            let mut submitted = 0;
            let mut reaped = 0;
            while reaped < N {
                if submitted < N {
                    match sq.try_submit(&Op::Nop.encode(submitted)) {
                        Ok(()) => submitted += 1,
                        Err(SubmitError::Full) => {}
                        Err(e) => panic!("honest ring reported {e:?}"),
                    }
                }
                match cq.try_reap().unwrap() {
                    Some(c) => {
                        assert_eq!(c.user_data, reaped);
                        assert_eq!(c.result, 7);
                        reaped += 1;
                    }
                    None => thread::yield_now(),
                }
            }
        });

        let mut drain = SubmissionDrain::new(mem.clone()).unwrap();
        let mut post = CompletionPoster::new(mem.clone()).unwrap();
        let mut done = 0;
        while done < N {
            let mut batch = drain.begin().unwrap();
            match batch.pop(&mut post) {
                Ok(s) => {
                    assert_eq!(s.user_data, done);
                    assert_eq!(s.op, Ok(Op::Nop));
                    post.post(s.credit, &Cqe::success(s.user_data, 7));
                    done += 1;
                }
                Err(DrainStop::Done) | Err(DrainStop::CqFull) => thread::yield_now(),
                Err(stop) => panic!("unexpected stop {stop:?}"),
            }
        }
        user.join().unwrap();
        assert_eq!(post.reserved(), 0);
        assert_eq!(
            mem.load_index(RingIndex::CqHead, Ordering::Relaxed),
            N as u32
        );
    });
}
