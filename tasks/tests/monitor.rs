//! The monitor over real ptys (on Windows over the loopback TCP ports that stand for them):
//! framing, timestamps, log file, pause/resume without losing bytes, reconnect when the
//! virtual DevKit restarts on the same port.

#[path = "sim_support/mod.rs"]
mod support;

use std::io::Write;
use support::{collect_until, free_tcp_port, raw_device, stable_port, start_in};
use tasks::monitor::{Monitor, MonitorEvent, MonitorOptions, PortStatus};

fn lines(events: &[MonitorEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            if let MonitorEvent::Line(l) = e {
                Some(l.text.clone())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn frames_lines_with_timestamps_into_the_log_file() {
    let (mut master, path) = raw_device();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serial.log");
    let opts = MonitorOptions {
        timestamps: true,
        log_file: Some(log.clone()),
        ..Default::default()
    };
    let (m, mut rx) = Monitor::open_subscribed(&path, opts).unwrap();
    master.write_all(b"one\r\ntw").unwrap();
    master.write_all(b"o\rthree\nfour\r").unwrap();
    master.write_all(b"\npartial").unwrap();
    let ev = collect_until(
        &mut rx,
        |e| matches!(e, MonitorEvent::Line(l) if l.text == "four"),
    );
    assert_eq!(lines(&ev), ["one", "two", "three", "four"]);
    assert!(ev
        .iter()
        .all(|e| !matches!(e, MonitorEvent::Line(l) if l.timestamp.is_none())));
    m.close();
    let text = std::fs::read_to_string(&log).unwrap();
    let logged: Vec<&str> = text.lines().collect();
    assert_eq!(logged.len(), 5, "{text}");
    for (l, want) in logged
        .iter()
        .zip(["one", "two", "three", "four", "partial"])
    {
        assert!(
            l.starts_with('[') && l.ends_with(&format!("] {want}")) && l.len() == want.len() + 15,
            "{l}"
        );
    }
}

#[test]
fn pause_and_resume_lose_no_bytes() {
    let (mut master, path) = raw_device();
    let m = Monitor::open(&path, MonitorOptions::default()).unwrap();
    let mut rx = m.subscribe();
    master.write_all(b"before\r\n").unwrap();
    collect_until(
        &mut rx,
        |e| matches!(e, MonitorEvent::Line(l) if l.text == "before"),
    );
    let lent = m.pause().unwrap();
    collect_until(&mut rx, |e| {
        matches!(e, MonitorEvent::Status(PortStatus::Paused))
    });
    // Arrives while an exclusive user holds the port without reading it.
    master.write_all(b"while paused\r\nhalf").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(rx.try_recv().is_err(), "nothing read while paused");
    drop(lent);
    master.write_all(b" line\r\n").unwrap();
    let ev = collect_until(
        &mut rx,
        |e| matches!(e, MonitorEvent::Line(l) if l.text == "half line"),
    );
    assert_eq!(lines(&ev), ["while paused", "half line"]);
}

#[test]
fn reconnects_when_the_virtual_devkit_restarts_on_the_same_link() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("devkit-port");
    let tcp_port = free_tcp_port();
    let state = dir.path().join("state");
    let mut link = std::path::PathBuf::new();
    let (sim, _ev) = start_in(&state, false, |o| link = stable_port(o, &at, tcp_port));
    let (_monitor, mut rx) = Monitor::open_subscribed(&link, MonitorOptions::default()).unwrap();
    collect_until(
        &mut rx,
        |e| matches!(e, MonitorEvent::Line(l) if l.text.starts_with("Info: DevKit Firmware Version")),
    );
    drop(sim);
    collect_until(&mut rx, |e| {
        matches!(e, MonitorEvent::Status(PortStatus::Disconnected { .. }))
    });
    let (sim2, _ev2) = start_in(&state, false, |o| {
        stable_port(o, &at, tcp_port);
    });
    let ev = collect_until(
        &mut rx,
        |e| matches!(e, MonitorEvent::Line(l) if l.text.starts_with("Info: DevKit Firmware Version")),
    );
    assert!(ev.iter().any(|e| matches!(e, MonitorEvent::Status(PortStatus::Reconnected { path }) if *path == link.display().to_string())));
    assert!(
        lines(&ev)
            .iter()
            .any(|l| l.contains("MXChip - Microsoft IoT Developer Kit")),
        "the whole boot is seen after reconnecting"
    );
    drop(sim2);
}

#[test]
fn the_registry_keeps_one_monitor_per_port() {
    let (_master, path) = raw_device();
    let reg = tasks::monitor::PortRegistry::new();
    let a = reg.open(&path, MonitorOptions::default()).unwrap();
    let b = reg.open(&path, MonitorOptions::default()).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(reg.open_ports(), vec![path.clone()]);
    assert!(reg.close(&path));
    assert!(!reg.close(&path));
}

/// `monitorSend` of 70,000 characters to a virtual DevKit in configuration mode wedged the
/// port: a send is now bounded by the firmware's line, refused beyond it before anything is
/// written, and the port keeps answering; a cancelled send stops.
#[test]
fn a_send_is_bounded_by_the_firmware_line_and_cancellable() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, _events) = start_in(dir.path(), true, |_| {});
    let (m, mut rx) = Monitor::open_subscribed(sim.port_path(), Default::default()).unwrap();
    let started = std::time::Instant::now();
    let e = m.send(&vec![b'a'; 70_000]).unwrap_err();
    assert!(
        matches!(&e, tasks::monitor::MonitorError::Refused(i) if i.input == tasks::error::Input::Command),
        "{e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));

    let mut longest = vec![b'a'; tasks::console::MAX_LINE];
    longest.push(b'\r');
    m.send(&longest).expect("the longest line the DevKit reads");
    let cancel = tasks::progress::CancellationToken::new();
    cancel.cancel();
    assert!(matches!(
        m.send_cancellable(b"help\r", &cancel),
        Err(tasks::monitor::MonitorError::Cancelled)
    ));
    m.send(b"version\r").expect("the port still answers");
    let mut text = String::new();
    collect_until(&mut rx, |e| {
        if let MonitorEvent::Data(d) = e {
            text.push_str(&String::from_utf8_lossy(d));
        }
        text.contains("DevKitSDK version: 1.6.2")
    });
    m.close();
}
