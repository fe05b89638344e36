//! One casing for every machine-readable CLI output: the `--json` documents (and `--events`
//! lines) of the subcommands that run without a device, walked key by key. The outputs that
//! need a build, an emulator or a virtual DevKit are walked where their suites produce them
//! (cli_identity, cli_upload, cli_dps); every daemon message is walked by the LSP test client.

mod json_casing;

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn devkit(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devkit"))
        .args(args)
        .current_dir(cwd)
        .env_remove("DEVKIT_ARDUINO_CLI")
        .stdin(Stdio::null())
        .output()
        .expect("run devkit")
}

fn json_of(o: &Output, what: &str) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn the_walk_finds_snake_case_keys_and_kinds() {
    let v = serde_json::json!({"okKey": [{"alias_cert": 1}], "files": [{"kind": "device_id_public_key"}],
                               "nextActions": [{"action": "setUds"}], "text": "a_b"});
    assert_eq!(
        json_casing::violations(&v),
        [
            "value $.files[0].kind = \"device_id_public_key\"",
            "key $.okKey[0].alias_cert"
        ]
    );
    assert!(
        json_casing::violations(&serde_json::json!({"kind": "x", "registrationId": "my_dev"}))
            .is_empty()
    );
}

#[test]
fn doctor_ports_and_logs_print_camel_case() {
    let tmp = tempfile::tempdir().unwrap();
    // Whatever this machine has, the document is printed (exit 1 when not ready).
    let o = devkit(&["doctor", "--json"], tmp.path());
    json_casing::assert_camel_case(&json_of(&o, "doctor --json"), "doctor --json");
    let o = devkit(&["ports", "--json"], tmp.path());
    assert!(o.status.success());
    json_casing::assert_camel_case(&json_of(&o, "ports --json"), "ports --json");

    let logs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks/tests/fixtures/device-logs");
    let mut lines = 0;
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let o = devkit(&["logs", "--events", path.to_str().unwrap()], tmp.path());
        let out = String::from_utf8_lossy(&o.stdout);
        for line in out.lines().filter(|l| l.starts_with('{')) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            json_casing::assert_camel_case(&v, "logs --events");
            lines += 1;
        }
    }
    assert!(lines > 0, "the fixtures give events");
}

#[test]
fn generate_cert_files_name_their_kind_in_camel_case() {
    let tmp = tempfile::tempdir().unwrap();
    let small = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tasks/tests/fixtures/dice-vectors/explicit-id-small");
    let uds = tmp.path().join("uds.txt");
    std::fs::write(&uds, format!("{}\n", "4".repeat(64))).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&uds, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let o = devkit(
        &[
            "generate-cert",
            "--bin",
            small.join("DevKitDPS.ino.bin").to_str().unwrap(),
            "--map",
            small.join("DevKitDPS.ino.map").to_str().unwrap(),
            "--uds-file",
            uds.to_str().unwrap(),
            "--registration-id",
            "casing-1",
            "--device-cert",
            "--alias-key",
            "--out-dir",
            "out",
            "--json",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o, "generate-cert --json");
    json_casing::assert_camel_case(&v, "generate-cert --json");
    let kinds: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["aliasCert", "deviceCert", "deviceIdPublicKey", "aliasKey"]
    );
    assert_eq!(v["files"][0]["action"], "written");
}

#[test]
fn provision_simulate_report_is_camel_case() {
    let tmp = tempfile::tempdir().unwrap();
    let o = devkit(
        &[
            "provision",
            "--simulate",
            "--save-uds-to",
            "sim.uds",
            "--json",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o, "provision --simulate --json");
    json_casing::assert_camel_case(&v, "provision --json");
    assert!(v["assignedHub"].is_string(), "{v}");
    // --save-uds-to is honoured with --simulate (it was silently ignored).
    assert_eq!(v["udsSavedTo"], "sim.uds", "{v}");
    let uds = std::fs::read_to_string(tmp.path().join("sim.uds")).unwrap();
    assert_eq!(uds.trim().len(), 64, "a UDS: 64 hex digits");
}
