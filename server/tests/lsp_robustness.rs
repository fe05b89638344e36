//! `devkit lsp` under hostile or careless clients: unreadable messages, huge declared bodies,
//! many long requests at once, cancellation of blocking work, the input closing while jobs
//! run, concurrent certificate generation. Every wait is a generous liveness bound.

// The tests that run the arduino-cli stand-in (a shell script) are Unix-only.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

mod lsp_client;

#[path = "../../tasks/tests/fixtures/arduino-cli-standin/project.rs"]
mod standin;

use lsp_client::{error_code, fixture, Lsp};
use serde_json::json;
use std::time::Duration;
use tasks::sim::{SimOptions, VirtualDevKit};

fn started() -> Lsp {
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(true);
    lsp
}

fn raw(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

const CANARY: &str = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffee1234";

#[test]
fn unreadable_messages_are_answered_and_the_daemon_keeps_serving() {
    let mut lsp = started();
    let deep = "[".repeat(100_000);
    let bad: Vec<(Vec<u8>, i64)> = vec![
        (raw(&[b'{', 0xc3, 0x28, b'}']), -32700),
        (raw(format!("{{\"uds\": \"{CANARY}\"").as_bytes()), -32700),
        (raw(deep.as_bytes()), -32700),
        (
            format!("Content-Length: 12x\r\n\r\n{{\"uds\":\"{CANARY}\"}}").into_bytes(),
            -32700,
        ),
        (raw(b"[]"), -32600),
    ];
    for (bytes, code) in bad {
        lsp.send_raw(&bytes);
        let r = lsp.null_id_error();
        assert_eq!(error_code(&r), code, "{r}");
        assert!(!r.to_string().contains(CANARY), "{r}");
        // Still serving, and in step: the next request gets its own answer.
        let r = lsp.request("devkit/listPorts", json!({}));
        assert!(r.get("result").is_some(), "{r}");
    }
    // A huge declared body is refused at once and skipped, not buffered.
    lsp.send_raw(b"Content-Length: 4000000000\r\n\r\n");
    let r = lsp.null_id_error();
    assert_eq!(error_code(&r), -32600, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("at most"),
        "{r}"
    );
    lsp.close_stdin();
    let status = lsp.wait_exit();
    assert!(!status.success(), "exit without shutdown");
    assert!(!lsp.stderr().contains(CANARY));
}

#[test]
fn a_lone_surrogate_from_javascript_is_replaced_not_fatal() {
    let mut lsp = started();
    let id = 99;
    // What Node's JSON.stringify writes for a string holding half a surrogate pair.
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"devkit/listPorts","params":{{"note":"broken \ud800 text"}}}}"#
    );
    lsp.send_raw(&raw(body.as_bytes()));
    let r = lsp.response(id);
    assert!(r.get("result").is_some(), "{r}");
    let (status, _) = lsp.shutdown_and_exit();
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn many_long_requests_starve_neither_other_requests_nor_cancellation() {
    // 80 builds that each take long (more than the old limit of 64 running requests).
    let p = standin::Project::new(true);
    let slow = p.root().join("bin/slow-arduino-cli");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\n[ \"$1\" = compile ] && sleep 15\nexec '{}' \"$@\"\n",
            p.arduino_cli().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut lsp = started();
    let ids: Vec<i64> = (0..80)
        .map(|i| {
            let build_dir = p.root().join(format!(".devkit/build-{i}"));
            lsp.send_request("devkit/build", json!({"projectDir": p.root(), "arduinoCli": slow, "idScope": "0ne0001A2B3", "buildDir": build_dir, "rebuild": true}))
        })
        .collect();
    let r = lsp.request("devkit/listPorts", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    lsp.notify("$/cancelRequest", json!({"id": ids[79]}));
    let r = lsp.response(ids[79]);
    assert_eq!(error_code(&r), -32800, "{r}");
    lsp.notify("$/cancelRequest", json!({"id": ids[0]}));
    let r = lsp.response(ids[0]);
    assert_eq!(error_code(&r), -32800, "{r}");
    // The input closes with 78 builds running: the daemon goes at once.
    lsp.close_stdin();
    let status = lsp.wait_exit();
    assert!(!status.success());
}

#[test]
fn closing_the_input_ends_the_daemon_and_frees_the_port_while_a_job_waits_on_it() {
    // User mode: setUds waits (up to a minute) for configuration mode, in a blocking loop.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SimOptions::new(dir.path());
    opts.config_mode = false;
    let sim = VirtualDevKit::start(opts).unwrap();
    let port = sim.port_path().display().to_string();
    let mut lsp = started();
    lsp.request("devkit/monitor/open", json!({"port": port}));
    let _ = lsp.send_request("devkit/setUds", json!({"port": port, "uds": CANARY}));
    let guidance = lsp.wait_for("$/progress", Duration::from_secs(10), |m| {
        m["params"]["value"]["message"]
            .as_str()
            .is_some_and(|s| s.contains("configuration mode"))
    });
    assert!(guidance.is_some(), "{}", lsp.stderr());
    lsp.close_stdin();
    let status = lsp.wait_exit();
    assert!(!status.success());
    // Nobody holds the port: it opens (exclusively) again (a pty, or the TCP console on
    // Windows: opened as every client opens a port name).
    let opened = tasks::console::SerialTransport::open(std::path::Path::new(&port), 115_200);
    assert!(opened.is_ok(), "{:?}", opened.err());
}

#[test]
fn concurrent_generate_cert_for_one_registration_id_keeps_every_identity() {
    let out = tempfile::tempdir().unwrap();
    let mut lsp = started();
    let udss: Vec<String> = (1..=6).map(|i| format!("{:x}", i + 9).repeat(64)).collect();
    let ids: Vec<i64> = udss
        .iter()
        .map(|uds| {
            lsp.send_request(
                "devkit/generateCert",
                json!({"buildDir": fixture("dice-vectors/auto-id-small"), "uds": uds, "registrationId": "dev-1", "outDir": out.path()}),
            )
        })
        .collect();
    let pems: Vec<String> = ids
        .iter()
        .map(|id| {
            let r = lsp.response(*id);
            r["result"]["aliasCertPem"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}"))
                .to_string()
        })
        .collect();
    let kept: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    for pem in &pems {
        assert!(kept.contains(pem), "an identity was lost without a backup");
    }
    let (status, _) = lsp.shutdown_and_exit();
    assert!(status.success());
}
