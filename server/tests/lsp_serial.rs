//! `devkit lsp` against the virtual DevKit: setUds, the monitor's serialData and registration
//! events, pause/resume around console commands, busy ports, cancellation.

mod lsp_client;

use lsp_client::{error_code, Lsp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tasks::sim::{SimOptions, VirtualDevKit};

const UDS: &str = "4b8e2f0c9a7d61e3b5c4a29f8d7e6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b";

struct Sim {
    dir: tempfile::TempDir,
    sim: VirtualDevKit,
}

impl Sim {
    fn start(config_mode: bool, command_delay: Duration) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = SimOptions::new(dir.path());
        opts.config_mode = config_mode;
        opts.mac = Some("c0bdd1a2b3c4".into());
        opts.command_delay = command_delay;
        let sim = VirtualDevKit::start(opts).unwrap();
        Sim { dir, sim }
    }
    fn port(&self) -> String {
        self.sim.port_path().display().to_string()
    }
    fn eeprom(&self) -> Value {
        serde_json::from_slice(
            &std::fs::read(self.dir.path().join("eeprom.json")).unwrap_or_default(),
        )
        .unwrap_or(Value::Null)
    }
}

fn started() -> Lsp {
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(true);
    lsp
}

/// All serialData text for `port` received so far (draining the inbox), plus what arrives
/// until `until` holds or the timeout passes.
fn serial_text(
    lsp: &mut Lsp,
    port: &str,
    timeout: Duration,
    until: impl Fn(&str) -> bool,
) -> String {
    let mut text = String::new();
    let deadline = Instant::now() + timeout;
    loop {
        while let Some(m) = lsp.wait_for("devkit/serialData", Duration::ZERO, |m| {
            m["params"]["port"] == port
        }) {
            text.push_str(m["params"]["text"].as_str().unwrap());
        }
        if until(&text) || Instant::now() >= deadline {
            return text;
        }
        if let Some(m) = lsp.wait_for("devkit/serialData", Duration::from_millis(200), |m| {
            m["params"]["port"] == port
        }) {
            text.push_str(m["params"]["text"].as_str().unwrap());
        }
    }
}

#[test]
fn set_uds_on_the_virtual_devkit_pauses_and_resumes_the_monitor() {
    let sim = Sim::start(true, Duration::ZERO);
    let port = sim.port();
    let mut lsp = Lsp::start(&[("RUST_LOG", "trace")]);
    lsp.initialize(true);
    let r = lsp.request("devkit/monitor/open", json!({"port": port}));
    assert_eq!(r["result"]["opened"], true, "{r}");
    // The configuration console's banner arrives as serialData.
    let banner = serial_text(&mut lsp, &port, Duration::from_secs(10), |t| {
        t.contains("# ")
    });
    assert!(banner.contains("MXChip"), "{banner:?}");

    let r = lsp.request("devkit/setUds", json!({"port": port, "uds": UDS}));
    assert_eq!(r["result"]["port"], port, "{r}");
    assert!(
        r["result"].get("uds").is_none(),
        "a UDS the client sent is not sent back"
    );
    assert_eq!(sim.eeprom()["dps_uds"], UDS);

    // The monitor was paused for the command and resumed after.
    let paused = lsp.wait_for("devkit/status", Duration::from_secs(5), |m| {
        m["params"]["monitors"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["port"] == port && x["paused"] == true))
    });
    assert!(paused.is_some(), "status showed the monitor paused");
    let resumed = lsp.wait_for("devkit/status", Duration::from_secs(5), |m| {
        m["params"]["monitors"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["port"] == port && x.get("paused").is_none())
        }) && m["params"]["quiescent"] == true
    });
    assert!(resumed.is_some(), "status showed the monitor resumed");
    // What the monitor saw of the command is the masked echo, never the UDS.
    let text = serial_text(&mut lsp, &port, Duration::from_secs(5), |t| {
        t.contains("set_dps_uds ****")
    });
    assert!(text.contains("set_dps_uds ****"), "{text:?}");
    assert!(!text.contains(&UDS[..16]));

    // A generated UDS needs a file to be kept in before it is sent (never lost with a lost
    // confirmation); an existing file is never overwritten.
    let r = lsp.request("devkit/setUds", json!({"port": port, "generate": true}));
    assert_eq!(r["error"]["data"]["field"], "saveUdsTo", "{r}");
    let keep = tempfile::tempdir().unwrap();
    let existing = keep.path().join("other.uds");
    std::fs::write(&existing, "keep me").unwrap();
    let r = lsp.request(
        "devkit/setUds",
        json!({"port": port, "generate": true, "saveUdsTo": existing}),
    );
    assert_eq!(r["error"]["data"]["field"], "saveUdsTo", "{r}");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    // A wrong port leaves no file behind: the retry on the right port may use the same name.
    let saved = keep.path().join("devkit.uds");
    let r = lsp.request(
        "devkit/setUds",
        json!({"port": keep.path().join("no-such-port"), "generate": true, "saveUdsTo": saved}),
    );
    assert!(r.get("error").is_some(), "{r}");
    assert!(
        !saved.exists(),
        "a UDS file was written for a port that does not exist"
    );
    // It is saved (0600) and is what the device stores; not returned unless asked for.
    let r = lsp.request(
        "devkit/setUds",
        json!({"port": port, "generate": true, "saveUdsTo": saved}),
    );
    assert!(r["result"].get("uds").is_none(), "{r}");
    assert_eq!(r["result"]["udsSavedTo"], json!(saved), "{r}");
    let generated = std::fs::read_to_string(&saved).unwrap().trim().to_string();
    assert_eq!(generated.len(), 64);
    assert_eq!(sim.eeprom()["dps_uds"], generated);
    // With `returnUds` (and no file) it comes back once, in the result only.
    let r = lsp.request(
        "devkit/setUds",
        json!({"port": port, "generate": true, "returnUds": true}),
    );
    let returned = r["result"]["uds"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert_eq!(returned.len(), 64);
    assert_ne!(returned, generated);
    assert_eq!(sim.eeprom()["dps_uds"], returned);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let r = lsp.request("devkit/monitor/close", json!({"port": port}));
    assert_eq!(r["result"]["closed"], true);
    let (code, stderr) = lsp.shutdown_and_exit();
    assert!(code.success());
    assert!(
        !stderr.contains(UDS) && !stderr.contains(&generated) && !stderr.contains(&returned),
        "UDS on stderr"
    );
}

#[test]
fn user_mode_output_arrives_as_serial_data_and_registration_events() {
    let sim = Sim::start(false, Duration::ZERO);
    let port = sim.port();
    let mut lsp = started();
    let r = lsp.request(
        "devkit/monitor/open",
        json!({"port": port, "baudRate": 115200}),
    );
    assert_eq!(r["result"]["baudRate"], 115200, "{r}");
    let text = serial_text(&mut lsp, &port, Duration::from_secs(10), |t| {
        t.contains("Firmware Version")
    });
    assert!(
        text.contains("DevKit MAC Address: c0bdd1a2b3c4"),
        "{text:?}"
    );
    let boot = lsp.wait_for("devkit/registrationEvent", Duration::from_secs(5), |m| {
        m["params"]["kind"] == "boot"
    });
    assert_eq!(boot.unwrap()["params"]["port"], port);
    // Opening twice is idempotent; sending needs an open monitor.
    let r = lsp.request("devkit/monitor/open", json!({"port": port}));
    assert_eq!(r["result"]["opened"], false);
    let r = lsp.request(
        "devkit/monitor/send",
        json!({"port": port, "text": "help", "lineEnding": "crlf"}),
    );
    assert_eq!(r["result"]["bytes"], 6, "{r}");
    let r = lsp.request(
        "devkit/monitor/send",
        json!({"port": port, "text": "x", "lineEnding": "\\n"}),
    );
    assert_eq!(r["error"]["data"]["field"], "lineEnding", "{r}");
    // One send carries at most the firmware's line: 70,000 characters wedged the port.
    let r = lsp.request(
        "devkit/monitor/send",
        json!({"port": port, "text": "a".repeat(70_000)}),
    );
    assert_eq!(r["error"]["data"]["field"], "text", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 1023 bytes")),
        "{r}"
    );
    let r = lsp.request("devkit/monitor/send", json!({"port": port, "text": "help"}));
    assert_eq!(r["result"]["bytes"], 5, "the port still answers: {r}");
    lsp.request("devkit/monitor/close", json!({"port": port}));
    let r = lsp.request("devkit/monitor/send", json!({"port": port, "text": "help"}));
    assert_eq!(r["error"]["data"]["code"], "monitorNotOpen", "{r}");
    let (code, _) = lsp.shutdown_and_exit();
    assert!(code.success());
}

#[test]
fn a_busy_port_fails_fast_naming_its_holder() {
    // Every console command takes a while: the first setUds holds the port meanwhile.
    let sim = Sim::start(true, Duration::from_millis(1500));
    let port = sim.port();
    let mut lsp = started();
    let first = lsp.send_request("devkit/setUds", json!({"port": port, "uds": UDS}));
    // Wait until the first request holds the port.
    let held = lsp.wait_for("devkit/status", Duration::from_secs(10), |m| {
        m["params"]["running"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t["method"] == "devkit/setUds"))
    });
    assert!(held.is_some());
    let r = lsp.request("devkit/setWifi", json!({"port": port, "ssid": "home"}));
    assert_eq!(error_code(&r), 1001, "{r}");
    assert_eq!(r["error"]["data"]["heldBy"], "devkit/setUds");
    assert_eq!(r["error"]["data"]["resource"], format!("port:{port}"));
    let r = lsp.request("devkit/monitor/open", json!({"port": port}));
    assert_eq!(r["error"]["data"]["code"], "busy", "{r}");
    let r = lsp.response(first);
    assert!(r.get("result").is_some(), "{r}");
    assert_eq!(sim.eeprom()["dps_uds"], UDS);
}

#[test]
fn cancel_request_stops_a_long_operation_and_frees_the_port() {
    // User mode: setUds waits (up to a minute) for the user to enter configuration mode.
    let sim = Sim::start(false, Duration::ZERO);
    let port = sim.port();
    let mut lsp = started();
    let id = lsp.send_request("devkit/setUds", json!({"port": port, "uds": UDS}));
    // It reports progress, and tells the user how to enter configuration mode.
    let begin = lsp
        .wait_for("$/progress", Duration::from_secs(10), |m| {
            m["params"]["value"]["kind"] == "begin"
        })
        .unwrap();
    assert_eq!(begin["params"]["value"]["cancellable"], true);
    let guidance = lsp.wait_for("$/progress", Duration::from_secs(10), |m| {
        m["params"]["value"]["message"]
            .as_str()
            .is_some_and(|s| s.contains("configuration mode"))
    });
    assert!(guidance.is_some());
    lsp.notify("$/cancelRequest", json!({"id": id}));
    let r = lsp.response(id);
    assert_eq!(error_code(&r), -32800, "{r}");
    // The job notices, ends its progress and releases the port.
    let end = lsp.wait_for("$/progress", Duration::from_secs(10), |m| {
        m["params"]["value"]["kind"] == "end"
    });
    assert!(end.is_some());
    let free = lsp.wait_for("devkit/status", Duration::from_secs(10), |m| {
        m["params"]["quiescent"] == true
    });
    assert!(free.is_some());
    // Cancelling through the progress token works too.
    let id = lsp.send_request("devkit/setUds", json!({"port": port, "uds": UDS}));
    let begin = lsp
        .wait_for("$/progress", Duration::from_secs(10), |m| {
            m["params"]["value"]["kind"] == "begin"
        })
        .unwrap();
    lsp.notify(
        "window/workDoneProgress/cancel",
        json!({"token": begin["params"]["token"]}),
    );
    let r = lsp.response(id);
    assert_eq!(error_code(&r), -32800, "{r}");
    assert_eq!(r["error"]["data"]["code"], "cancelled");
    assert!(
        sim.eeprom()
            .get("dps_uds")
            .is_none_or(|v| v.is_null() || v == ""),
        "nothing was stored"
    );
    let (code, _) = lsp.shutdown_and_exit();
    assert!(code.success());
}

#[test]
fn set_wifi_validates_before_touching_the_port() {
    let mut lsp = started();
    let r = lsp.request(
        "devkit/setWifi",
        json!({"port": "/nonexistent/tty", "wifiSsid": "x".repeat(40), "wifiPassword": "hunter2hunter2"}),
    );
    assert_eq!(error_code(&r), -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "wifiSsid");
    assert!(!r.to_string().contains("hunter2"));
    let r = lsp.request(
        "devkit/setUds",
        json!({"port": "/nonexistent/tty", "uds": UDS}),
    );
    assert_eq!(r["error"]["data"]["code"], "notFound", "{r}");
    let r = lsp.request("devkit/listPorts", json!({}));
    assert!(r["result"]["ports"].is_array(), "{r}");
}

#[test]
fn list_ports_shows_running_virtual_devkits_the_client_or_the_daemon_knows_of() {
    let sim = Sim::start(false, Duration::ZERO);
    let other = Sim::start(false, Duration::ZERO);
    let mut lsp = started();
    let virtual_ports = |r: &Value| -> Vec<Value> {
        r["result"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "virtual")
            .cloned()
            .collect()
    };
    // Unknown to the daemon: not listed until the client names its state directory.
    let r = lsp.request("devkit/listPorts", json!({}));
    assert!(virtual_ports(&r).is_empty(), "{r}");
    let r = lsp.request(
        "devkit/listPorts",
        json!({"simDirs": [sim.dir.path()], "devkitsOnly": true}),
    );
    let listed = virtual_ports(&r);
    assert_eq!(listed.len(), 1, "{r}");
    assert_eq!(listed[0]["port"], sim.port().as_str());
    assert_eq!(listed[0]["isDevkit"], true);
    assert_eq!(listed[0]["description"], "Virtual DevKit");
    assert_eq!(listed[0]["simDir"], sim.dir.path().display().to_string());
    // One the daemon put into configuration mode is remembered.
    let r = lsp.request("devkit/simConfigMode", json!({"simDir": other.dir.path()}));
    assert!(r["result"]["configMode"].as_bool().unwrap(), "{r}");
    let r = lsp.request("devkit/listPorts", json!({}));
    let listed = virtual_ports(&r);
    assert_eq!(listed.len(), 1, "{r}");
    assert_eq!(listed[0]["port"], other.port().as_str());
    // Turned off: gone from the list.
    let dir = other.dir.path().to_path_buf();
    drop(other.sim);
    let r = lsp.request("devkit/listPorts", json!({"simDirs": [dir]}));
    assert!(virtual_ports(&r).is_empty(), "{r}");
    // Bounded input.
    let many: Vec<String> = (0..17).map(|i| format!("/tmp/x{i}")).collect();
    let r = lsp.request("devkit/listPorts", json!({ "simDirs": many }));
    assert_eq!(error_code(&r), -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "simDirs");
}

#[test]
fn sim_start_runs_a_virtual_devkit_the_daemon_owns_until_sim_stop() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("vdk");
    let mut lsp = started();
    let r = lsp.request(
        "devkit/simStart",
        json!({"simDir": sim_dir, "mac": "c0bdd1a2b3c4"}),
    );
    assert_eq!(r["result"]["started"], true, "{r}");
    let port = r["result"]["port"].as_str().unwrap().to_string();
    if cfg!(unix) {
        assert_eq!(port, sim_dir.join("devkit.tty").display().to_string());
    } else {
        assert!(port.starts_with("tcp://127.0.0.1:"), "{port}");
    }
    // Listed as a virtual DevKit without the client naming its directory.
    let ports = lsp.request("devkit/listPorts", json!({}));
    assert!(
        ports["result"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["port"] == port.as_str() && p["kind"] == "virtual"),
        "{ports}"
    );
    // Its console answers: it boots when the monitor opens.
    lsp.request("devkit/monitor/open", json!({"port": port}));
    let text = serial_text(&mut lsp, &port, Duration::from_secs(10), |t| {
        t.contains("DevKit MAC Address")
    });
    assert!(text.contains("c0bdd1a2b3c4"), "{text:?}");
    lsp.request("devkit/monitor/close", json!({"port": port}));
    // Starting again finds it running.
    let r = lsp.request("devkit/simStart", json!({"simDir": sim_dir}));
    assert_eq!(r["result"]["started"], false, "{r}");
    assert_eq!(r["result"]["port"], port.as_str(), "{r}");
    let r = lsp.request("devkit/simStop", json!({"simDir": sim_dir}));
    assert_eq!(r["result"]["stopped"], true, "{r}");
    assert!(!tasks::sim::control::is_running(&sim_dir), "stopped");
    let r = lsp.request("devkit/simStop", json!({"simDir": sim_dir}));
    assert_eq!(r["result"]["stopped"], false, "{r}");
    // The same device again: its MAC is kept in its state directory.
    let r = lsp.request("devkit/simStart", json!({"simDir": sim_dir}));
    assert_eq!(r["result"]["started"], true, "{r}");
    let (code, _) = lsp.shutdown_and_exit();
    assert!(code.success());
    assert!(
        !tasks::sim::control::is_running(&sim_dir),
        "it stops with the daemon"
    );
}
