//! One table of serial and upload cases, run through both adapters: the CLI process
//! (`devkit set-uds|set-wifi|upload ... --json`) and the daemon (`devkit lsp`), each against a
//! fresh virtual DevKit. Both must end the same way: the same report (the CLI's `--json`
//! deserializes into the daemon's result type, which is the `tasks` report), or the same
//! refusal (the CLI's exit code and flag, the daemon's `data.code` and `data.field`), and the
//! same effect on the device.

mod lsp_client;

use lsp_client::{fixture, Lsp};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tasks::console::configure::{SetUdsReport, SetWifiReport};
use tasks::sim::{SimOptions, VirtualDevKit};
use tasks::upload::UploadReport;

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");
const UDS: &str = "4b8e2f0c9a7d61e3b5c4a29f8d7e6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b";
const PASSWORD: &str = "pass \"word\" x";

/// What a case gives each adapter, and what both must end with.
struct Case {
    name: &'static str,
    /// The virtual DevKit starts in configuration mode.
    config_mode: bool,
    /// CLI arguments; `{port}`, `{uds}`, `{dir}`, `{bin}` are filled in.
    cli: &'static [&'static str],
    /// Standard input of the CLI.
    stdin: &'static str,
    /// The daemon's method and params (the same placeholders in string values).
    method: &'static str,
    params: Value,
    expect: Expect,
}

enum Expect {
    /// Succeeds with this report (compared as JSON, the same through both adapters);
    /// the device's EEPROM then holds `eeprom`.
    Report { eeprom: Value },
    /// A flashed image: the virtual DevKit's state directory holds it.
    Flashed,
    /// Fails: CLI exit code and a text its stderr holds; the daemon's `data.code` and
    /// `data.field`. Nothing is stored on the device.
    Refused {
        exit: i32,
        stderr: &'static str,
        code: &'static str,
        field: Option<&'static str>,
        next_action: Option<&'static str>,
    },
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "set-uds confirmed",
            config_mode: true,
            cli: &[
                "set-uds",
                "--port",
                "{port}",
                "--uds-file",
                "{uds}",
                "--json",
            ],
            stdin: "",
            method: "devkit/setUds",
            params: json!({"port": "{port}", "uds": UDS}),
            expect: Expect::Report {
                eeprom: json!({"dps_uds": UDS}),
            },
        },
        Case {
            name: "set-uds without configuration mode times out",
            config_mode: false,
            cli: &[
                "set-uds",
                "--port",
                "{port}",
                "--uds-file",
                "{uds}",
                "--timeout",
                "2",
            ],
            stdin: "",
            method: "devkit/setUds",
            params: json!({"port": "{port}", "uds": UDS, "timeoutSecs": 2}),
            expect: Expect::Refused {
                exit: 1,
                stderr: "hold button A, press and release the reset button",
                code: "deviceError",
                field: None,
                next_action: Some("enterConfigMode"),
            },
        },
        Case {
            name: "a generated UDS kept nowhere is refused",
            config_mode: true,
            cli: &["set-uds", "--port", "{port}", "--generate"],
            stdin: "",
            method: "devkit/setUds",
            params: json!({"port": "{port}", "generate": true}),
            expect: Expect::Refused {
                exit: 2,
                stderr: "--save-uds-to",
                code: "invalidParams",
                field: Some("saveUdsTo"),
                next_action: None,
            },
        },
        Case {
            name: "set-wifi with spaces and quotes",
            config_mode: true,
            cli: &[
                "set-wifi",
                "--port",
                "{port}",
                "--wifi-ssid",
                "Joe's \"Lab\" 5 GHz",
                "--wifi-password-stdin",
                "--json",
            ],
            stdin: "pass \"word\" x\n",
            method: "devkit/setWifi",
            params: json!({"port": "{port}", "wifiSsid": "Joe's \"Lab\" 5 GHz", "wifiPassword": PASSWORD}),
            expect: Expect::Report {
                eeprom: json!({"wifi_ssid": "Joe's \"Lab\" 5 GHz", "wifi_pwd": PASSWORD}),
            },
        },
        Case {
            name: "upload to the virtual DevKit",
            config_mode: true,
            cli: &[
                "upload",
                "--bin",
                "{bin}",
                "--backend",
                "sim",
                "--sim-dir",
                "{dir}",
                "--json",
            ],
            stdin: "",
            method: "devkit/upload",
            params: json!({"bin": "{bin}", "backend": "sim", "simDir": "{dir}"}),
            expect: Expect::Flashed,
        },
    ]
}

/// A virtual DevKit in its own state directory, with a UDS file next to it.
struct Device {
    dir: tempfile::TempDir,
    sim: VirtualDevKit,
}

impl Device {
    fn start(config_mode: bool) -> Device {
        let dir = tempfile::Builder::new()
            .prefix("dk")
            .tempdir_in(std::env::temp_dir())
            .unwrap();
        let mut opts = SimOptions::new(dir.path().join("state"));
        opts.config_mode = config_mode;
        opts.mac = Some("c0bdd1a2b3c4".into());
        let sim = VirtualDevKit::start(opts).unwrap();
        std::fs::write(dir.path().join("uds.txt"), format!("{UDS}\n")).unwrap();
        Device { dir, sim }
    }
    fn fill(&self, text: &str) -> String {
        let bin = fixture("dice-vectors/explicit-id-small/DevKitDPS.ino.bin");
        text.replace("{port}", &self.sim.port_path().display().to_string())
            .replace(
                "{uds}",
                &self.dir.path().join("uds.txt").display().to_string(),
            )
            .replace("{dir}", &self.state().display().to_string())
            .replace("{bin}", &bin.display().to_string())
    }
    fn fill_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.fill(s)),
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), self.fill_json(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            other => other.clone(),
        }
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn eeprom(&self) -> Value {
        std::fs::read(self.state().join("eeprom.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }
}

struct CliOut {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cli(args: &[String], stdin: &str) -> CliOut {
    let mut child = Command::new(DEVKIT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    let _ = out.read_to_string(&mut stdout);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "devkit {args:?} did not finish");
        std::thread::sleep(Duration::from_millis(10));
    };
    CliOut {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: reader.join().unwrap(),
    }
}

/// The report as JSON, checked to be the daemon's result type for `method`.
fn typed(method: &str, v: Value) -> Value {
    match method {
        "devkit/setUds" => {
            serde_json::to_value(serde_json::from_value::<SetUdsReport>(v).unwrap()).unwrap()
        }
        "devkit/setWifi" => {
            serde_json::to_value(serde_json::from_value::<SetWifiReport>(v).unwrap()).unwrap()
        }
        "devkit/upload" => {
            serde_json::to_value(serde_json::from_value::<UploadReport>(v).unwrap()).unwrap()
        }
        m => panic!("no result type for {m}"),
    }
}

fn contains_all(have: &Value, want: &Value) -> bool {
    want.as_object().unwrap().iter().all(|(k, v)| &have[k] == v)
}

#[test]
fn every_case_ends_the_same_through_the_cli_and_the_daemon() {
    for case in cases() {
        let name = case.name;
        // The CLI.
        let device = Device::start(case.config_mode);
        let args: Vec<String> = case.cli.iter().map(|a| device.fill(a)).collect();
        let o = cli(&args, case.stdin);
        let cli_report = match &case.expect {
            Expect::Report { .. } | Expect::Flashed => {
                assert_eq!(o.code, 0, "{name}: CLI: {}", o.stderr);
                let v: Value = serde_json::from_str(&o.stdout)
                    .unwrap_or_else(|e| panic!("{name}: CLI --json: {e}: {}", o.stdout));
                Some(typed(case.method, v))
            }
            Expect::Refused { exit, stderr, .. } => {
                assert_eq!(o.code, *exit, "{name}: CLI: {}", o.stderr);
                assert!(o.stderr.contains(stderr), "{name}: CLI: {}", o.stderr);
                None
            }
        };
        let cli_eeprom = device.eeprom();
        check_device(&case, &device, name, "CLI");
        drop(device);

        // The daemon, against a fresh device.
        let device = Device::start(case.config_mode);
        let mut lsp = Lsp::start(&[]);
        lsp.initialize(true);
        let r = lsp.request(case.method, device.fill_json(&case.params));
        let daemon_report = match &case.expect {
            Expect::Report { .. } | Expect::Flashed => {
                let v = r
                    .get("result")
                    .cloned()
                    .unwrap_or_else(|| panic!("{name}: daemon: {r}"));
                Some(typed(case.method, v))
            }
            Expect::Refused {
                code,
                field,
                next_action,
                ..
            } => {
                assert_eq!(r["error"]["data"]["code"], *code, "{name}: daemon: {r}");
                assert_eq!(
                    r["error"]["data"]["field"].as_str(),
                    *field,
                    "{name}: daemon: {r}"
                );
                if let Some(a) = next_action {
                    let actions = r["error"]["data"]["nextActions"].to_string();
                    assert!(actions.contains(a), "{name}: daemon: {r}");
                }
                None
            }
        };
        check_device(&case, &device, name, "daemon");
        assert_eq!(cli_eeprom, device.eeprom(), "{name}: the same device state");
        let (code, stderr) = lsp.shutdown_and_exit();
        assert!(code.success(), "{name}");
        assert!(
            !stderr.contains(UDS) && !stderr.contains("word\" x"),
            "{name}: a secret in the daemon's log"
        );

        // The same report, but for where the device was.
        if let (Some(mut c), Some(mut d)) = (cli_report, daemon_report) {
            for key in ["port", "bin"] {
                c.as_object_mut().unwrap().remove(key);
                d.as_object_mut().unwrap().remove(key);
            }
            assert_eq!(
                c, d,
                "{name}: the CLI's --json and the daemon's result differ"
            );
        }
    }
}

fn check_device(case: &Case, device: &Device, name: &str, adapter: &str) {
    match &case.expect {
        Expect::Report { eeprom } => assert!(
            contains_all(&device.eeprom(), eeprom),
            "{name}: {adapter}: eeprom {}",
            device.eeprom()
        ),
        Expect::Flashed => assert_eq!(
            std::fs::read(device.state().join("firmware/image.bin")).ok(),
            std::fs::read(fixture("dice-vectors/explicit-id-small/DevKitDPS.ino.bin")).ok(),
            "{name}: {adapter}: the image the virtual DevKit boots"
        ),
        Expect::Refused { .. } => assert!(
            device.eeprom().get("dps_uds").is_none_or(Value::is_null)
                && device.eeprom().get("wifi_pwd").is_none_or(Value::is_null),
            "{name}: {adapter}: stored {}",
            device.eeprom()
        ),
    }
}

/// `returnUds`: the daemon only (a terminal cannot keep a secret for its user). The generated
/// UDS is in that result and nowhere else: no notification, no progress, no log line.
#[test]
fn a_returned_uds_appears_only_in_its_result() {
    let device = Device::start(true);
    let mut lsp = Lsp::start(&[("RUST_LOG", "trace")]);
    lsp.initialize(true);
    let port = device.sim.port_path().display().to_string();
    lsp.request("devkit/monitor/open", json!({"port": port}));
    let r = lsp.request(
        "devkit/setUds",
        json!({"port": port, "generate": true, "returnUds": true}),
    );
    let uds = r["result"]["uds"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert_eq!(uds.len(), 64);
    assert_eq!(device.eeprom()["dps_uds"], uds.as_str());
    assert_eq!(r["result"]["generated"], true);
    assert!(r["result"].get("udsSavedTo").is_none(), "{r}");
    // Everything else the daemon said (notifications, progress, serial data) holds no UDS.
    std::thread::sleep(Duration::from_millis(500));
    lsp.request("devkit/monitor/close", json!({"port": port}));
    let others: Vec<String> = lsp.inbox.iter().map(Value::to_string).collect();
    assert!(!others.is_empty());
    assert!(
        others.iter().all(|m| !m.contains(&uds)),
        "the UDS in another message"
    );
    let (_, stderr) = lsp.shutdown_and_exit();
    assert!(!stderr.contains(&uds), "the UDS in the daemon's log");
    // The CLI has no way to ask for it back: its generated UDS must go to a file.
    let o = cli(
        &[
            "set-uds".into(),
            "--port".into(),
            port,
            "--generate".into(),
            "--return-uds".into(),
        ],
        "",
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
}

#[test]
fn the_table_covers_both_serial_tasks_and_upload() {
    let methods: std::collections::BTreeSet<&str> = cases().iter().map(|c| c.method).collect();
    assert_eq!(
        methods.into_iter().collect::<Vec<_>>(),
        ["devkit/setUds", "devkit/setWifi", "devkit/upload"]
    );
    assert!(Path::new(&fixture("dice-vectors/explicit-id-small/DevKitDPS.ino.map")).is_file());
}
