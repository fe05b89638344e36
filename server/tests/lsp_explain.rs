//! `devkit lsp`: a monitor opened with a DPS connection explains a 401002 the device reports:
//! its `failed` registration event carries which input differs from the enrollment and the one
//! action that fixes it (issue 22, item 8, in the editor). The device is a TCP port that says
//! what a DevKit's log says.

mod lsp_client;

use lsp_client::Lsp;
use serde_json::json;
use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;
use tasks::dps::emulator::{Emulator, EmulatorConfig};
use tasks::identity::{self, RegistrationId};

const REJECTED: &str = "PUT /0ne00000001/registrations/dev-lsp-explain/register?api-version=2019-03-31 HTTP/1.1\r\nHTTP Status: 401\r\n{\"errorCode\":401002,\"trackingId\":\"t-1\",\"message\":\"Invalid certificate\"}\r\nFailure encountered on registration!\r\nregistration failed!\r\n";

#[test]
fn a_monitor_with_a_dps_connection_explains_a_401002_in_its_failed_event() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig::new(([127, 0, 0, 1], 0).into(), dir.path().join("emulator"));
    let emulator = rt.block_on(Emulator::start(config)).unwrap();
    let cs = emulator.connection_string().to_secret_string().to_string();

    // The project generated the certificate for dev-lsp-explain; DPS holds no enrollment.
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let image = tasks::provision::sample::image().unwrap();
    let id = RegistrationId::parse("dev-lsp-explain").unwrap();
    let uds = identity::Uds::parse(&"5a".repeat(32)).unwrap();
    let generated = identity::derive(&uds, &image, &id).unwrap();
    let written =
        identity::files::write_identity(&generated, &project, Default::default()).unwrap();
    identity::files::record_generated(&project, &generated, &written[0].path).unwrap();

    let device = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = format!("tcp://{}", device.local_addr().unwrap());
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(true);

    // Without the project, the connection string is not enough.
    let r = lsp.request(
        "devkit/monitor/open",
        json!({"port": port, "connectionString": cs}),
    );
    assert_eq!(r["error"]["data"]["field"], "projectDir", "{r}");
    // A malformed connection string is refused for what it is, never echoed.
    let r = lsp.request(
        "devkit/monitor/open",
        json!({"port": port, "connectionString": "HostName=x;SharedAccessKey=c2VjcmV0", "projectDir": project}),
    );
    assert_eq!(r["error"]["data"]["field"], "connectionString", "{r}");
    assert!(!r.to_string().contains("c2VjcmV0"), "{r}");

    let r = lsp.request(
        "devkit/monitor/open",
        json!({"port": port, "connectionString": cs, "caFile": emulator.ca_certificate_path(),
               "projectDir": project}),
    );
    assert_eq!(r["result"]["opened"], true, "{r}");
    let (mut conn, _) = device.accept().unwrap();
    conn.write_all(REJECTED.as_bytes()).unwrap();
    let failed = lsp
        .wait_for("devkit/registrationEvent", Duration::from_secs(20), |m| {
            m["params"]["kind"] == "failed"
        })
        .expect("a failed event");
    let x = &failed["params"]["explanation"];
    assert_eq!(x["cause"], "noEnrollment", "{failed}");
    assert_eq!(x["registrationId"], "dev-lsp-explain", "{failed}");
    assert_eq!(x["nextActions"], json!([{"action": "enroll"}]), "{failed}");
    assert!(
        x["message"]
            .as_str()
            .is_some_and(|m| m.contains("holds no enrollment for dev-lsp-explain")),
        "{failed}"
    );
    assert_eq!(failed["params"]["errorCode"], 401002, "{failed}");

    // Opened again without the connection: the next verdict is only named.
    let r = lsp.request("devkit/monitor/open", json!({"port": port}));
    assert_eq!(r["result"]["opened"], false, "{r}");
    conn.write_all(REJECTED.as_bytes()).unwrap();
    let failed = lsp
        .wait_for("devkit/registrationEvent", Duration::from_secs(20), |m| {
            m["params"]["kind"] == "failed"
        })
        .expect("a second failed event");
    assert!(failed["params"].get("explanation").is_none(), "{failed}");
    let key = cs.rsplit("SharedAccessKey=").next().unwrap();
    let stderr = lsp.stderr();
    assert!(
        !stderr.contains(key) && !stderr.contains("c2VjcmV0"),
        "a key in the log: {stderr}"
    );
    lsp.request("devkit/monitor/close", json!({"port": port}));
    let (code, _) = lsp.shutdown_and_exit();
    assert!(code.success());
}
