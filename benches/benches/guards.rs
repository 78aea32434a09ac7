//! The other guards' hot paths against what a user would write or pick instead, in one run.
//! `cargo bench -p benches --bench guards`.
//!
//! - API key check with 1, 100 and 1,000 keys, a wrong 43-character token (every key is
//!   compared): ours (SHA-256 of the token, then a constant-time scan of the digests) against a
//!   naive `==` loop and against `subtle` over the raw keys (no hashing).
//! - Sandbox read of a small file: ours (cap-std, lexical check, open beneath the root, fstat)
//!   against `canonicalize` + `starts_with` + `std::fs::read`, and against a plain `openat`
//!   read through cap-std with no check.
//! - Egress URL check without DNS: ours (WHATWG parse + scheme, userinfo, port, host allowlist)
//!   against `url::Url::parse` alone.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use reference_server::guard::api_keys::{ApiKeys, Principal};
use reference_server::guard::egress::EgressPolicy;
use reference_server::guard::sandbox::{Sandbox, SandboxLimits};
use std::hint::black_box;
use subtle::ConstantTimeEq;

fn api_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("api_key_check");
    let wrong = b"mcp-benchmark-wrong-token-0123456789abcdefg".to_vec();
    for count in [1usize, 100, 1_000] {
        let keys: Vec<Vec<u8>> = (0..count)
            .map(|i| format!("mcp-benchmark-key-{i:08}-0123456789abcdef").into_bytes())
            .collect();
        let store = ApiKeys::from_plain_keys(
            keys.iter().enumerate().map(|(i, k)| {
                (
                    Principal::new(format!("p{i}"), ["files:write"]),
                    k.as_slice(),
                )
            }),
            "bench",
        )
        .expect("valid keys");
        group.bench_with_input(BenchmarkId::new("ours", count), &count, |b, _| {
            b.iter(|| black_box(store.authenticate(black_box(&wrong)).is_ok()))
        });
        group.bench_with_input(BenchmarkId::new("naive-eq-loop", count), &count, |b, _| {
            b.iter(|| black_box(keys.iter().any(|k| k.as_slice() == black_box(&wrong[..]))))
        });
        group.bench_with_input(
            BenchmarkId::new("subtle-unhashed", count),
            &count,
            |b, _| {
                b.iter(|| {
                    let found = keys.iter().fold(subtle::Choice::from(0), |acc, k| {
                        acc | k.ct_eq(black_box(&wrong))
                    });
                    black_box(bool::from(found))
                })
            },
        );
    }
    group.finish();
}

fn sandbox(c: &mut Criterion) {
    let mut group = c.benchmark_group("sandbox_read_small_file");
    let root = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir_all(root.path().join("docs/sub")).expect("directories");
    std::fs::write(root.path().join("docs/sub/note.txt"), b"hello, sandbox\n").expect("a file");
    let ours = Sandbox::open(root.path(), SandboxLimits::default()).expect("the sandbox");
    let plain = cap_std::fs::Dir::open_ambient_dir(root.path(), cap_std::ambient_authority())
        .expect("the directory");
    let canonical_root = root.path().canonicalize().expect("a canonical root");
    group.bench_function("ours", |b| {
        b.iter(|| black_box(ours.read(black_box("docs/sub/note.txt")).is_ok()))
    });
    group.bench_function("canonicalize-starts_with-read", |b| {
        b.iter(|| {
            let path = canonical_root.join(black_box("docs/sub/note.txt"));
            let resolved = path.canonicalize().expect("exists");
            assert!(resolved.starts_with(&canonical_root));
            black_box(std::fs::read(resolved).is_ok())
        })
    });
    group.bench_function("plain-openat-read", |b| {
        b.iter(|| black_box(plain.read(black_box("docs/sub/note.txt")).is_ok()))
    });
    group.finish();
}

fn egress(c: &mut Criterion) {
    let mut group = c.benchmark_group("egress_check");
    let policy = EgressPolicy::new(["api.example.com", "docs.example.org"]);
    for (label, url) in [
        ("allowed", "https://api.example.com/v1/items?page=2"),
        ("loopback-literal", "http://127.0.0.1:8080/admin"),
        ("not-allowlisted", "https://evil.example.net/steal"),
    ] {
        group.bench_with_input(BenchmarkId::new("ours", label), &url, |b, url| {
            b.iter(|| black_box(policy.check(black_box(url)).is_ok()))
        });
        group.bench_with_input(BenchmarkId::new("url-parse-only", label), &url, |b, url| {
            b.iter(|| black_box(url::Url::parse(black_box(url)).is_ok()))
        });
    }
    group.finish();
}

criterion_group!(benches, api_keys, sandbox, egress);
criterion_main!(benches);
