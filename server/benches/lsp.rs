//! Daemon benchmarks (criterion; `cargo bench -p devkit --bench lsp`, which builds the release
//! binary it measures).
//!
//! - `lsp/start_to_initialize`: spawn `devkit lsp`, send `initialize`, read the reply (the
//!   editor's wait before the server is usable). Target: <= 5 ms.
//! - `lsp/round_trip/codeLens`: one request/response through the framing, the router and
//!   back, on a running daemon (a document the server does not track). Target: median
//!   <= 0.2 ms.
//! - `lsp/round_trip/devkit_identity`: a custom request that reads project state from disk
//!   on a blocking thread (params decoding, job-free handler, result encoding).
//!
//! Under `cargo test --all-targets` criterion runs each routine once, as a smoke test.

#[path = "../tests/lsp_client/mod.rs"]
mod lsp_client;

use criterion::{criterion_group, criterion_main, Criterion};
use lsp_client::Lsp;
use serde_json::json;
use std::time::{Duration, Instant};

fn start_to_initialize(c: &mut Criterion) {
    let mut g = c.benchmark_group("lsp");
    g.sample_size(30);
    g.bench_function("start_to_initialize", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let mut lsp = Lsp::start(&[]);
                let id = lsp.send_request(
                    "initialize",
                    json!({"processId": null, "rootUri": null, "capabilities": {}}),
                );
                let r = lsp.response(id);
                total += t.elapsed();
                assert!(r.get("result").is_some());
                lsp.notify("initialized", json!({}));
                let (status, _) = lsp.shutdown_and_exit();
                assert!(status.success());
            }
            total
        })
    });
    g.finish();
}

fn round_trip(c: &mut Criterion) {
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(false);
    let project = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("lsp/round_trip");
    g.bench_function("codeLens", |b| {
        b.iter(|| {
            let r = lsp.request(
                "textDocument/codeLens",
                json!({"textDocument": {"uri": "file:///bench/untracked.ino"}}),
            );
            assert!(r.get("result").is_some());
            // Notifications (devkit/status) are not part of the round trip.
            lsp.inbox.clear();
        })
    });
    g.bench_function("devkit_identity", |b| {
        b.iter(|| {
            let r = lsp.request("devkit/identity", json!({"projectDir": project.path()}));
            assert!(r.get("result").is_some());
            lsp.inbox.clear();
        })
    });
    g.finish();
    let (status, _) = lsp.shutdown_and_exit();
    assert!(status.success());
}

criterion_group!(benches, start_to_initialize, round_trip);
criterion_main!(benches);
