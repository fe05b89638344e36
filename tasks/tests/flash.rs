//! Flashing: the layout guards (checked before any probe is opened), the no-probe path with
//! the real probe-rs (no probe is attached on the test machines), and OpenOCD's real no-probe
//! error with Debian's `openocd` (installed by scripts/deps.sh).

use std::sync::{Arc, Mutex};
use tasks::error::DomainError;
use tasks::flash::{flash, guard, openocd, Backend, FlashError, FlashImage};
use tasks::progress::{CancellationToken, Progress, ProgressEvent};

fn image(len: usize, address: u32) -> FlashImage {
    FlashImage {
        bin_path: "/nonexistent/test.bin".into(),
        bin: vec![0xA5; len],
        map: None,
        dps: None,
        address,
    }
}

async fn run(img: &FlashImage, backend: &Backend) -> (Result<(), FlashError>, Vec<ProgressEvent>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let progress = Progress::new(move |e| ev.lock().unwrap().push(e));
    let r = flash(img, backend, &progress, &CancellationToken::new()).await;
    let events = events.lock().unwrap().clone();
    (r, events)
}

#[tokio::test]
async fn guards_refuse_before_any_probe_is_opened() {
    let cases = [
        (image(0, guard::APP_BASE), "empty"),
        (image(guard::MAX_APP_SIZE + 1, guard::APP_BASE), "999424"),
        (image(16, 0x0800_0000), "bootloader"),
        (image(16, guard::APP_BASE - 4), "bootloader"),
        (image(16, guard::FLASH_END), "past the end"),
        (image(8, guard::FLASH_END - 4), "past the end"),
    ];
    for backend in [
        Backend::ProbeRs { probe: None },
        Backend::OpenOcd {
            openocd: Some("/nonexistent/openocd".into()),
        },
        Backend::Sim {
            state_dir: "/nonexistent".into(),
            trusted_ca_pem: None,
        },
    ] {
        for (img, needle) in &cases {
            let (r, events) = run(img, &backend).await;
            let e = r.unwrap_err();
            assert!(e.is_invalid_input(), "{e}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(events.is_empty(), "nothing started: {events:?}");
        }
    }
}

#[tokio::test]
async fn no_probe_with_real_probe_rs_lists_what_was_found() {
    let (r, events) = run(
        &image(1024, guard::APP_BASE),
        &Backend::ProbeRs { probe: None },
    )
    .await;
    let e = r.unwrap_err();
    let FlashError::NoProbe { found, .. } = &e else {
        panic!("expected no probe, got {e}")
    };
    let msg = e.to_string();
    assert!(msg.contains("0483:374b"), "{msg}");
    // The message lists every probe probe-rs saw, or says there were none.
    if found.is_empty() {
        assert!(msg.contains("probes found: none"), "{msg}");
    } else {
        assert!(found.iter().all(|f| msg.contains(f.as_str())), "{msg}");
    }
    assert!(events.iter().any(|e| matches!(e, ProgressEvent::Report { message, .. } if message.contains("Looking for the probe"))));

    // An explicit selector is named in the error; a malformed one is invalid input.
    let (r, _) = run(
        &image(1024, guard::APP_BASE),
        &Backend::ProbeRs {
            probe: Some("1366:0101:000123".into()),
        },
    )
    .await;
    assert!(r.unwrap_err().to_string().contains("1366:0101:000123"));
    let (r, _) = run(
        &image(1024, guard::APP_BASE),
        &Backend::ProbeRs {
            probe: Some("st-link".into()),
        },
    )
    .await;
    assert!(r.unwrap_err().is_invalid_input());
}

#[tokio::test]
async fn openocd_real_no_probe_error() {
    let Ok(exe) = which::which("openocd") else {
        if std::env::var_os("DEVKIT_SKIP_OPENOCD").is_some() {
            eprintln!("openocd not installed; skipped (DEVKIT_SKIP_OPENOCD)");
            return;
        }
        panic!("openocd is not installed: run scripts/deps.sh (or set DEVKIT_SKIP_OPENOCD=1 to skip this test)");
    };
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("DevKitDPS.ino.bin");
    std::fs::write(&bin, vec![0u8; 256]).unwrap();
    let img = FlashImage::load(&bin).unwrap();
    let (r, events) = run(&img, &Backend::OpenOcd { openocd: Some(exe) }).await;
    let e = r.unwrap_err();
    assert!(
        matches!(
            e,
            FlashError::NoProbe { .. } | FlashError::PermissionDenied { .. }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("ST-LINK"), "{e}");
    // The vendor's command was run.
    let expected = format!("program {{{}}} verify reset 0x800c000", bin.display());
    assert!(
        events.iter().any(
            |e| matches!(e, ProgressEvent::Report { message, .. } if message.contains(&expected))
        ),
        "{events:?}"
    );
    assert_eq!(openocd::args(&bin, guard::APP_BASE).unwrap()[5], expected);
}
