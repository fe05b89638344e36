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

fn device_log(name: &str) -> Vec<LogEvent> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/device-logs")
        .join(name);
    EventParser::parse_all(&std::fs::read(path).unwrap())
}

/// Issue 22 item 1: the C SDK 1.3.4 prints DPS's 401 body again (`Unsuccessful json
/// encountered: {...}`) after the traced reply; the attempt still ends in its verdict, and
/// DPS's error is reported once, tracking ID included.
#[test]
fn the_repeated_reply_body_does_not_outlast_the_verdict() {
    let ev = device_log("sdk134-http-trace-no-enrollment-401002.log");
    assert_eq!(
        kinds(&ev),
        [
            "boot",
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
        ev[7],
        LogEvent::DpsError {
            http_status: Some(401),
            error_code: Some(401002),
            message: Some("Unauthorized".into()),
            tracking_id: Some("5b0e8d4c-2f1a-4c3b-9d8e-7f6a5b4c3d2e".into())
        }
    );
    // Without the trace, the `Unsuccessful json` line alone carries DPS's answer.
    let log = "Error: Time:x File:prov_device_ll_client.c Func:prov_transport_process_json_reply Line:663 Unsuccessful json encountered: {\"errorCode\":401002,\"trackingId\":\"5b0e8d4c-2f1a-4c3b-9d8e-7f6a5b4c3d2e\",\"message\":\"Unauthorized\"}\r\nError: Time:x File:prov_transport_http_client.c Func:prov_transport_http_dowork Line:941 Unable to process registration reply.\r\n";
    assert_eq!(
        kinds(&EventParser::parse_all(log.as_bytes())),
        ["dpsError", "failed"]
    );
}

/// Issue 22 item 2: over MQTT the reply status is only in the topic; a 401 there is an
/// authentication failure though the SDK reports PROV_DEVICE_RESULT_PARSING.
#[test]
fn mqtt_reply_topic_401_is_an_authentication_failure() {
    let ev = device_log("mqtt-trace-401-result-parsing.log");
    assert_eq!(
        ev[0],
        LogEvent::RegistrationRequest {
            id_scope: "0ne00012345".into(),
            registration_id: "gateway-7".into()
        },
        "the CONNECT trace's user name names the registration"
    );
    let LogEvent::Failed {
        reason,
        http_status,
        next_actions,
        ..
    } = ev.last().unwrap()
    else {
        panic!("{ev:?}")
    };
    assert_eq!(*http_status, Some(401));
    assert!(reason.contains("PROV_DEVICE_RESULT_PARSING"), "{reason}");
    assert!(
        reason.contains("refused the device's authentication"),
        "{reason}"
    );
    let names: Vec<&str> = next_actions.iter().map(|n| n.action.name()).collect();
    assert_eq!(names, ["regenerateCert", "enroll"]);
}

#[test]
fn status_tokens_in_any_wording() {
    let ev = device_log("agent-syslog-status-update-assigned.log");
    assert_eq!(
        ev,
        [
            LogEvent::Status {
                status: "connected".into(),
                detail: None
            },
            LogEvent::Status {
                status: "assigning".into(),
                detail: None
            },
            LogEvent::Assigned {
                hub: "contoso-hub.azure-devices.net".into(),
                device_id: Some("gateway-7".into())
            }
        ]
    );
}

/// Tracking IDs are not secrets: Azure support asks for them, in both of DPS's forms.
#[test]
fn tracking_ids_are_kept() {
    let ev = device_log("sdk-2362-mqtt-group-401002-tracking-id.log");
    assert_eq!(
        ev.iter()
            .find_map(|e| match e {
                LogEvent::DpsError { tracking_id, .. } => tracking_id.clone(),
                _ => None,
            })
            .as_deref(),
        Some("EEC3FA1F7928480391CDF3FE09366AE9-G2:-TimeStamp:2026-11-30T11:40:18.035277889+00:00")
    );
    let LogEvent::Failed {
        error_code, reason, ..
    } = ev.last().unwrap()
    else {
        panic!("{ev:?}")
    };
    assert_eq!(*error_code, Some(401002));
    assert!(reason.contains("Unauthorized access"), "{reason}");
    let ev = device_log("platformio-hub-link-unauthorized.log");
    let LogEvent::Failed { reason, .. } = ev.last().unwrap() else {
        panic!("{ev:?}")
    };
    assert!(
        reason.contains("Tracking ID:0b9c1d2e3f404a5b8c6d7e8f90a1b2c3-G:10"),
        "{reason}"
    );
}
