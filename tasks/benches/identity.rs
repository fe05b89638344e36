//! Identity benchmarks (criterion; run with `cargo bench -p tasks --bench identity`).
//!
//! - `derive/one_device`: the whole derivation + both certificates for one device.
//! - `generate_cert_process/400k_image`: one `devkit generate-cert` process end to end on a
//!   400 KB image (needs `target/release/devkit`: `cargo build --release -p devkit`; skipped
//!   with a message otherwise). Target: <= 6 ms wall.
//! - `batch/devices`: a 10,000-device batch on one core (one image, digests computed once),
//!   alias certificate PEM included. Target: >= 4,000 certificates/s.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) the batch shrinks to 10 devices so
//! the test run stays fast.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::{Path, PathBuf};
use tasks::identity::{self, FirmwareImage, RegistrationId, Uds};

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dice-vectors/auto-id-medium")
}

/// The medium vector's image padded to 400 KB (the RIoT regions are unchanged).
fn image_400k() -> (Vec<u8>, String) {
    let dir = vector_dir();
    let mut bin = std::fs::read(dir.join("DevKitDPS.ino.bin")).expect("vector bin");
    bin.resize(400 * 1024, 0xff);
    let map = std::fs::read_to_string(dir.join("DevKitDPS.ino.map")).expect("vector map");
    (bin, map)
}

fn uds_for(i: u64) -> Uds {
    let mut hex = format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5a5a);
    hex.replace_range(0..2, "a5");
    Uds::parse(&hex).expect("uds")
}

fn bench_derive(c: &mut Criterion) {
    let (bin, map) = image_400k();
    let image = FirmwareImage::from_parts(bin, &map).expect("image");
    let uds = uds_for(1);
    let id = RegistrationId::parse("bench-device").expect("id");
    c.bench_function("derive/one_device", |b| {
        b.iter(|| identity::derive(&uds, &image, &id).expect("derive"))
    });
}

fn bench_batch(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = if full { 10_000 } else { 10 };
    let (bin, map) = image_400k();
    let image = FirmwareImage::from_parts(bin, &map).expect("image");
    let devices: Vec<(Uds, RegistrationId)> = (0..n)
        .map(|i| {
            (
                uds_for(i),
                RegistrationId::parse(&format!("factory-{i:05}")).expect("id"),
            )
        })
        .collect();
    if full {
        // Wall time is shared with whatever else runs on the machine; report CPU time too, so
        // "certificates per second per core" can be read on a busy machine.
        if let Some(cpu) = thread_cpu_ns() {
            let wall = std::time::Instant::now();
            for (uds, id) in &devices {
                std::hint::black_box(
                    identity::derive(uds, &image, id)
                        .expect("derive")
                        .alias_cert_pem(),
                );
            }
            let cpu = (thread_cpu_ns().unwrap_or(cpu) - cpu) as f64 / 1e9;
            let wall = wall.elapsed().as_secs_f64();
            eprintln!(
                "batch/devices: {n} devices in {cpu:.3} s CPU ({:.0} certificates/s per core), {wall:.3} s wall ({:.0}/s)",
                n as f64 / cpu,
                n as f64 / wall
            );
        }
    }
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(n));
    group.sample_size(10);
    group.bench_function("devices", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for (uds, id) in &devices {
                let d = identity::derive(uds, &image, id).expect("derive");
                bytes += d.alias_cert_pem().len();
            }
            bytes
        })
    });
    group.finish();
}

/// CPU time of the current thread (Linux `/proc/thread-self/schedstat`, nanoseconds).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User + system CPU time of waited-for children (Linux `/proc/self/stat`, clock ticks of 10 ms).
fn children_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: field 3 is index 0, so cutime (16) and cstime (17) are 13 and 14.
    Some(fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?)
}

fn release_binary() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("release/devkit");
    bin.exists().then_some(bin)
}

fn bench_process(c: &mut Criterion) {
    let Some(devkit) = release_binary() else {
        eprintln!("generate_cert_process: skipped, build target/release/devkit first (cargo build --release -p devkit)");
        return;
    };
    // Build directory (image + map only, as arduino-cli leaves it) and a separate output area.
    let dir = tempfile::tempdir().expect("tempdir");
    let build = dir.path().join("build");
    std::fs::create_dir(&build).expect("mkdir");
    let (bin, map) = image_400k();
    std::fs::write(build.join("fw.ino.bin"), bin).expect("write");
    std::fs::write(build.join("fw.ino.map"), map).expect("write");
    std::fs::write(dir.path().join("uds"), "a5".repeat(32)).expect("write");
    let fresh = std::sync::atomic::AtomicUsize::new(0);
    let run = |out: PathBuf| {
        let status = std::process::Command::new(&devkit)
            .args(["generate-cert", "--build-dir"])
            .arg(&build)
            .arg("--uds-file")
            .arg(dir.path().join("uds"))
            .args(["--registration-id", "bench-device", "--json", "--out-dir"])
            .arg(&out)
            .arg("--project")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("spawn devkit");
        assert!(status.success());
    };
    let next_fresh = || {
        dir.path().join(format!(
            "out-{}",
            fresh.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    };
    let same = dir.path().join("out");
    if std::env::args().any(|a| a == "--bench") {
        // CPU time of the child processes (wall time depends on the machine's load and disk).
        let cpu = |label: &str, out: &dyn Fn() -> PathBuf| {
            let runs = 200;
            let Some(before) = children_cpu_ticks() else {
                return;
            };
            let wall = std::time::Instant::now();
            for _ in 0..runs {
                run(out());
            }
            let wall = wall.elapsed().as_secs_f64() * 1000.0 / runs as f64;
            let cpu = (children_cpu_ticks().unwrap_or(before) - before) as f64 * 10.0 / runs as f64;
            eprintln!("generate_cert_process/{label}: {cpu:.2} ms CPU per process (user+sys), {wall:.2} ms wall, mean of {runs} runs");
        };
        cpu("400k_image_rerun", &|| same.clone());
        cpu("400k_image_fresh", &next_fresh);
    }
    let mut group = c.benchmark_group("generate_cert_process");
    group.sample_size(50);
    // Outputs already present and identical (a re-run): read, compare, nothing written.
    group.bench_function("400k_image_rerun", |b| b.iter(|| run(same.clone())));
    // A fresh output directory every time: certificate and project state written (two fsyncs).
    group.bench_function("400k_image_fresh", |b| b.iter(|| run(next_fresh())));
    group.finish();
}

criterion_group!(benches, bench_derive, bench_batch, bench_process);
criterion_main!(benches);
