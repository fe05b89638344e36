//! `devkit/validateInput`, `devkit/registrationId` and `devkit/findBuild` over stdio against the
//! real binary: the questions the extension's input boxes ask, answered by the tasks' rules;
//! secrets judged but never echoed, in results or on stderr.

mod lsp_client;

use lsp_client::{error_code, fixture, Lsp};
use serde_json::{json, Value};

/// A canary UDS (random-looking, not the published sample).
const UDS: &str = "5b1c7e2a9d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b0749930a1";
const KEY_B64: &str = "dmFsaWRhdGUtY2FuYXJ5LWtleS1mb3ItdGVzdHM=";

fn validate(lsp: &mut Lsp, input: &str, value: &str) -> Value {
    let r = lsp.request(
        "devkit/validateInput",
        json!({ "input": input, "value": value }),
    );
    r.get("result")
        .cloned()
        .unwrap_or_else(|| panic!("no result for {input}: {r}"))
}

#[test]
fn input_boxes_get_the_verdict_of_the_tasks_rules() {
    let mut lsp = Lsp::start(&[("RUST_LOG", "trace")]);
    lsp.initialize(true);

    let mac = validate(&mut lsp, "mac", "C0:BD:D1:A2:B3:C4");
    assert_eq!(mac["valid"], true, "{mac}");
    assert_eq!(mac["normalized"], "c0bdd1a2b3c4");
    assert_eq!(mac["warnings"], json!([]));

    let id = validate(&mut lsp, "registrationId", "My_DevKit");
    assert_eq!(id["valid"], false, "{id}");
    assert!(
        id["message"].as_str().unwrap().contains("registration ID"),
        "{id}"
    );
    assert_eq!(validate(&mut lsp, "firmwareVersion", "1.6")["valid"], false);

    let scope = validate(&mut lsp, "idScope", " 0ne0001A2B3 ");
    assert_eq!(scope["valid"], true);
    assert_eq!(scope["normalized"], "0ne0001A2B3");
    let endpoint = validate(&mut lsp, "globalEndpoint", "127.0.0.1:8443");
    assert_eq!(endpoint["valid"], true);
    assert!(
        !endpoint["warnings"].as_array().unwrap().is_empty(),
        "{endpoint}"
    );

    // Secrets: a verdict, never the value (nor a piece of it).
    let uds = validate(&mut lsp, "uds", &UDS.to_uppercase());
    assert_eq!(uds["valid"], true, "{uds}");
    assert!(
        uds.get("normalized").is_none() && uds.get("publishedSample").is_none(),
        "{uds}"
    );
    let short = validate(&mut lsp, "uds", &UDS[..62]);
    assert_eq!(short["valid"], false);
    assert!(!short.to_string().contains(&UDS[..16]), "{short}");
    let sample = validate(
        &mut lsp,
        "uds",
        "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae",
    );
    assert_eq!(sample["valid"], true);
    assert_eq!(sample["publishedSample"], true, "{sample}");

    let cs = validate(
        &mut lsp,
        "connectionString",
        &format!("HostName=localhost:8443;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey={KEY_B64}"),
    );
    assert_eq!(cs["valid"], true, "{cs}");
    assert_eq!(cs["hostName"], "localhost:8443");
    assert_eq!(cs["localHost"], true);
    assert!(!cs.to_string().contains(KEY_B64));
    let bad = validate(
        &mut lsp,
        "connectionString",
        &format!("HostName=x.azure-devices-provisioning.net;{KEY_B64}"),
    );
    assert_eq!(bad["valid"], false);
    assert!(!bad.to_string().contains(KEY_B64), "{bad}");

    // A port that is not a virtual DevKit's link: valid, no state directory.
    let port = validate(&mut lsp, "port", "/dev/ttyACM0");
    assert_eq!(port["valid"], true);
    assert!(port.get("simDir").is_none(), "{port}");

    // An input that cannot be checked alone is a refused param.
    let r = lsp.request(
        "devkit/validateInput",
        json!({ "input": "wifiPassword", "value": "hunter22" }),
    );
    assert_eq!(error_code(&r), -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "input");
    assert!(!r.to_string().contains("hunter22"));

    let (code, stderr) = lsp.shutdown_and_exit();
    assert!(code.success());
    for secret in [UDS, &UDS[..16], KEY_B64, "hunter22"] {
        assert!(!stderr.contains(secret), "a secret on stderr:\n{stderr}");
    }
    assert!(!stderr.to_uppercase().contains(&UDS[..16].to_uppercase()));
}

#[test]
fn the_automatic_registration_id_normalises_the_mac() {
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(true);
    let r = lsp.request(
        "devkit/registrationId",
        json!({ "mac": "C0-BD-D1-A2-B3-C4", "firmwareVersion": "1.6.2" }),
    );
    assert_eq!(
        r["result"]["registrationId"], "az-c0bdd1a2b3c4v1v6v2",
        "{r}"
    );
    // The explicit ID wins over the pair.
    let r = lsp.request(
        "devkit/registrationId",
        json!({ "registrationId": "dev-1", "mac": "c0bdd1a2b3c4", "firmwareVersion": "1.6.2" }),
    );
    assert_eq!(r["result"]["registrationId"], "dev-1", "{r}");
    // One of the pair alone names the other.
    let r = lsp.request("devkit/registrationId", json!({ "mac": "c0bdd1a2b3c4" }));
    assert_eq!(error_code(&r), -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "firmwareVersion");
}

#[test]
fn find_build_uses_the_one_rule_for_build_outputs() {
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(true);
    let vector = fixture("dice-vectors/auto-id-small");
    let r = lsp.request(
        "devkit/findBuild",
        json!({ "projectDir": "/nonexistent", "buildDir": vector }),
    );
    let result = &r["result"];
    assert!(result["bin"].as_str().unwrap().ends_with(".bin"), "{r}");
    assert!(result["map"].as_str().unwrap().ends_with(".map"), "{r}");
    // The project's default build directory (`.devkit/build`): none yet.
    let project = tempfile::tempdir().unwrap();
    let r = lsp.request("devkit/findBuild", json!({ "projectDir": project.path() }));
    assert!(r.get("error").is_some(), "{r}");
    assert_eq!(r["error"]["data"]["field"], "buildDir", "{r}");
    // With an image and its map there, that is the build.
    let build = project.path().join(".devkit").join("build");
    std::fs::create_dir_all(&build).unwrap();
    std::fs::write(build.join("S.ino.bin"), b"image").unwrap();
    std::fs::write(build.join("S.ino.map"), b"map").unwrap();
    let r = lsp.request("devkit/findBuild", json!({ "projectDir": project.path() }));
    assert_eq!(r["result"]["bin"], json!(build.join("S.ino.bin")), "{r}");
    assert_eq!(r["result"]["buildDir"], json!(build));
}
