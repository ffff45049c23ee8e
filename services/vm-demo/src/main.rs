//! VirtualMemory demo and test: maps and uses anonymous memory, checks
//! that W^X, foreign ranges (ring, image) and the frame quota are refused,
//! unmaps, and finally writes to a page it made read-only, which must kill
//! it with a page fault at that address.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::ring::process::RING_ADDR;
use capos_rt::{prot, CallError, Console, Runtime, VirtualMemory};

capos_rt::entry!(main);

const PAGE: u64 = 4096;
/// The kernel charges at most this many frames of anonymous memory.
const FRAME_QUOTA: u64 = 4096;

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
    match run(&vm, &say) {
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
fn run(vm: &VirtualMemory, say: &dyn Fn(&str)) -> Result<u64, CallError> {
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

    // A page made read-only stays readable but no longer writable.
    let mut page = vm.map_buffer(PAGE)?;
    page.as_mut_slice()[0] = 42;
    vm.protect(page.addr(), PAGE, prot::READ)?;
    say("vm-demo: ok protected a page read-only");
    Ok(page.addr())
}
