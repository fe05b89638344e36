//! `devkit enroll --group` (the CLI) and `devkit/enrollGroup` (the daemon) against one local
//! DPS emulator: the same CA enrolls the same group through both (the CLI's `--json` read as
//! the daemon's result type), and the RIoT certificates are refused as the group's CA by both,
//! naming the file and the input.

mod lsp_client;

use lsp_client::Lsp;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use tasks::dps::emulator::{Emulator, EmulatorConfig, TestCa};
use tasks::dps::enroll::GroupEnrollReport;
use tasks::dps::ClientOptions;
use tasks::identity::{self, RegistrationId};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(DEVKIT).args(args).output().unwrap()
}

fn write_pem(path: &Path, der: &[u8]) -> String {
    std::fs::write(path, tasks::dps::cert::pem_encode(der)).unwrap();
    path.display().to_string()
}

#[test]
fn both_adapters_enroll_a_group_and_refuse_riot_certificates_as_its_ca() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig::new(([127, 0, 0, 1], 0).into(), dir.path().join("emulator"));
    let emulator = rt.block_on(Emulator::start(config)).unwrap();
    let cs = emulator.connection_string().to_secret_string().to_string();
    let cs_file = dir.path().join("cs.txt");
    std::fs::write(&cs_file, &cs).unwrap();
    let cs_file = cs_file.display().to_string();
    let ca_file = emulator.ca_certificate_path().display().to_string();

    let root = TestCa::root("fleet-root").unwrap();
    let root_pem = write_pem(&dir.path().join("fleet-root.pem"), &root.der);
    let uds = identity::Uds::parse(&"5a".repeat(32)).unwrap();
    let image = tasks::provision::sample::image().unwrap();
    let d = identity::derive(&uds, &image, &RegistrationId::parse("grp-dev").unwrap()).unwrap();
    let device_pem = write_pem(&dir.path().join("device-cert.pem"), &d.device_cert_der);

    // The CLI creates the group.
    let out = cli(&[
        "enroll",
        "--group",
        "fleet-cli",
        "--ca-cert",
        &root_pem,
        "--connection-string-file",
        &cs_file,
        "--ca-file",
        &ca_file,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_cli: GroupEnrollReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(by_cli.enrollment_group_id, "fleet-cli");
    assert_eq!(by_cli.ca_subject.as_deref(), Some("fleet-root"));
    assert_eq!(
        by_cli.sha256_thumbprint,
        identity::sha256_thumbprint(&root.der)
    );

    // The daemon creates another, disabled.
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(true);
    let r = lsp.request(
        "devkit/enrollGroup",
        json!({ "group": "fleet-lsp", "caCert": root_pem, "connectionString": cs,
                "caFile": ca_file, "disabled": true }),
    );
    let by_lsp: GroupEnrollReport = serde_json::from_value(r["result"].clone())
        .unwrap_or_else(|e| panic!("not an EnrollGroupResult ({e}): {r}"));
    assert_eq!(by_lsp.enrollment_group_id, "fleet-lsp");
    assert_eq!(by_lsp.sha256_thumbprint, by_cli.sha256_thumbprint);
    assert_eq!(
        by_lsp.provisioning_status,
        tasks::dps::ProvisioningStatus::Disabled
    );

    // DPS holds both, with the CA as their signing certificate (it answers with its info).
    let options = ClientOptions {
        ca_pem: Some(emulator.ca_certificate_pem().to_string()),
        ..Default::default()
    };
    let client = tasks::dps::ServiceClient::new(emulator.connection_string(), options).unwrap();
    for id in ["fleet-cli", "fleet-lsp"] {
        let mut g = rt.block_on(client.get_group(id)).unwrap();
        let held: Vec<String> = g
            .signing_certificates_mut()
            .filter_map(|c| c.info.as_ref().map(|i| i.sha256_thumbprint.clone()))
            .collect();
        assert_eq!(held, vec![by_cli.sha256_thumbprint.clone()], "{id}");
    }

    // A DeviceID certificate is refused by both, naming the file and the input.
    let out = cli(&[
        "enroll",
        "--group",
        "bad",
        "--ca-cert",
        &device_pem,
        "--connection-string-file",
        &cs_file,
        "--ca-file",
        &ca_file,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| serde_json::from_slice(&out.stderr).unwrap());
    let msg = err["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("device-cert.pem") && msg.contains("DeviceID"),
        "{err}"
    );
    assert_eq!(err["error"]["input"], "caCert", "{err}");
    let r = lsp.request(
        "devkit/enrollGroup",
        json!({ "group": "bad", "caCert": device_pem, "connectionString": cs, "caFile": ca_file }),
    );
    assert_eq!(r["error"]["data"]["field"], "caCert", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fixed nonce"),
        "{r}"
    );
    assert!(rt.block_on(client.get_group("bad")).is_err());
}
