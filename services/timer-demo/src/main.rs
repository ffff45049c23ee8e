//! Timer demo: checks that `now` is monotonic, that a blocking sleep lasts
//! at least as long as asked, and that sleeps started out of order complete
//! in deadline order; then checks the per-process limit on pending sleeps.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::ring::TransportError;
use capos_rt::{CallError, Console, Runtime, Timer};

capos_rt::entry!(main);

/// Sleeps started together, in this (non-sorted) order, in milliseconds.
const SLEEPS_MS: [u64; 3] = [30, 10, 20];
/// The kernel's per-process limit on pending sleeps.
const MAX_PENDING_SLEEPS: usize = 16;

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let Ok(timer) = rt.cap::<Timer>("timer") else {
        say("timer-demo: FAIL no timer cap");
        return 2;
    };
    match run(rt, &timer, &say) {
        Ok(()) => {
            say("timer-demo: done");
            0
        }
        Err(e) => {
            say(&format!("timer-demo: FAIL {e}"));
            3
        }
    }
}

fn run(rt: &Runtime, timer: &Timer, say: &dyn Fn(&str)) -> Result<(), CallError> {
    let t0 = timer.now()?;
    let t1 = timer.now()?;
    if t1 < t0 {
        say("timer-demo: FAIL now went backwards");
    }
    timer.sleep(5_000_000)?;
    let t2 = timer.now()?;
    say(&format!(
        "timer-demo: slept {} us for a 5000 us sleep",
        (t2 - t1) / 1000
    ));
    if t2 - t1 < 5_000_000 {
        say("timer-demo: FAIL the sleep was too short");
    }

    // Start three sleeps out of order, then order their completions by
    // their position in the completion queue.
    let tickets: Vec<_> = SLEEPS_MS
        .iter()
        .map(|ms| timer.start_sleep(ms * 1_000_000))
        .collect::<Result<_, _>>()?;
    let mut done = Vec::new();
    for (i, t) in tickets.iter().enumerate() {
        let c = rt.ring().wait(*t)?;
        done.push((c.seq, i));
        c.into_result()?;
    }
    done.sort_unstable();
    let ms: Vec<u64> = done.iter().map(|&(_, i)| SLEEPS_MS[i]).collect();
    say(&format!("timer-demo: sleeps completed in order {ms:?} ms"));

    // One sleep past the limit is refused with QUOTA; the rest complete.
    let long: Vec<_> = (0..=MAX_PENDING_SLEEPS)
        // Long enough that none completes before the last is submitted, even
        // if a heap growth on the way enters the kernel early.
        .map(|_| timer.start_sleep(200_000_000))
        .collect::<Result<_, _>>()?;
    let mut quota = 0;
    for t in long {
        match rt.ring().wait(t)?.into_result() {
            Ok(_) => {}
            Err(CallError::Transport(TransportError::Quota)) => quota += 1,
            Err(e) => return Err(e),
        }
    }
    say(&format!(
        "timer-demo: {} sleeps past the limit of {MAX_PENDING_SLEEPS} refused with QUOTA",
        quota
    ));
    Ok(())
}
