//! `devkit lsp` over stdio against the real binary: lifecycle, errors, identity methods,
//! language features, and secrets kept off stderr.

mod lsp_client;

use lsp_client::{error_code, fixture, Lsp};
use serde_json::{json, Value};
use std::time::Duration;

/// The UDS of the `auto-id-small` vector: our canary secret.
const UDS: &str = "29e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eaf";

fn started() -> Lsp {
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(true);
    lsp
}

/// The base64 body of a PEM file, whitespace removed (64-column and one-line PEM compare equal).
fn pem_body(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .split_whitespace()
        .collect()
}

#[test]
fn initialize_then_shutdown_and_exit_cleanly() {
    let mut lsp = Lsp::start(&[]);
    let init = lsp.initialize(true);
    let caps = &init["result"]["capabilities"];
    assert_eq!(caps["textDocumentSync"], 1, "{init}");
    assert_eq!(caps["codeLensProvider"]["resolveProvider"], false);
    let requests = caps["experimental"]["devkitRequests"].as_array().unwrap();
    assert!(requests.contains(&json!("devkit/generateCert")));
    assert_eq!(init["result"]["serverInfo"]["name"], "devkit");
    // devkit/status arrives once initialized.
    let status = lsp
        .wait_for("devkit/status", Duration::from_secs(10), |_| true)
        .expect("devkit/status");
    assert_eq!(status["params"]["health"], "ok");
    assert_eq!(status["params"]["quiescent"], true);
    let (code, _) = lsp.shutdown_and_exit();
    assert!(code.success(), "{code:?}");
}

#[test]
fn exit_without_shutdown_is_exit_code_1() {
    let mut lsp = started();
    lsp.notify("exit", Value::Null);
    assert_eq!(lsp.wait_exit().code(), Some(1));
}

#[test]
fn unknown_method_is_32601() {
    let mut lsp = started();
    let r = lsp.request("devkit/doesNotExist", json!({}));
    assert_eq!(error_code(&r), -32601, "{r}");
}

#[test]
fn malformed_params_name_the_field_and_never_echo_values() {
    let mut lsp = started();
    // Wrong type for a boolean field, holding the canary.
    let r = lsp.request(
        "devkit/generateCert",
        json!({"uds": UDS, "outDir": "/tmp", "buildDir": "/tmp", "deviceCert": UDS}),
    );
    assert_eq!(error_code(&r), -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "deviceCert");
    assert_eq!(r["error"]["data"]["code"], "invalidParams");
    assert!(!r.to_string().contains(UDS), "{r}");
    // A missing field.
    let r = lsp.request("devkit/generateCert", json!({"outDir": "/tmp"}));
    assert_eq!(error_code(&r), -32602);
    assert_eq!(r["error"]["data"]["field"], "uds");
    // A UDS that is not 64 hex digits: named, not echoed.
    let bad = format!("{}zz", &UDS[..62]);
    let r = lsp.request(
        "devkit/generateCert",
        json!({"uds": bad, "outDir": "/tmp", "registrationId": "a", "buildDir": "/tmp"}),
    );
    assert_eq!(error_code(&r), -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "uds");
    assert!(!r.to_string().contains(&bad[..40]), "{r}");
    // Params that are not an object.
    let r = lsp.request("devkit/inspectCert", json!([UDS]));
    assert_eq!(error_code(&r), -32602);
    assert!(!r.to_string().contains(UDS));
}

#[test]
fn generate_cert_matches_the_device_vector_and_records_the_identity() {
    let vector = fixture("dice-vectors/auto-id-small");
    let out = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let mut lsp = started();
    let r = lsp.request(
        "devkit/generateCert",
        json!({
            "buildDir": vector,
            "uds": UDS,
            "mac": "C0:BD:D1:A2:B3:C4",
            "firmwareVersion": "1.6.2",
            "outDir": out.path(),
            "deviceCert": true,
            "projectDir": project.path(),
        }),
    );
    let res = &r["result"];
    assert_eq!(res["registrationId"], "az-c0bdd1a2b3c4v1v6v2", "{r}");
    let alias = std::fs::read_to_string(res["aliasCert"].as_str().unwrap()).unwrap();
    let expected = std::fs::read_to_string(vector.join("az-c0bdd1a2b3c4v1v6v2.pem")).unwrap();
    assert_eq!(
        pem_body(&alias),
        pem_body(&expected),
        "alias certificate differs from the device's"
    );
    let device = std::fs::read_to_string(res["deviceCert"].as_str().unwrap()).unwrap();
    let expected_device = std::fs::read_to_string(vector.join("device-cert.pem")).unwrap();
    assert_eq!(pem_body(&device), pem_body(&expected_device));
    assert!(alias.lines().all(|l| l.len() <= 64), "64-column PEM");
    assert_eq!(
        res["aliasCertPem"], alias,
        "the result carries the PEM written"
    );
    assert_eq!(res["deviceCertPem"], device);
    // The fixed-nonce note has its own field (as in `generate-cert --json`), not a warning.
    assert!(
        res["note"].as_str().unwrap().contains("fixed ECDSA nonce"),
        "{r}"
    );

    // inspectCert on the expected file agrees on the thumbprints.
    let i = lsp.request(
        "devkit/inspectCert",
        json!({"path": vector.join("az-c0bdd1a2b3c4v1v6v2.pem"), "against": res["aliasCert"]}),
    );
    let cert = &i["result"];
    assert_eq!(cert["sha256Thumbprint"], res["sha256Thumbprint"], "{i}");
    assert_eq!(cert["sha1Thumbprint"], res["sha1Thumbprint"]);
    assert_eq!(cert["fwid"], res["fwid"]);
    assert_eq!(cert["subjectCn"], "az-c0bdd1a2b3c4v1v6v2");
    assert_eq!(cert["signatureValid"], true);
    assert_eq!(i["result"]["against"]["difference"], "identical");

    // The project now knows the identity.
    let id = lsp.request(
        "devkit/identity",
        json!({"projectDir": project.path(), "buildDir": vector}),
    );
    assert_eq!(
        id["result"]["lastGenerated"]["sha256Thumbprint"], res["sha256Thumbprint"],
        "{id}"
    );
    assert_eq!(id["result"]["currentFwid"], res["fwid"]);
    assert!(id["result"]["drift"].is_null(), "{id}");
    let (code, _) = lsp.shutdown_and_exit();
    assert!(code.success());
}

#[test]
fn generate_cert_refuses_the_sample_uds_and_backs_up_another_devices_files() {
    let vector = fixture("dice-vectors/explicit-id-small");
    let out = tempfile::tempdir().unwrap();
    let mut lsp = started();
    let sample = "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae";
    let params = |uds: &str, allow: bool| {
        json!({"bin": vector.join("DevKitDPS.ino.bin"), "map": vector.join("DevKitDPS.ino.map"), "uds": uds,
               "registrationId": "my-devkit-01", "outDir": out.path(), "allowSampleUds": allow})
    };
    let r = lsp.request("devkit/generateCert", params(sample, false));
    assert_eq!(error_code(&r), -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "uds");
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "nothing written"
    );
    let r = lsp.request("devkit/generateCert", params(sample, true));
    let written = std::fs::read_to_string(out.path().join("my-devkit-01.pem")).unwrap();
    let expected = std::fs::read_to_string(vector.join("my-devkit-01.pem")).unwrap();
    assert_eq!(pem_body(&written), pem_body(&expected), "{r}");
    // Another UDS = another device: its certificate is never silently lost. As with
    // `devkit generate-cert`, the old file is kept as a backup and the result says where.
    let r = lsp.request("devkit/generateCert", params(UDS, false));
    let warnings: Vec<String> = r["result"]["warnings"]
        .as_array()
        .expect("a result")
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    let backup_warning = warnings
        .iter()
        .find(|w| w.contains(".bak"))
        .unwrap_or_else(|| panic!("backup named: {r}"));
    let backups: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        std::fs::read_to_string(&backups[0]).unwrap(),
        written,
        "the other device's certificate is kept"
    );
    assert!(
        backup_warning.contains(&*backups[0].to_string_lossy()),
        "{backup_warning}"
    );
    assert_ne!(
        std::fs::read_to_string(out.path().join("my-devkit-01.pem")).unwrap(),
        written
    );
}

#[test]
fn no_secret_reaches_stderr_even_at_trace_level() {
    let vector = fixture("dice-vectors/auto-id-small");
    let out = tempfile::tempdir().unwrap();
    let mut lsp = Lsp::start(&[("RUST_LOG", "trace")]);
    lsp.initialize(true);
    let r = lsp.request(
        "devkit/generateCert",
        json!({"buildDir": vector, "uds": UDS, "mac": "c0bdd1a2b3c4", "firmwareVersion": "1.6.2", "outDir": out.path()}),
    );
    assert!(r.get("result").is_some(), "{r}");
    lsp.request("devkit/generateCert", json!({"uds": UDS, "outDir": 5}));
    lsp.request(
        "devkit/setUds",
        json!({"port": "/dev/null-devkit", "uds": UDS}),
    );
    lsp.request("devkit/doesNotExist", json!({"uds": UDS}));
    let upper = UDS.to_uppercase();
    let (code, stderr) = lsp.shutdown_and_exit();
    assert!(code.success());
    assert!(
        !stderr.is_empty(),
        "trace logging is on, something is logged"
    );
    assert!(
        !stderr.contains(UDS) && !stderr.contains(&upper) && !stderr.contains(&UDS[..16]),
        "UDS on stderr:\n{stderr}"
    );
}

/// Open a sketch document (full text).
fn open_doc(lsp: &mut Lsp, uri: &str, text: &str) {
    lsp.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "cpp", "version": 1, "text": text}}),
    );
}

/// The diagnostics of the first `publishDiagnostics` for `uri` that `pred` accepts.
fn diagnostics_for(
    lsp: &mut Lsp,
    uri: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Option<Vec<Value>> {
    lsp.wait_for(
        "textDocument/publishDiagnostics",
        Duration::from_secs(10),
        |m| m["params"]["uri"] == uri && pred(m["params"]["diagnostics"].as_array().unwrap()),
    )
    .map(|m| m["params"]["diagnostics"].as_array().unwrap().clone())
}

#[test]
fn sketch_settings_get_diagnostics_and_code_lenses() {
    let mut lsp = started();
    let uri = "file:///tmp/devkit-test/DevKitDPS/dps_config.h";
    let text =
        "#define DPS_GLOBAL_DEVICE_ENDPOINT \"https://global.azure-devices-provisioning.net\"\n\
                #define DPS_ID_SCOPE \"[ID Scope]\"\n\
                #define DPS_REGISTRATION_ID \"My_DevKit\"\n";
    open_doc(&mut lsp, uri, text);
    let diags = &diagnostics_for(&mut lsp, uri, |_| true).unwrap();
    let by_code = |c: &str| {
        diags
            .iter()
            .find(|d| d["code"] == c)
            .unwrap_or_else(|| panic!("no {c} in {diags:?}"))
    };
    assert_eq!(by_code("endpoint")["severity"], 1);
    assert_eq!(by_code("id-scope")["severity"], 2);
    let reg = by_code("registration-id");
    assert_eq!(reg["severity"], 1);
    assert_eq!(reg["range"]["start"]["line"], 2);
    assert!(
        reg["message"].as_str().unwrap().contains("registration ID"),
        "{reg}"
    );

    let lenses = lsp.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    // An invalid registration ID: no "Generate certificate" / "Enroll", a lens that says so.
    let lenses = lenses["result"].as_array().unwrap();
    assert_eq!(lenses.len(), 1, "{lenses:?}");
    assert_eq!(lenses[0]["command"]["command"], "");
    assert!(lenses[0]["command"]["title"]
        .as_str()
        .unwrap()
        .contains("Invalid registration ID"));
    assert_eq!(lenses[0]["range"]["start"]["line"], 2);
    // Every diagnostic links to its rule's section.
    for d in diags {
        let href = d["codeDescription"]["href"].as_str().unwrap();
        assert!(
            href.ends_with(&format!(
                "docs/diagnostics.md#{}",
                d["code"].as_str().unwrap()
            )),
            "{d}"
        );
    }
    // Quick fixes: the registration ID lower-cased, the endpoint without its scheme.
    let actions = lsp.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}, "context": {"diagnostics": []}}),
    );
    let new_texts: Vec<_> = actions["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["edit"]["changes"][uri][0]["newText"].as_str().unwrap())
        .collect();
    assert!(
        new_texts.contains(&"my-devkit")
            && new_texts.contains(&"global.azure-devices-provisioning.net"),
        "{actions}"
    );

    // Fixed: no diagnostics left.
    let fixed = "#define DPS_GLOBAL_DEVICE_ENDPOINT \"global.azure-devices-provisioning.net\"\n\
                 #define DPS_ID_SCOPE \"0ne00000A0A\"\n\
                 #define DPS_REGISTRATION_ID \"my-devkit-01\"\n";
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    let cleared = diagnostics_for(&mut lsp, uri, |d| d.is_empty()).is_some();
    assert!(cleared, "diagnostics cleared");
    let lenses = lsp.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    let commands: Vec<_> = lenses["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["command"]["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["devkit.generateCert", "devkit.enroll"]);
}

/// The settings the client holds (`workspace/configuration`, section `devkitDps`) against a
/// value hard-coded in the sketch: a diagnostic, the two quick fixes, and a change of the
/// settings (`workspace/didChangeConfiguration`, then a new pull) that settles it.
#[test]
fn hard_coded_settings_are_compared_with_the_clients_settings_and_fixed() {
    let mut lsp = Lsp::start(&[]);
    lsp.configuration = json!({"dps": {"globalEndpoint": "global.azure-devices-provisioning.net", "idScope": "0ne00000B0B"}, "registrationId": ""});
    lsp.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {"workspace": {"configuration": true, "didChangeConfiguration": {"dynamicRegistration": true}}}}),
    );
    lsp.notify("initialized", json!({}));
    // The server registers for configuration changes and pulls the section.
    let reg = lsp
        .wait_for("client/registerCapability", Duration::from_secs(10), |_| {
            true
        })
        .expect("didChangeConfiguration registered");
    assert_eq!(
        reg["params"]["registrations"][0]["method"],
        "workspace/didChangeConfiguration"
    );
    let pull = lsp
        .wait_for("workspace/configuration", Duration::from_secs(10), |_| true)
        .expect("settings pulled");
    assert_eq!(pull["params"]["items"][0]["section"], "devkitDps");

    let uri = "file:///tmp/devkit-test/Old/Old.ino";
    let text = "static const char* ID_Scope = \"0ne00000A0A\";\nvoid setup() {}\n";
    open_doc(&mut lsp, uri, text);
    let diags = diagnostics_for(&mut lsp, uri, |d| !d.is_empty())
        .expect("a diagnostic on the hard-coded ID Scope");
    let diag = &diags[0];
    assert_eq!(diag["code"], "hard-coded-setting");
    assert_eq!(diag["severity"], 2);
    let msg = diag["message"].as_str().unwrap();
    assert!(
        msg.contains("0ne00000A0A") && msg.contains("0ne00000B0B"),
        "{msg}"
    );

    let actions = lsp.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": diag["range"], "context": {"diagnostics": [diag]}}),
    );
    let actions = actions["result"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "{actions:?}");
    let moved = &actions[0];
    assert_eq!(moved["kind"], "quickfix");
    assert_eq!(
        moved["title"],
        "Move \"0ne00000A0A\" to the ID Scope setting"
    );
    assert_eq!(moved["command"]["command"], "devkit.writeSetting");
    assert_eq!(
        moved["command"]["arguments"][0],
        json!({"setting": "devkitDps.dps.idScope", "value": "0ne00000A0A"})
    );
    let edits = moved["edit"]["changes"][uri].as_array().unwrap();
    assert!(
        edits.iter().any(|e| e["newText"] == "DPS_ID_SCOPE"),
        "{edits:?}"
    );
    assert!(edits.iter().any(|e| e["newText"]
        .as_str()
        .unwrap()
        .starts_with("#include \"dps_config.h\"")));
    let use_setting = &actions[1];
    assert_eq!(
        use_setting["edit"]["changes"][uri][0]["newText"],
        "0ne00000B0B"
    );
    assert!(use_setting.get("command").is_none());

    // The setting now holds the sketch's value: the client says so, the server pulls again.
    // No disagreement left; the hard-coded copy is information (it shadows the setting).
    lsp.configuration = json!({"dps": {"idScope": "0ne00000A0A"}});
    lsp.inbox.clear();
    lsp.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": null}),
    );
    let settled = diagnostics_for(&mut lsp, uri, |d| {
        !d.is_empty() && d.iter().all(|d| d["severity"] == 3)
    })
    .expect("the warning went away with the new settings");
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0]["code"], "hard-coded-setting");
    // Once the sketch reads the generated header (the quick fix's edit), nothing is left.
    lsp.inbox.clear();
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": "#include \"dps_config.h\"\nstatic const char* ID_Scope = DPS_ID_SCOPE;\n"}]}),
    );
    assert!(diagnostics_for(&mut lsp, uri, |d| d.is_empty()).is_some());
}

#[test]
fn devkit_requests_may_omit_params() {
    let mut lsp = started();
    // No params at all: decoded as {} (so only real field problems are reported).
    let id = lsp.send_request_without_params("devkit/inspectCert");
    let r = lsp.response(id);
    assert_eq!(error_code(&r), -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "path");
}

/// Hardening: a key where a field name belongs is never echoed (reply or daemon log), and a
/// `saveUdsTo` naming an existing file is refused before anything runs.
#[test]
fn secrets_in_bad_params_are_not_echoed_and_a_uds_file_is_never_overwritten() {
    let key = "Y2FuYXJ5LWtleS1uZXZlci1zaG93bg==";
    let dir = tempfile::tempdir().unwrap();
    let mut lsp = started();
    for cs in [
        key.to_string(),
        format!("SharedAccessKey:{key}"),
        format!("HostName=h;SharedAccessKeyName=p;SharedAccessKey:{key}"),
    ] {
        let r = lsp.request(
            "devkit/enroll",
            json!({"connectionString": cs, "cert": "/nonexistent.pem", "projectDir": dir.path()}),
        );
        assert_eq!(error_code(&r), -32602, "{r}");
        assert_eq!(r["error"]["data"]["field"], "connectionString", "{r}");
        assert!(!r.to_string().contains("Y2FuYXJ5"), "{r}");
    }
    let vector = fixture("dice-vectors/explicit-id-small");
    let existing = dir.path().join("other.uds");
    std::fs::write(&existing, "ab".repeat(32)).unwrap();
    let r = lsp.request(
        "devkit/provision",
        json!({"port": "/nonexistent-port", "bin": vector.join("DevKitDPS.ino.bin"), "connectionString": format!("HostName=h.example;SharedAccessKeyName=p;SharedAccessKey={key}"),
               "registrationId": "dev-1", "projectDir": dir.path(), "saveUdsTo": existing}),
    );
    assert_eq!(error_code(&r), -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "saveUdsTo", "{r}");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "ab".repeat(32));
    let (_, stderr) = lsp.shutdown_and_exit();
    assert!(
        !stderr.contains("Y2FuYXJ5"),
        "the daemon log never holds the key: {stderr}"
    );
}
