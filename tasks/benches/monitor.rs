//! Monitor throughput over a real pty: a writer plays a very chatty DevKit on the master
//! side, the monitor owns the slave side, a subscriber counts and checksums every byte.
//! Target: >= 10 MB/s with zero bytes lost (the run panics on any loss).
//!
//! `cargo bench -p tasks --bench monitor`

#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::io::Write;
use std::time::{Duration, Instant};
use tasks::monitor::{Monitor, MonitorEvent, MonitorOptions};

const TOTAL: usize = 8 * 1024 * 1024;

fn payload() -> Vec<u8> {
    let mut data = Vec::with_capacity(TOTAL);
    let mut i = 0u64;
    while data.len() < TOTAL {
        data.extend_from_slice(
            format!("Info: >>>Provisioning Status: PROV_DEVICE_REG_STATUS_ASSIGNING {i}\r\n")
                .as_bytes(),
        );
        i += 1;
    }
    data.truncate(TOTAL);
    data
}

fn checksum(acc: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(acc, |a, &b| a.wrapping_mul(31).wrapping_add(b as u64))
}

#[cfg(unix)]
fn bench(c: &mut Criterion) {
    let pair = nix::pty::openpty(None, None).expect("pty");
    let mut t = nix::sys::termios::tcgetattr(&pair.slave).expect("termios");
    nix::sys::termios::cfmakeraw(&mut t);
    nix::sys::termios::tcsetattr(&pair.slave, nix::sys::termios::SetArg::TCSANOW, &t).expect("raw");
    let path = nix::unistd::ttyname(&pair.slave).expect("ttyname");
    let master = std::fs::File::from(pair.master);
    let (monitor, mut rx) = Monitor::open_subscribed(
        &path,
        MonitorOptions {
            capacity: 1 << 16,
            line_events: false,
            ..Default::default()
        },
    )
    .expect("monitor");
    let data = payload();
    let expected = checksum(0, &data);

    let mut group = c.benchmark_group("monitor");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.sample_size(10);
    group.bench_function("pty_8MiB", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let mut writer = master.try_clone().expect("dup master");
                let chunk = data.clone();
                let start = Instant::now();
                let w = std::thread::spawn(move || writer.write_all(&chunk).expect("write"));
                let (mut got, mut sum) = (0usize, 0u64);
                while got < TOTAL {
                    match rx.blocking_recv() {
                        Ok(MonitorEvent::Data(bytes)) => {
                            got += bytes.len();
                            sum = checksum(sum, &bytes);
                        }
                        Ok(_) => {}
                        Err(e) => panic!("subscriber lost data: {e}"),
                    }
                }
                elapsed += start.elapsed();
                w.join().expect("writer");
                assert_eq!((got, sum), (TOTAL, expected), "bytes lost or corrupted");
            }
            elapsed
        })
    });
    group.finish();
    monitor.close();
}

#[cfg(unix)]
criterion_group!(benches, bench);
#[cfg(unix)]
criterion_main!(benches);

/// The benchmark drives a pty: Unix only.
#[cfg(not(unix))]
fn main() {
    eprintln!("the monitor benchmark needs a pseudo-terminal (Unix)");
}
