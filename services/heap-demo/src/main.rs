//! Heap growth demo and test.
//!
//! With a `VirtualMemory` capability (`vm`): allocates about 5 MiB in
//! vectors, ten times the runtime's static arena, so the heap must grow
//! through `VirtualMemory`; writes and checks a pattern in every vector;
//! frees everything and allocates the same again, which must reuse the
//! memory without growing; then maps the rest of its frame quota itself
//! and asks for more heap than is left. That allocation fails and the
//! runtime's report of it (naming the frame quota) ends the process with
//! the panic exit code.
//!
//! Without a `VirtualMemory` capability: allocates 1 MiB, more than the
//! arena, which fails with the report naming the missing capability.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::heap::{self, HeapStats};
use capos_rt::{prot, Console, Runtime, VirtualMemory};
use core::hint::black_box;

capos_rt::entry!(main);

/// Vectors of 256 KiB each (u32 elements).
const BLOCKS: u32 = 16;
const BLOCK_WORDS: u32 = 64 * 1024;
/// One vector grown element by element to 1 MiB (u64 elements), so that
/// reallocation crosses growths too.
const GROWN_WORDS: u64 = 128 * 1024;

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    match rt.cap::<VirtualMemory>("vm") {
        Ok(vm) => with_vm(&vm, &say),
        Err(_) => without_vm(&say),
    }
}

fn block_word(block: u32, i: u32) -> u32 {
    (block << 24) ^ i.wrapping_mul(0x9E37_79B9)
}

fn grown_word(i: u64) -> u64 {
    i.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x5555
}

/// Allocates the whole load, checks it, and frees it. Returns false on a
/// pattern mismatch.
fn load(seed: u32) -> bool {
    let mut blocks: Vec<Vec<u32>> = Vec::new();
    for b in 0..BLOCKS {
        blocks.push((0..BLOCK_WORDS).map(|i| block_word(b ^ seed, i)).collect());
    }
    let mut grown: Vec<u64> = Vec::new();
    for i in 0..GROWN_WORDS {
        grown.push(grown_word(i ^ u64::from(seed)));
    }
    let blocks_ok = blocks.iter().enumerate().all(|(b, v)| {
        v.len() == BLOCK_WORDS as usize
            && v.iter()
                .enumerate()
                .all(|(i, &w)| w == block_word(b as u32 ^ seed, i as u32))
    });
    let grown_ok = grown
        .iter()
        .enumerate()
        .all(|(i, &w)| w == grown_word(i as u64 ^ u64::from(seed)));
    blocks_ok && grown_ok
}

fn describe(s: &HeapStats) -> alloc::string::String {
    format!(
        "heap grew {} times, {} bytes mapped, {} span(s)",
        s.growths, s.bytes_mapped, s.new_spans
    )
}

fn with_vm(vm: &VirtualMemory, say: &dyn Fn(&str)) -> i32 {
    let start = heap::stats();
    if start.growths != 0 {
        say(&format!("heap-demo: FAIL grew before main: {start:?}"));
        return 2;
    }
    let total = BLOCKS as usize * BLOCK_WORDS as usize * 4 + GROWN_WORDS as usize * 8;
    if !load(0) {
        say("heap-demo: FAIL pattern mismatch in the first round");
        return 3;
    }
    let first = heap::stats();
    say(&format!(
        "heap-demo: ok {} KiB in {} vectors over a {} KiB arena, patterns intact; {}",
        total >> 10,
        BLOCKS + 1,
        first.arena_bytes >> 10,
        describe(&first)
    ));
    if first.growths == 0 || first.bytes_mapped < (total - first.arena_bytes) as u64 {
        say("heap-demo: FAIL the heap did not grow enough");
        return 3;
    }
    if !load(0xA5) {
        say("heap-demo: FAIL pattern mismatch in the second round");
        return 3;
    }
    let second = heap::stats();
    if second != first {
        say(&format!(
            "heap-demo: FAIL the second round grew the heap: {}",
            describe(&second)
        ));
        return 3;
    }
    say(&format!(
        "heap-demo: ok freed and allocated {} KiB again without growing",
        total >> 10
    ));

    // The heap's mappings cannot be unmapped or re-protected behind its
    // back. A block larger than the arena lies in grown memory.
    let heap_page = {
        let probe: Vec<u8> = Vec::with_capacity(first.arena_bytes + 4096);
        probe.as_ptr() as u64 & !4095
    };
    match vm.unmap(heap_page, 4096) {
        Err(capos_rt::CallError::InvalidArgument(why)) => say(&format!(
            "heap-demo: ok unmapping heap memory refused: {why}"
        )),
        other => {
            say(&format!("heap-demo: FAIL unmapping heap memory: {other:?}"));
            return 4;
        }
    }

    // Use up the frame quota with mappings of our own, largest first.
    let mut taken = 0u64;
    for chunk in [1u64 << 20, 64 << 10, 4 << 10] {
        while vm.map(0, chunk, prot::READ | prot::WRITE).is_ok() {
            taken += chunk;
        }
    }
    let want = second.arena_bytes + second.bytes_mapped as usize + (1 << 20);
    say(&format!(
        "heap-demo: mapped the rest of the frame quota ({} KiB); allocating {} KiB",
        taken >> 10,
        want >> 10
    ));
    let v: Vec<u8> = black_box(Vec::with_capacity(want));
    say(&format!(
        "heap-demo: FAIL {} bytes allocated past the frame quota",
        black_box(v).capacity()
    ));
    5
}

fn without_vm(say: &dyn Fn(&str)) -> i32 {
    let s = heap::stats();
    say(&format!(
        "heap-demo: no VirtualMemory capability; allocating 1024 KiB over a {} KiB arena",
        s.arena_bytes >> 10
    ));
    let v: Vec<u8> = black_box(Vec::with_capacity(1 << 20));
    say(&format!(
        "heap-demo: FAIL {} bytes allocated without VirtualMemory",
        black_box(v).capacity()
    ));
    6
}
