//! Registration events from captured DevKit logs (fixtures written from devkit-facts.md §6).

use tasks::logs::{EventParser, LogEvent};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/logs")
            .join(name),
    )
    .unwrap()
}

fn events(name: &str) -> Vec<LogEvent> {
    EventParser::parse_all(&read(name))
}

fn kinds(ev: &[LogEvent]) -> Vec<String> {
    ev.iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

const THUMB: &str = "7308B0F4F4ABEAD9AD01A9E1E7172F652B44886F623ACDE9C0193A630D3C7857";

#[test]
fn rejected_certificate_401002_explains_and_points_at_inspect_cert() {
    let ev = events("dps-401002.log");
    // The failure is reported at DPS's final answer; the SDK's error lines that unwind it
    // (`Provisioning Failure: ...`, `Failure encountered on registration!`) add nothing.
    assert_eq!(
        kinds(&ev),
        [
            "boot",
            "identity",
            "identity",
            "identity",
            "status",
            "status",
            "status",
            "registrationRequest",
            "dpsError",
            "failed"
        ]
    );
    assert_eq!(
        ev[3],
        LogEvent::Identity {
            mac: Some("c0bdd1a2b3c4".into()),
            firmware_version: Some("1.6.2".into()),
            alias_cert_sha256: Some(THUMB.into())
        }
    );
    assert_eq!(
        ev[8],
        LogEvent::DpsError {
            http_status: Some(401),
            error_code: Some(401002),
            message: Some("Invalid certificate".into()),
            tracking_id: Some("6a0f3d3e-8a70-4d2e-bf55-5d0c3c0e2a11".into())
        }
    );
    let LogEvent::Failed {
        reason,
        hint,
        error_code,
        http_status,
        ..
    } = &ev[9]
    else {
        unreachable!()
    };
    assert_eq!((*error_code, *http_status), (Some(401002), Some(401)));
    assert!(reason.contains("the enrolled certificate does not match this device's identity"));
    assert!(hint.contains("compare the enrolled certificate with one generated now"));
    let json = serde_json::to_value(&ev[9]).unwrap();
    assert_eq!(json["kind"], "failed");
    assert_eq!(
        json["nextActions"],
        serde_json::json!([{"action": "regenerateCert"}, {"action": "enroll"}])
    );
}

#[test]
fn successful_assignment() {
    let ev = events("dps-assigned.log");
    let statuses: Vec<_> = ev
        .iter()
        .filter_map(|e| {
            if let LogEvent::Status { status, .. } = e {
                Some(status.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        statuses,
        [
            "wifiConnected",
            "dpsStarted",
            "connected",
            "registering",
            "assigning"
        ]
    );
    let assigned: Vec<_> = ev
        .iter()
        .filter(|e| matches!(e, LogEvent::Assigned { .. }))
        .collect();
    assert_eq!(
        assigned,
        [&LogEvent::Assigned {
            hub: "devkit-hub.azure-devices.net".into(),
            device_id: Some("az-c0bdd1a2b3c4v1v6v2".into())
        }]
    );
    assert!(!kinds(&ev).iter().any(|k| k == "failed" || k == "dpsError"));
}

#[test]
fn uds_missing() {
    let ev = events("uds-missing.log");
    let missing: Vec<_> = ev
        .iter()
        .filter(|e| matches!(e, LogEvent::UdsMissing { .. }))
        .collect();
    assert_eq!(missing.len(), 1, "one event for the two lines");
    let LogEvent::UdsMissing {
        hint, next_actions, ..
    } = missing[0]
    else {
        unreachable!()
    };
    assert!(hint.contains("set a UDS"), "{hint}");
    let names: Vec<&str> = next_actions.iter().map(|n| n.action.name()).collect();
    assert_eq!(names, ["enterConfigMode", "setUds"]);
}

#[test]
fn wifi_failure_and_the_registration_failure_it_causes() {
    let ev = events("wifi-failed.log");
    assert_eq!(
        kinds(&ev),
        ["boot", "identity", "identity", "wifiFailed", "failed"]
    );
    let LogEvent::Failed { reason, hint, .. } = &ev[4] else {
        unreachable!()
    };
    assert!(reason.contains("Wi-Fi"));
    assert!(hint.contains("Wi-Fi name and password"), "{hint}");
}

#[test]
fn crlf_variants_garbage_and_partial_lines() {
    let bytes = read("crlf-garbage.log");
    let ev = EventParser::parse_all(&bytes);
    assert_eq!(
        kinds(&ev),
        [
            "boot",
            "identity",
            "identity",
            "status",
            "registrationRequest",
            "dpsError",
            "failed"
        ]
    );
    assert!(matches!(
        &ev[6],
        LogEvent::Failed {
            error_code: Some(401002),
            ..
        }
    ));
    // Byte-at-a-time gives the same events.
    let mut p = EventParser::new();
    let mut one_by_one = Vec::new();
    for b in &bytes {
        one_by_one.extend(p.push_bytes(std::slice::from_ref(b)));
    }
    one_by_one.extend(p.finish());
    assert_eq!(one_by_one, ev);
}

#[test]
fn captures_with_monitor_timestamps() {
    let ev = events("monitor-timestamps.log");
    assert_eq!(
        kinds(&ev),
        ["boot", "identity", "identity", "identity", "status", "assigned"]
    );
}

#[test]
fn a_new_boot_forgets_the_previous_attempt() {
    let mut all = read("dps-401002.log");
    all.extend(read("dps-assigned.log"));
    let ev = EventParser::parse_all(&all);
    assert_eq!(kinds(&ev).iter().filter(|k| *k == "failed").count(), 1);
    assert_eq!(kinds(&ev).iter().filter(|k| *k == "assigned").count(), 1);
    assert_eq!(kinds(&ev).iter().filter(|k| *k == "boot").count(), 2);
}

#[test]
fn sdk_style_trace_with_headers_and_windows_paths() {
    let ev = events("dps-401002-windows-sdk.log");
    assert_eq!(
        kinds(&ev),
        ["boot", "status", "status", "status", "dpsError", "failed"]
    );
    assert_eq!(
        ev[1],
        LogEvent::Status {
            status: "wifiConnected".into(),
            detail: None
        },
        "an SSID with `Error` in it is still a connection"
    );
    let LogEvent::Failed {
        error_code, hint, ..
    } = &ev[5]
    else {
        unreachable!()
    };
    assert_eq!(*error_code, Some(401002));
    assert!(hint.contains("compare the enrolled certificate"));
}

#[test]
fn dice_init_failure_logged_as_an_sdk_error_is_uds_missing() {
    let ev = events("dice-init-failed-sdk.log");
    assert_eq!(kinds(&ev), ["status", "status", "udsMissing"]);
}

/// The corpus of realistic whole logs (`fixtures/device-logs`, sources in its expected.json):
/// byte by byte gives the same events as the whole file, and the last one is the expected
/// kind. (`server/tests/cli_logs.rs` checks the whole final event through `devkit logs`.)
#[test]
fn device_log_corpus_whole_and_byte_by_byte() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/device-logs");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    assert_eq!(
        logs.len(),
        expected.as_object().unwrap().len(),
        "every log has its expectation"
    );
    for path in logs {
        let name = path.file_name().unwrap().to_str().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let whole = EventParser::parse_all(&bytes);
        let mut p = EventParser::new();
        let mut one_by_one: Vec<LogEvent> = bytes
            .iter()
            .flat_map(|b| p.push_bytes(std::slice::from_ref(b)))
            .collect();
        one_by_one.extend(p.finish());
        assert_eq!(whole, one_by_one, "{name}");
        let last = kinds(&whole).pop();
        assert_eq!(
            last.as_deref(),
            expected[name]["final"]["kind"].as_str(),
            "{name}: {whole:#?}"
        );
    }
}
