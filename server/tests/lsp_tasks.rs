//! `devkit lsp` running the build, upload, enroll and provisioning tasks: compiler errors as
//! diagnostics, device upload to the virtual DevKit with its monitor open, enrollment against
//! the local DPS emulator, simulated provisioning.

// The tests that run the arduino-cli stand-in (a shell script) are Unix-only.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

mod lsp_client;

#[path = "../../tasks/tests/fixtures/arduino-cli-standin/project.rs"]
mod standin;

use lsp_client::{error_code, Lsp};
use serde_json::{json, Value};
use standin::Project;
use std::time::Duration;
use tasks::sim::{SimOptions, VirtualDevKit};

fn started() -> Lsp {
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(true);
    lsp
}

fn file_uri(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

#[cfg(unix)]
#[test]
fn compiler_errors_are_published_as_diagnostics_and_cleared_by_a_good_build() {
    let p = Project::new(true);
    let ino = p.sketch().join("DevKitDPS.ino");
    std::fs::write(
        &ino,
        "void setup() {}\n  #error \"DPS settings missing\"\nvoid loop() {}\n",
    )
    .unwrap();
    let mut lsp = started();
    let params =
        json!({"projectDir": p.root(), "arduinoCli": p.arduino_cli(), "idScope": "0ne0001A2B3"});
    let r = lsp.request("devkit/build", params.clone());
    assert_eq!(error_code(&r), 1007, "{r}");
    let diags = r["error"]["data"]["diagnostics"].as_array().unwrap();
    assert_eq!(diags[0]["line"], 2, "{r}");
    let uri = file_uri(&ino);
    let published = lsp
        .wait_for(
            "textDocument/publishDiagnostics",
            Duration::from_secs(10),
            |m| m["params"]["uri"] == uri,
        )
        .unwrap_or_else(|| panic!("no diagnostics for {uri}"));
    let d = &published["params"]["diagnostics"][0];
    assert_eq!(d["severity"], 1);
    assert_eq!(d["range"]["start"]["line"], 1);
    assert_eq!(d["message"], "#error \"DPS settings missing\"");
    assert_eq!(d["source"], "arm-none-eabi-gcc");
    // The status says the last task failed.
    let warn = lsp.wait_for("devkit/status", Duration::from_secs(5), |m| {
        m["params"]["health"] == "warning"
    });
    assert!(warn.is_some());

    std::fs::write(&ino, "void setup() {}\nvoid loop() {}\n").unwrap();
    let r = lsp.request("devkit/build", params);
    assert!(
        r["result"]["bin"]
            .as_str()
            .unwrap()
            .ends_with("DevKitDPS.ino.bin"),
        "{r}"
    );
    let cleared = lsp.wait_for(
        "textDocument/publishDiagnostics",
        Duration::from_secs(10),
        |m| m["params"]["uri"] == uri && m["params"]["diagnostics"].as_array().unwrap().is_empty(),
    );
    assert!(cleared.is_some(), "diagnostics cleared by the good build");
    // Invalid settings are refused before anything runs.
    let r = lsp.request(
        "devkit/build",
        json!({"projectDir": p.root(), "idScope": "0ne0001A2B3", "globalEndpoint": "https://x"}),
    );
    assert_eq!(r["error"]["data"]["field"], "globalEndpoint", "{r}");
}

#[cfg(unix)]
#[test]
fn device_upload_flashes_the_virtual_devkit_and_its_monitor_sees_the_reboot() {
    let p = Project::new(true);
    let sim_dir = tempfile::Builder::new()
        .prefix("dk")
        .tempdir_in("/tmp")
        .unwrap();
    let mut opts = SimOptions::new(sim_dir.path());
    opts.mac = Some("c0bdd1a2b3c4".into());
    let sim = VirtualDevKit::start(opts).unwrap();
    let port = sim.port_path().display().to_string();
    let mut lsp = started();
    let r = lsp.request("devkit/monitor/open", json!({"port": port}));
    assert_eq!(r["result"]["opened"], true, "{r}");
    let r = lsp.request(
        "devkit/deviceUpload",
        json!({"projectDir": p.root(), "arduinoCli": p.arduino_cli(), "idScope": "0ne0001A2B3",
               "backend": "sim", "simDir": sim_dir.path()}),
    );
    let res = &r["result"];
    assert_eq!(res["backend"], "sim", "{r}");
    assert_eq!(res["identityChanged"], false);
    assert!(res["fwid"].as_str().is_some_and(|f| f.len() == 64), "{r}");
    // (No `port`: the one open monitor's port was paused.) The device rebooted into the new
    // image: it has no UDS yet, and says so.
    let missing = lsp.wait_for("devkit/registrationEvent", Duration::from_secs(15), |m| {
        m["params"]["port"] == port && m["params"]["kind"] == "udsMissing"
    });
    assert!(
        missing.is_some(),
        "the monitor kept running across the upload"
    );
    // A plain upload of the same build.
    let r = lsp.request(
        "devkit/upload",
        json!({"buildDir": p.build_path(), "backend": "sim", "simDir": sim_dir.path()}),
    );
    assert_eq!(r["result"]["backend"], "sim", "{r}");
    assert!(r["result"]["bytes"].as_u64().unwrap() > 0);
    // Uploading needs a backend it knows.
    let r = lsp.request(
        "devkit/upload",
        json!({"buildDir": p.build_path(), "backend": "jtag"}),
    );
    assert_eq!(r["error"]["data"]["field"], "backend", "{r}");
    let (code, _) = lsp.shutdown_and_exit();
    assert!(code.success());
}

#[test]
fn simulated_provisioning_ends_assigned() {
    let work = tempfile::Builder::new()
        .prefix("dk")
        .tempdir_in("/tmp")
        .unwrap();
    let mut lsp = started();
    let r = lsp.request(
        "devkit/provision",
        json!({"simulate": true, "workDir": work.path()}),
    );
    let res = &r["result"];
    assert_eq!(res["status"], "assigned", "{r}");
    assert_eq!(res["port"], "simulated");
    assert!(res["assignedHub"].as_str().is_some_and(|h| !h.is_empty()));
    let event = lsp.wait_for("devkit/registrationEvent", Duration::from_secs(5), |m| {
        m["params"]["kind"] == "assigned"
    });
    assert_eq!(event.unwrap()["params"]["hub"], res["assignedHub"]);
    // Progress was reported along the way.
    assert!(lsp
        .wait_for("$/progress", Duration::ZERO, |m| m["params"]["value"]
            ["kind"]
            == "end")
        .is_some());
}

#[test]
fn enroll_against_the_local_dps_emulator_records_the_enrollment() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = tasks::dps::emulator::EmulatorConfig::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        state.path(),
    );
    let emulator = rt
        .block_on(tasks::dps::emulator::Emulator::start(config))
        .unwrap();
    let cs = emulator.connection_string().to_secret_string().to_string();
    let ca = emulator.ca_certificate_path().to_path_buf();

    let vector = lsp_client::fixture("dice-vectors/auto-id-small");
    let project = tempfile::tempdir().unwrap();
    let mut lsp = started();
    let r = lsp.request(
        "devkit/generateCert",
        json!({"buildDir": vector, "uds": "29e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eaf",
               "mac": "c0bdd1a2b3c4", "firmwareVersion": "1.6.2", "projectDir": project.path()}),
    );
    let thumb = r["result"]["sha256Thumbprint"].clone();
    assert!(thumb.is_string(), "{r}");
    // Without a connection string (and not az): invalid, nothing sent.
    let r = lsp.request("devkit/enroll", json!({"projectDir": project.path()}));
    assert_eq!(r["error"]["data"]["field"], "connectionString", "{r}");
    let r = lsp.request(
        "devkit/enroll",
        json!({"projectDir": project.path(), "connectionString": cs, "caFile": ca}),
    );
    let res = &r["result"];
    assert_eq!(res["registrationId"], "az-c0bdd1a2b3c4v1v6v2", "{r}");
    assert_eq!(res["sha256Thumbprint"], thumb);
    assert_eq!(res["provisioningStatus"], "enabled");
    let id = lsp.request("devkit/identity", json!({"projectDir": project.path()}));
    assert_eq!(
        id["result"]["lastEnrolled"]["sha256Thumbprint"], thumb,
        "{id}"
    );
    assert!(id["result"]["drift"].is_null(), "{id}");
    let (code, stderr) = lsp.shutdown_and_exit();
    assert!(code.success());
    let key = cs.split("SharedAccessKey=").nth(1).unwrap();
    assert!(
        !stderr.contains(key),
        "the connection string's key reached stderr"
    );
    rt.block_on(emulator.shutdown());
}

#[cfg(unix)]
#[test]
fn requests_for_the_same_build_directory_do_not_overlap() {
    // A compile that takes a while; a second build into the same directory is refused.
    let p = Project::new(true);
    let cli = p.arduino_cli();
    let slow = p.root().join("bin/slow-arduino-cli");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\n[ \"$1\" = compile ] && sleep 2\nexec '{}' \"$@\"\n",
            cli.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut lsp = started();
    let params = json!({"projectDir": p.root(), "arduinoCli": slow, "idScope": "0ne0001A2B3"});
    let first = lsp.send_request("devkit/build", params.clone());
    let running = lsp.wait_for("devkit/status", Duration::from_secs(10), |m| {
        m["params"]["running"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t["method"] == "devkit/build"))
    });
    assert!(running.is_some());
    let r = lsp.request("devkit/build", params);
    assert_eq!(r["error"]["data"]["code"], "busy", "{r}");
    assert!(r["error"]["data"]["resource"]
        .as_str()
        .unwrap()
        .starts_with("buildDir:"));
    let r = lsp.response(first);
    assert!(r.get("result").is_some(), "{r}");
}

/// A virtual DevKit in configuration mode on a pty, a DPS emulator, the sample build, and the
/// `devkit/provision` params for that port.
struct PortRun {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    emulator: tasks::dps::emulator::Emulator,
    devkit: VirtualDevKit,
    port: String,
    params: Value,
}

impl PortRun {
    fn new() -> PortRun {
        let dir = tempfile::Builder::new()
            .prefix("dk")
            .tempdir_in("/tmp")
            .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let config = tasks::dps::emulator::EmulatorConfig::new(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            dir.path().join("dps"),
        );
        let emulator = rt
            .block_on(tasks::dps::emulator::Emulator::start(config))
            .unwrap();
        let cs = emulator.connection_string().to_secret_string().to_string();
        let ca = emulator.ca_certificate_path().to_path_buf();
        // The built-in sample image, with the DPS settings its build would carry.
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tasks/assets/sample-firmware");
        let build = dir.path().join("build");
        std::fs::create_dir_all(&build).unwrap();
        std::fs::copy(sample.join("sample.bin"), build.join("sample.bin")).unwrap();
        std::fs::copy(sample.join("sample.map"), build.join("sample.map")).unwrap();
        let dps = json!({"global_endpoint": emulator.device_endpoint(), "id_scope": emulator.id_scope(), "registration_id": null});
        std::fs::write(build.join("dps_config.json"), dps.to_string()).unwrap();
        let sim_state = dir.path().join("s");
        let devkit = VirtualDevKit::start(SimOptions {
            config_mode: true,
            ..SimOptions::new(&sim_state)
        })
        .unwrap();
        let port = devkit.device_port().display().to_string();
        let project = dir.path().join("proj");
        std::fs::create_dir_all(&project).unwrap();
        let params = json!({"port": port, "bin": build.join("sample.bin"), "backend": "sim", "simDir": sim_state, "trustedCa": ca,
               "connectionString": cs, "caFile": ca, "mac": devkit.mac(), "wifiSsid": "Lab", "wifiPassword": "hunter2-canary",
               "projectDir": project, "timeoutSecs": 60});
        PortRun {
            _dir: dir,
            rt,
            emulator,
            devkit,
            port,
            params,
        }
    }

    fn finish(self) {
        drop(self.devkit);
        self.rt.block_on(self.emulator.shutdown());
    }
}

#[test]
fn provisioning_a_devkit_on_a_port_borrows_it_from_the_open_monitor() {
    let run = PortRun::new();
    let port = run.port.clone();
    let mut lsp = started();
    let r = lsp.request("devkit/monitor/open", json!({"port": port}));
    assert_eq!(r["result"]["opened"], true, "{r}");
    let r = lsp.request("devkit/provision", run.params.clone());
    let res = &r["result"];
    assert_eq!(res["status"], "assigned", "{r}");
    assert_eq!(res["port"], port);
    assert_eq!(
        res["registrationId"],
        format!("az-{}v1v6v2", run.devkit.mac())
    );
    let event = lsp.wait_for("devkit/registrationEvent", Duration::from_secs(5), |m| {
        m["params"]["kind"] == "assigned" && m["params"]["port"] == port
    });
    assert!(event.is_some());
    // The monitor stayed open throughout (the run borrowed the port) and saw the device.
    let r = lsp.request("devkit/monitor/open", json!({"port": port}));
    assert_eq!(
        r["result"]["opened"], false,
        "still open after the run: {r}"
    );
    assert!(
        lsp.wait_for("devkit/serialData", Duration::from_secs(5), |m| m["params"]
            ["port"]
            == port)
            .is_some(),
        "the monitor forwarded the device's output"
    );
    let (code, stderr) = lsp.shutdown_and_exit();
    assert!(code.success());
    assert!(!stderr.contains("hunter2"));
    run.finish();
}

#[test]
fn a_cancelled_provisioning_run_leaves_the_monitor_open() {
    let run = PortRun::new();
    let port = run.port.clone();
    let mut lsp = started();
    let r = lsp.request("devkit/monitor/open", json!({"port": port}));
    assert_eq!(r["result"]["opened"], true, "{r}");
    let id = lsp.send_request("devkit/provision", run.params.clone());
    // Cancel the running job: once it reports a step (it has the port by then).
    let step = lsp.wait_for("$/progress", Duration::from_secs(20), |m| {
        m["params"]["value"]["kind"] == "report"
    });
    assert!(step.is_some(), "the run reported a step before the cancel");
    lsp.notify("$/cancelRequest", json!({"id": id}));
    let r = lsp.response(id);
    assert!(
        r.get("error").is_some(),
        "a cancelled run answers with an error: {r}"
    );
    // The run stops at its next check and reopens the monitor before it frees the port: until
    // then the port is busy; afterwards our own open finds the monitor already there.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = lsp.request("devkit/monitor/open", json!({"port": port}));
        if r["error"]["data"]["code"] == "busy" && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(
            r["result"]["opened"],
            false,
            "the monitor stayed open: {r}\n{}",
            lsp.stderr()
        );
        break;
    }
    let (code, _) = lsp.shutdown_and_exit();
    assert!(code.success());
    run.finish();
}
