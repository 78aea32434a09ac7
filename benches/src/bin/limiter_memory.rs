//! Bytes per tracked key, and what happens at the key cap.
//!
//! `cargo run --release -p benches --bin limiter_memory [KEYS]` counts the heap bytes each
//! limiter holds after admitting KEYS distinct `u64` keys (default 1,000,000; ours with its cap
//! at KEYS, its whole table allocated when it is built), with a counting
//! global allocator, then shows ours refusing new keys at its cap while governor grows.

use benches::{GovernorKeyed, Limiter, Ours, Path};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is only
// bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn held_by(build: impl FnOnce() -> Box<dyn Limiter>, keys: u64) -> (String, f64) {
    let before = ALLOCATED.load(Ordering::Relaxed);
    let limiter = build();
    for key in 0..keys {
        limiter.check(key);
    }
    let after = ALLOCATED.load(Ordering::Relaxed);
    let name = limiter.name().to_owned();
    drop(limiter);
    (name, (after - before) as f64 / keys as f64)
}

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    println!("| limiter | heap bytes per key at {keys} keys |");
    println!("|---|---|");
    for (name, per_key) in [
        held_by(|| Box::new(Ours::new(Path::Allowed, keys as usize)), keys),
        held_by(|| Box::new(GovernorKeyed::new(Path::Allowed)), keys),
    ] {
        println!("| {name} | {per_key:.1} |");
    }

    // At the cap: 1,000 keys allowed, 2,000 distinct live keys offered (denied path: each key's
    // window lasts 1,000 s, so none becomes idle).
    let ours = Ours::new(Path::Denied, 1_000);
    let refused_new = (0..2_000u64)
        .filter(|key| {
            matches!(
                ours.0.check(key),
                Err(reference_server::guard::rate_limit::RateLimitError::TooManyKeys)
            )
        })
        .count();
    let governor = GovernorKeyed::new(Path::Denied);
    for key in 0..2_000u64 {
        governor.check(key);
    }
    println!(
        "\nAt a cap of 1,000 keys, 2,000 distinct live keys: ours tracks {} and refuses {refused_new} new keys (fails closed); governor has no cap and tracks {}.",
        ours.0.tracked_keys(),
        governor.0.len()
    );
}
