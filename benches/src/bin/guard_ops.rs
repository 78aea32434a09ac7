//! Runs one guard operation N times, for instruction counting under callgrind (stable where
//! wall-clock figures are noisy): `benches/callgrind.sh` runs this twice, with N and 2N, and
//! divides the difference by N, so set-up cost cancels out.
//!
//! `guard_ops OPERATION N`, OPERATION one of: limiter-allowed, limiter-denied, api-key-1000,
//! egress-allowed, sandbox-read.

use benches::{Limiter, Ours, Path, key_sequence, prime};
use reference_server::guard::api_keys::{ApiKeys, Principal};
use reference_server::guard::egress::EgressPolicy;
use reference_server::guard::sandbox::{Sandbox, SandboxLimits};
use std::hint::black_box;
use std::process::ExitCode;

const OPERATIONS: &[&str] = &[
    "limiter-allowed",
    "limiter-denied",
    "api-key-1000",
    "egress-allowed",
    "sandbox-read",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(operation), Some(count)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!(
            "usage: guard_ops OPERATION N; operations: {}",
            OPERATIONS.join(", ")
        );
        return ExitCode::from(2);
    };
    match operation.as_str() {
        "limiter-allowed" | "limiter-denied" => {
            let path = if operation == "limiter-allowed" {
                Path::Allowed
            } else {
                Path::Denied
            };
            let limiter = Ours::new(path, 20_000);
            prime(&limiter, 10_000);
            let keys = key_sequence(10_000, 1 << 16, 1);
            for i in 0..count {
                black_box(limiter.check(keys[i & ((1 << 16) - 1)]));
            }
        }
        "api-key-1000" => {
            let keys: Vec<Vec<u8>> = (0..1000)
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
            let wrong = b"mcp-benchmark-wrong-token-0123456789abcdefg";
            for _ in 0..count {
                black_box(store.authenticate(black_box(wrong)).is_ok());
            }
        }
        "egress-allowed" => {
            let policy = EgressPolicy::new(["api.example.com"]);
            for _ in 0..count {
                black_box(
                    policy
                        .check(black_box("https://api.example.com/v1/items?page=2"))
                        .is_ok(),
                );
            }
        }
        "sandbox-read" => {
            let root = tempfile::tempdir().expect("a temporary directory");
            std::fs::write(root.path().join("note.txt"), b"hello\n").expect("a file");
            let sandbox = Sandbox::open(root.path(), SandboxLimits::default()).expect("sandbox");
            for _ in 0..count {
                black_box(sandbox.read(black_box("note.txt")).is_ok());
            }
        }
        other => {
            eprintln!(
                "unknown operation {other:?}; operations: {}",
                OPERATIONS.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
