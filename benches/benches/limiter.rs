//! Rate limiter check cost: ours against governor's keyed and direct limiters, in the same run,
//! with 1, 10,000 and 1,000,000 keys (a random key per check), on the allowed and the denied
//! path. `cargo bench -p benches --bench limiter`.
//!
//! The key sequence is fixed and replayed; at a million keys it is 8M keys long (64 MiB, read
//! in order, so the prefetcher hides it), so the keys a run touches are spread over the whole
//! table and not the few that fit in the caches.

use benches::{GovernorDirect, GovernorKeyed, Limiter, Ours, Path, key_sequence, prime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// The length of the replayed key sequence (a power of two) for a table of `keys` keys.
fn sequence_length(keys: u64) -> usize {
    if keys >= 1_000_000 { 1 << 23 } else { 1 << 16 }
}

fn bench_path(c: &mut Criterion, path: Path) {
    let mut group = c.benchmark_group(format!("limiter_{}", path.name()));
    group.throughput(Throughput::Elements(1));
    for keys in [1u64, 10_000, 1_000_000] {
        let length = sequence_length(keys);
        let sequence = key_sequence(keys, length, keys);
        let mut limiters: Vec<Box<dyn Limiter>> = vec![
            Box::new(Ours::new(path, keys as usize)),
            Box::new(GovernorKeyed::new(path)),
        ];
        if keys == 1 {
            limiters.push(Box::new(GovernorDirect::new(path)));
        }
        for limiter in &limiters {
            prime(limiter.as_ref(), keys);
            let mut position = 0;
            group.bench_with_input(BenchmarkId::new(limiter.name(), keys), &keys, |b, _| {
                b.iter(|| {
                    let key = sequence[position];
                    position = (position + 1) & (length - 1);
                    black_box(limiter.check(black_box(key)))
                })
            });
        }
    }
    group.finish();
}

fn limiter(c: &mut Criterion) {
    bench_path(c, Path::Allowed);
    bench_path(c, Path::Denied);
}

criterion_group!(benches, limiter);
criterion_main!(benches);
