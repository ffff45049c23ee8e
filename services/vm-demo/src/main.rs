//! VirtualMemory demo and test: maps and uses anonymous memory, checks
//! that W^X, foreign ranges (ring, image) and the frame quota are refused,
//! unmaps, and finally writes to a page it made read-only, which must kill
//! it with a page fault at that address.
//!
//! With a `timer` cap it also runs rounds that sleep between using memory
//! and changing its mapping: a sleeping process often wakes on another CPU,
//! and the CPU it left keeps its page tables loaded (and may keep cached
//! translations), so each `protect`/`unmap` after a sleep needs a TLB
//! shoot-down to take effect. Every round checks that it did: read-only
//! memory still reads back, writable-again memory takes writes, and pages
//! unmapped and mapped again read as zero even when their old frames have
//! been handed out (and filled) meanwhile.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::ring::process::RING_ADDR;
use capos_rt::{prot, CallError, Console, Runtime, Timer, VirtualMemory};

capos_rt::entry!(main);

const PAGE: u64 = 4096;
/// The kernel charges at most this many frames of anonymous memory.
const FRAME_QUOTA: u64 = 4096;
/// Rounds of sleep-then-change (see the module comment).
const ROUNDS: u8 = 12;
/// Sleeps last from 0.5 ms to 10.5 ms, in steps that spread their
/// deadlines over the 10 ms timer tick: which CPU's tick ends a sleep (and
/// so where the process wakes) then varies, instead of depending on how the
/// CPUs' ticks happen to line up.
const NAP_BASE_NS: u64 = 500_000;
const NAP_STEP_NS: u64 = 3_700_000;
const TICK_NS: u64 = 10_000_000;
/// Sleeps between writes before each change (to touch memory on several CPUs).
const SPREAD: usize = 3;
/// Pages in the rounds' buffer: more than the kernel invalidates one by one.
const BUF_PAGES: u64 = 40;

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let Ok(vm) = rt.cap::<VirtualMemory>("vm") else {
        say("vm-demo: FAIL no vm cap");
        return 2;
    };
    let mut naps = rt
        .cap::<Timer>("timer")
        .ok()
        .map(|timer| Naps { timer, n: 0 });
    match run(&vm, naps.as_mut(), &say) {
        Ok(addr) => {
            say(&format!("vm-demo: writing to read-only page {addr:#x}"));
            capos_rt::fault::write_byte(addr, 1);
            say("vm-demo: FAIL the write to a read-only page succeeded");
            4
        }
        Err(e) => {
            say(&format!("vm-demo: FAIL {e}"));
            3
        }
    }
}

fn refused(
    say: &dyn Fn(&str),
    case: &str,
    r: Result<(), CallError>,
    want: &str,
) -> Result<(), CallError> {
    match r {
        Err(CallError::Exception(e)) if e.message.contains(want) => {
            say(&format!("vm-demo: ok {case} refused: {}", e.message));
            Ok(())
        }
        other => {
            say(&format!("vm-demo: FAIL {case}: {other:?}"));
            Ok(())
        }
    }
}

/// Runs every check; returns the address of a page left read-only.
fn run(
    vm: &VirtualMemory,
    mut naps: Option<&mut Naps>,
    say: &dyn Fn(&str),
) -> Result<u64, CallError> {
    let mut buf = vm.map_buffer(4 * PAGE)?;
    for (i, b) in buf.as_mut_slice().iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let sum: u64 = buf.as_mut_slice().iter().map(|&b| u64::from(b)).sum();
    say(&format!(
        "vm-demo: ok mapped 4 pages at {:#x}, checksum {sum}",
        buf.addr()
    ));

    refused(
        say,
        "write+exec",
        vm.map(0, PAGE, prot::READ | prot::WRITE | prot::EXEC)
            .map(|_| ()),
        "W^X",
    )?;
    refused(
        say,
        "unmap-ring",
        vm.unmap(RING_ADDR, PAGE),
        "outside the anonymous window",
    )?;
    refused(
        say,
        "protect-image",
        vm.protect(0x40_0000, PAGE, prot::READ | prot::WRITE),
        "outside the anonymous window",
    )?;
    refused(
        say,
        "unmap-unmapped",
        vm.unmap(buf.addr() + 64 * PAGE, PAGE),
        "not all mapped",
    )?;

    // Fill the frame quota (what the process started with is charged too,
    // so map in shrinking chunks until refused), then one page more is
    // refused; give it all back.
    let mut mapped = Vec::new();
    for chunk in [256, 16, 1] {
        while let Ok(addr) = vm.map(0, chunk * PAGE, prot::READ | prot::WRITE) {
            mapped.push((addr, chunk));
        }
    }
    refused(
        say,
        "over-quota",
        vm.map(0, PAGE, prot::READ).map(|_| ()),
        "frame quota",
    )?;
    let pages: u64 = mapped.iter().map(|(_, n)| n).sum();
    for (addr, n) in mapped {
        vm.unmap(addr, n * PAGE)?;
    }
    vm.unmap(buf.addr(), 4 * PAGE)?;
    if pages + 4 >= FRAME_QUOTA {
        say("vm-demo: FAIL the quota held more than it should");
    }
    say(&format!(
        "vm-demo: ok quota filled and released ({} anonymous pages of {FRAME_QUOTA})",
        pages + 4
    ));

    match naps.as_deref_mut() {
        Some(n) => across_sleeps(vm, n, say)?,
        None => say("vm-demo: no timer cap; rounds across sleeps skipped"),
    }

    // A page made read-only stays readable but no longer writable (with
    // sleeps around the change, so the CPU that wrote it, the one that
    // protects it and the one that writes again may all differ).
    let mut page = vm.map_buffer(PAGE)?;
    page.as_mut_slice()[0] = 42;
    if let Some(n) = naps.as_deref_mut() {
        for _ in 0..SPREAD {
            n.nap()?;
            page.as_mut_slice()[0] = 42;
        }
    }
    vm.protect(page.addr(), PAGE, prot::READ)?;
    if let Some(n) = naps {
        n.nap()?;
    }
    say("vm-demo: ok protected a page read-only");
    Ok(page.addr())
}

/// Sleeps of varied length (see `NAP_STEP_NS`).
struct Naps {
    timer: Timer,
    n: u64,
}

impl Naps {
    fn nap(&mut self) -> Result<(), CallError> {
        let ns = NAP_BASE_NS + (self.n * NAP_STEP_NS) % TICK_NS;
        self.n += 1;
        self.timer.sleep(ns)
    }
}

/// Rounds of: use a buffer, sleep, change its mapping, sleep again, check
/// the change took effect (see the module comment). Each check runs after a
/// sleep, so it often runs on a CPU other than the one that made the
/// change, possibly one that used the old mapping before. `protect` covers
/// the whole buffer (more pages than the kernel invalidates one by one, so
/// targets flush everything); `unmap` covers its last two pages (targets
/// invalidate those pages).
fn across_sleeps(vm: &VirtualMemory, naps: &mut Naps, say: &dyn Fn(&str)) -> Result<(), CallError> {
    let size = BUF_PAGES * PAGE;
    let mut buf = vm.map_buffer(size)?;
    let addr = buf.addr();
    let tail = addr + size - 2 * PAGE;
    let kept = (size - 2 * PAGE) as usize;
    for round in 0..ROUNDS {
        let mark = 0x40 + round;
        // Write the pages on a few CPUs, so several may cache them writable.
        for _ in 0..SPREAD {
            buf.as_mut_slice().fill(mark);
            naps.nap()?;
        }
        vm.protect(addr, size, prot::READ)?;
        naps.nap()?;
        if buf.as_mut_slice().iter().any(|&b| b != mark) {
            say(&format!(
                "vm-demo: FAIL round {round}: read-only pages changed"
            ));
            return Ok(());
        }
        // Writable again: a stale read-only translation would fault here.
        vm.protect(addr, size, prot::READ | prot::WRITE)?;
        naps.nap()?;
        buf.as_mut_slice().fill(!mark);
        // Fresh pages for the tail, after its old frames went to another
        // mapping and were filled: a stale translation would show 0xa5 (or
        // the old bytes) instead of zero.
        vm.unmap(tail, 2 * PAGE)?;
        let mut other = vm.map_buffer(2 * PAGE)?;
        other.as_mut_slice().fill(0xa5);
        let again = vm.map(tail, 2 * PAGE, prot::READ | prot::WRITE)?;
        // Check on a few CPUs: any that wrote the old tail above could
        // still translate it to the old frames.
        for _ in 0..SPREAD {
            naps.nap()?;
            let s = buf.as_mut_slice();
            if again != tail
                || s[..kept].iter().any(|&b| b != !mark)
                || s[kept..].iter().any(|&b| b != 0)
            {
                say(&format!(
                    "vm-demo: FAIL round {round}: remapped pages do not read as fresh memory"
                ));
                return Ok(());
            }
        }
        vm.unmap(other.addr(), 2 * PAGE)?;
    }
    vm.unmap(addr, size)?;
    say(&format!(
        "vm-demo: ok {ROUNDS} rounds of protect and unmap across sleeps took effect"
    ));
    Ok(())
}
