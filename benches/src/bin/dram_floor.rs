//! The physical floor under a limiter check at a million keys: one dependent load from a random
//! place in memory much larger than the caches (a DRAM miss), measured on this machine by
//! chasing pointers through a random cycle, so each load waits for the one before.
//!
//! `cargo run --release -p benches --bin dram_floor [MIB]` prints the time per load for a
//! working set of 32 KiB (L1), 1 MiB (L2), 16 MiB (about the L3) and MIB MiB (default 1024:
//! DRAM). A limiter check on a table of a million keys makes at least one such load, the key's
//! slot; the compact-limiter goal of issue 16 is measured against it.

use std::hint::black_box;
use std::time::Instant;

/// One node per 64-byte line, so that every load is its own cache line.
const LINE_WORDS: usize = 8;

/// Nanoseconds per load of a random cycle through `bytes` of memory.
fn chase(bytes: usize, loads: usize) -> f64 {
    let nodes = (bytes / (LINE_WORDS * 8)).max(2);
    // A random cyclic order of the nodes (Sattolo's shuffle gives one cycle through all).
    let mut order: Vec<usize> = (0..nodes).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..nodes).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % i as u64) as usize;
        order.swap(i, j);
    }
    let mut memory = vec![0usize; nodes * LINE_WORDS];
    for i in 0..nodes {
        memory[order[i] * LINE_WORDS] = order[(i + 1) % nodes] * LINE_WORDS;
    }
    let mut at = 0usize;
    for _ in 0..nodes.min(1 << 20) {
        at = memory[at];
    }
    let started = Instant::now();
    for _ in 0..loads {
        at = memory[at];
    }
    let elapsed = started.elapsed();
    black_box(at);
    elapsed.as_nanos() as f64 / loads as f64
}

fn main() {
    let dram_mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    println!("| working set | ns per dependent load |");
    println!("|---|---|");
    for (name, bytes) in [
        ("32 KiB (L1)", 32 << 10),
        ("1 MiB (L2)", 1 << 20),
        ("16 MiB (about the L3)", 16 << 20),
        ("DRAM", dram_mib << 20),
    ] {
        let label = if name == "DRAM" {
            format!("{dram_mib} MiB (DRAM)")
        } else {
            name.to_owned()
        };
        println!("| {label} | {:.1} |", chase(bytes, 20_000_000));
    }
}
