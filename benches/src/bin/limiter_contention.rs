//! Rate limiter throughput under contention, with a fixed amount of work per thread (criterion's
//! `iter_custom` under-reports contention, so this is a plain binary).
//!
//! `cargo run --release -p benches --bin limiter_contention [OPS_PER_THREAD]` prints, for 1, 2
//! and 4 threads, each limiter's wall time per check and its total checks per second, when all
//! threads hit one key, when each thread has its own key, and when they draw from 10,000 or
//! from 1,000,000 keys (ours with its cap at the key count then: the 20-byte-a-key table).
//! Every check is on the allowed path.

use benches::{GovernorKeyed, Limiter, Ours, Path, key_sequence, prime};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

#[derive(Clone, Copy)]
enum Keys {
    Shared,
    PerThread,
    Random10k,
    Random1M,
}

impl Keys {
    fn name(self) -> &'static str {
        match self {
            Keys::Shared => "one shared key",
            Keys::PerThread => "a key per thread",
            Keys::Random10k => "random of 10k keys",
            Keys::Random1M => "random of 1M keys",
        }
    }

    /// The keys primed before the run, and so the table's size.
    fn count(self) -> u64 {
        match self {
            Keys::Shared | Keys::PerThread => 4,
            Keys::Random10k => 10_000,
            Keys::Random1M => 1_000_000,
        }
    }
}

/// Runs `ops` checks on each of `threads` threads at once; returns the wall time in seconds.
fn run(limiter: &dyn Limiter, threads: usize, keys: Keys, ops: usize) -> f64 {
    let sequences: Vec<Vec<u64>> = (0..threads)
        .map(|t| match keys {
            Keys::Shared => vec![0; 1024],
            Keys::PerThread => vec![t as u64; 1024],
            Keys::Random10k => key_sequence(10_000, 1 << 16, t as u64),
            // Longer than the caches hold, so the run touches the whole table.
            Keys::Random1M => key_sequence(1_000_000, 1 << 22, t as u64),
        })
        .collect();
    let barrier = Barrier::new(threads + 1);
    let mut elapsed = 0.0;
    std::thread::scope(|scope| {
        for sequence in &sequences {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                let mask = sequence.len() - 1;
                for i in 0..ops {
                    black_box(limiter.check(sequence[i & mask]));
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let started = Instant::now();
        barrier.wait();
        elapsed = started.elapsed().as_secs_f64();
    });
    elapsed
}

fn main() {
    let ops: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000_000);
    println!(
        "{ops} checks per thread; machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| keys | threads | limiter | ns per check (wall / checks per thread) | million checks/s in all |"
    );
    println!("|---|---|---|---|---|");
    for keys in [
        Keys::Shared,
        Keys::PerThread,
        Keys::Random10k,
        Keys::Random1M,
    ] {
        for threads in [1, 2, 4] {
            let cap = (keys.count() as usize).max(100_000);
            let limiters: Vec<Box<dyn Limiter>> = vec![
                Box::new(Ours::new(Path::Allowed, cap)),
                Box::new(GovernorKeyed::new(Path::Allowed)),
            ];
            for limiter in &limiters {
                prime(limiter.as_ref(), keys.count());
                // One warm-up pass, then the measured one.
                run(limiter.as_ref(), threads, keys, ops / 10);
                let seconds = run(limiter.as_ref(), threads, keys, ops);
                println!(
                    "| {} | {threads} | {} | {:.1} | {:.1} |",
                    keys.name(),
                    limiter.name(),
                    seconds * 1e9 / ops as f64,
                    (threads * ops) as f64 / seconds / 1e6
                );
            }
        }
    }
}
