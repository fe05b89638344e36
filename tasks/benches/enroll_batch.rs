//! Bulk enrollment against the local DPS emulator (`cargo bench -p tasks --bench enroll_batch`):
//! enrollments per second for a fresh 1,000-row batch, unpaced, with 0 and with 20 injected
//! 429s (`Retry-After: 0`), then the re-run with nothing changed (journal only, no request).
//! Prints one line per case; the emulator's own work (it rewrites its state file per bulk
//! request) is part of the figure, so it is a floor for our side, not DPS's speed.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) the batch shrinks to 20 rows.

use std::path::Path;
use std::time::Instant;
use tasks::dps::emulator::{Emulator, EmulatorConfig};
use tasks::dps::enroll::{run_batch, BatchEnrollRequest};
use tasks::identity::{self, RegistrationId};
use tasks::progress::{CancellationToken, Progress};
use zeroize::Zeroizing;

fn line(dir: &Path, rows: usize) {
    let image = tasks::provision::sample::image().expect("sample image");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let mut manifest = String::new();
    for i in 0..rows {
        let id = format!("bench-{i:05}");
        let uds = identity::Uds::parse(&format!("{:064x}", i + 1)).expect("uds");
        let d = identity::derive(&uds, &image, &RegistrationId::parse(&id).expect("id"))
            .expect("derive");
        std::fs::write(certs.join(format!("{id}.pem")), d.alias_cert_pem()).expect("cert");
        manifest.push_str(&format!("{id}.uds,{id}\n"));
    }
    std::fs::write(dir.join("line.csv"), manifest).expect("manifest");
}

async fn case(name: &str, rows: usize, throttled: u32) {
    let dir = tempfile::tempdir().expect("tempdir");
    line(dir.path(), rows);
    let mut config = EmulatorConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().join("emulator"),
    );
    config.retry_after_secs = 0;
    let emu = Emulator::start(config).await.expect("emulator");
    emu.inject_429(throttled);
    let request = || BatchEnrollRequest {
        connection_string: Some(Zeroizing::new(
            emu.connection_string().to_secret_string().to_string(),
        )),
        ca_file: Some(emu.ca_certificate_path().to_path_buf()),
        manifest: dir.path().join("line.csv"),
        cert_dir: dir.path().join("certs"),
        requests_per_minute: Some(0),
        ..Default::default()
    };
    for pass in ["fresh", "re-run"] {
        let plan = request().plan().expect("plan");
        let start = Instant::now();
        let r = run_batch(plan, &Progress::none(), &CancellationToken::new())
            .await
            .expect("batch");
        let s = start.elapsed().as_secs_f64();
        assert_eq!(r.failed, 0);
        println!(
            "enroll_batch/{name}/{pass}: {rows} rows in {s:.3} s = {:.0} rows/s ({} requests)",
            rows as f64 / s,
            r.requests
        );
    }
    emu.shutdown().await;
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rows = if benching { 1000 } else { 20 };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        case("no-429", rows, 0).await;
        case("20x429", rows, 20).await;
    });
}
