#![cfg(loom)]
//! Loom models of the TLB shoot-down protocol (`capos_kcore::shootdown`).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p capos-verify --release --test tlb_loom`.
//!
//! The models run the kernel's own bookkeeping (active-CPU word, stations,
//! post/service/wait) over loom atomics. A page-table entry is a loom atomic
//! read with relaxed loads (the page walker), and each model CPU keeps a
//! one-entry "TLB" of what it last read, filled only while it has the
//! space loaded and dropped when a request tells it to. The properties:
//!
//! * once a shoot-down has returned, no CPU uses the old translation, both
//!   for a CPU that had the space loaded (it was interrupted) and for one
//!   that loads it concurrently (the snapshot missed it, so its walk must
//!   see the new entry);
//! * two CPUs that shoot at each other while both wait with interrupts
//!   masked both finish (each services its own station while waiting);
//! * requests from two CPUs to one target arrive intact, each exactly once.

use capos_kcore::shootdown::{self as sd, CpuSet, Flush, Request, Station, Word};
use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering;

/// A loom atomic as a protocol word.
struct W(AtomicU64);

impl Word for W {
    fn load(&self, o: Ordering) -> u64 {
        self.0.load(o)
    }
    fn store(&self, v: u64, o: Ordering) {
        self.0.store(v, o)
    }
    fn swap(&self, v: u64, o: Ordering) -> u64 {
        self.0.swap(v, o)
    }
    fn fetch_or(&self, v: u64, o: Ordering) -> u64 {
        self.0.fetch_or(v, o)
    }
    fn fetch_and(&self, v: u64, o: Ordering) -> u64 {
        self.0.fetch_and(v, o)
    }
}

fn word() -> W {
    W(AtomicU64::new(0))
}

fn stations(n: usize) -> Vec<Station<W>> {
    (0..n).map(|_| Station::new(word)).collect()
}

const ROOT: u64 = 0x10_0000;
const PAGE: u64 = 0x4000;
const OLD: u64 = 0xaaa;
const NEW: u64 = 0xbbb;

fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    // The waiting loops spin; bounding preemptions keeps the search finite
    // while still covering every ordering of the protocol's few steps.
    builder.preemption_bound = Some(bound);
    // Spinning threads take many branches in one execution.
    builder.max_branches = 100_000;
    builder.check(f);
}

struct Space {
    pte: AtomicU64,
    cpus: W,
    stations: Vec<Station<W>>,
    done: AtomicU64,
}

fn page_flush() -> Flush {
    sd::plan(PAGE, PAGE + sd::PAGE_SIZE)
}

/// CPU 0 changes a page-table entry and shoots it down; CPU 1 loads the
/// space at any point (before, during, after) and keeps using the page.
/// After CPU 0's shoot-down returns, CPU 1 must never use `OLD` again.
#[test]
fn no_stale_use_after_shootdown() {
    model(3, || {
        let s = Arc::new(Space {
            pte: AtomicU64::new(OLD),
            cpus: word(),
            stations: stations(2),
            done: AtomicU64::new(0),
        });
        let t = s.clone();
        let target = thread::spawn(move || {
            // Load the space: join, then walk (fill the one-entry TLB).
            sd::join(&t.cpus, 1);
            let mut tlb = Some(t.pte.load(Ordering::Relaxed));
            loop {
                sd::service(&t.stations, 1, |r| {
                    assert_eq!(
                        r,
                        Request {
                            root: ROOT,
                            flush: page_flush()
                        }
                    );
                    tlb = None;
                });
                let finished = t.done.load(Ordering::Acquire) == 1;
                let used = *tlb.get_or_insert_with(|| t.pte.load(Ordering::Relaxed));
                if finished {
                    assert_eq!(used, NEW, "old translation used after the shoot-down");
                    break;
                }
                thread::yield_now();
            }
        });
        // CPU 0: change the entry, then shoot.
        s.pte.store(NEW, Ordering::Relaxed);
        let targets = sd::snapshot(&s.cpus).without(0);
        if !targets.is_empty() {
            assert_eq!(targets, CpuSet::single(1));
            sd::post(
                &s.stations,
                0,
                Request {
                    root: ROOT,
                    flush: page_flush(),
                },
                targets,
            );
            sd::wait(
                &s.stations,
                0,
                |_| panic!("nobody shoots at CPU 0"),
                thread::yield_now,
            );
        }
        s.done.store(1, Ordering::Release);
        target.join().unwrap();
    });
}

/// CPU 1 has the space loaded and switches to another root at any point:
/// its join/leave races the shoot-down. Whether or not it is interrupted,
/// the shoot-down finishes, and a CPU that left holds no entry.
#[test]
fn target_leaving_during_shootdown() {
    model(3, || {
        let s = Arc::new(Space {
            pte: AtomicU64::new(OLD),
            cpus: word(),
            stations: stations(2),
            done: AtomicU64::new(0),
        });
        sd::join(&s.cpus, 1);
        let t = s.clone();
        let target = thread::spawn(move || {
            let mut loaded = true;
            let mut tlb = Some(t.pte.load(Ordering::Relaxed));
            loop {
                sd::service(&t.stations, 1, |r| {
                    assert_eq!(r.root, ROOT);
                    if loaded {
                        tlb = None;
                    }
                });
                if loaded {
                    // Switch to another root: the CR3 write drops every
                    // entry, then leave.
                    tlb = None;
                    loaded = false;
                    sd::leave(&t.cpus, 1);
                }
                if t.done.load(Ordering::Acquire) == 1 {
                    assert!(tlb.is_none());
                    break;
                }
                thread::yield_now();
            }
        });
        s.pte.store(NEW, Ordering::Relaxed);
        let targets = sd::snapshot(&s.cpus).without(0);
        if !targets.is_empty() {
            sd::post(
                &s.stations,
                0,
                Request {
                    root: ROOT,
                    flush: Flush::All,
                },
                targets,
            );
            sd::wait(
                &s.stations,
                0,
                |_| panic!("nobody shoots at CPU 0"),
                thread::yield_now,
            );
        }
        s.done.store(1, Ordering::Release);
        target.join().unwrap();
        assert!(sd::snapshot(&s.cpus).is_empty());
    });
}

/// CPUs 0 and 1 each shoot at the other at the same time, each waiting
/// without taking interrupts; both finish, each having handled the other's
/// request exactly once.
#[test]
fn mutual_shootdowns_finish() {
    model(2, || {
        let st = Arc::new(stations(2));
        let handles: Vec<_> = (0..2usize)
            .map(|me| {
                let st = st.clone();
                thread::spawn(move || {
                    let other = 1 - me;
                    let mine = Request {
                        root: ROOT * (me as u64 + 1),
                        flush: Flush::All,
                    };
                    sd::post(&st, me, mine, CpuSet::single(other));
                    let mut seen = Vec::new();
                    sd::wait(&st, me, |r| seen.push(r), thread::yield_now);
                    // The other's request may still be pending here (it was
                    // acknowledged... or not yet taken): take it now.
                    while seen.is_empty() {
                        sd::service(&st, me, |r| seen.push(r));
                        thread::yield_now();
                    }
                    assert_eq!(
                        seen,
                        [Request {
                            root: ROOT * (other as u64 + 1),
                            flush: Flush::All
                        }]
                    );
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// CPUs 0 and 1 each post a request to CPU 2 at the same time (their
/// waits are the models above); CPU 2 sees both intact, each once, and
/// both end up acknowledged.
#[test]
fn two_senders_one_target() {
    model(2, || {
        let st = Arc::new(stations(3));
        let req = |me: usize| Request {
            root: ROOT * (me as u64 + 1),
            flush: Flush::Pages {
                start: PAGE * (me as u64 + 1),
                count: 1,
            },
        };
        let senders: Vec<_> = (0..2usize)
            .map(|me| {
                let st = st.clone();
                thread::spawn(move || sd::post(&st, me, req(me), CpuSet::single(2)))
            })
            .collect();
        let mut seen: Vec<Request> = Vec::new();
        while seen.len() < 2 {
            sd::service(&st, 2, |r| seen.push(r));
            thread::yield_now();
        }
        for h in senders {
            h.join().unwrap();
        }
        seen.sort_by_key(|r| r.root);
        assert_eq!(seen, [req(0), req(1)]);
        assert!(sd::acknowledged(&st, 0) && sd::acknowledged(&st, 1));
    });
}

/// CPU 0 sends two requests in a row to CPU 1, reusing its station: the
/// second never overwrites the first before CPU 1 has read it, and CPU 1
/// sees both, in order.
#[test]
fn station_reuse() {
    model(3, || {
        let st = Arc::new(stations(2));
        let sender = {
            let st = st.clone();
            thread::spawn(move || {
                for k in 1..=2u64 {
                    let req = Request {
                        root: ROOT,
                        flush: Flush::Pages {
                            start: PAGE * k,
                            count: k,
                        },
                    };
                    sd::post(&st, 0, req, CpuSet::single(1));
                    sd::wait(
                        &st,
                        0,
                        |_| panic!("nobody shoots at CPU 0"),
                        thread::yield_now,
                    );
                }
            })
        };
        let mut seen: Vec<Request> = Vec::new();
        while seen.len() < 2 {
            sd::service(&st, 1, |r| seen.push(r));
            thread::yield_now();
        }
        sender.join().unwrap();
        let starts: Vec<Flush> = seen.iter().map(|r| r.flush).collect();
        assert_eq!(
            starts,
            [
                Flush::Pages {
                    start: PAGE,
                    count: 1
                },
                Flush::Pages {
                    start: 2 * PAGE,
                    count: 2
                }
            ]
        );
    });
}
