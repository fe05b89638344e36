//! The serial CLI end to end: `devkit sim` on a real pty, `set-uds`, `set-wifi`, `monitor`,
//! `logs`, `ports`; secrets never in any output or log file.
//! On Windows (no ptys) the virtual DevKit is on its TCP transport, at a port kept across restarts.

mod small_fs;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");
const CANARY_UDS: &str = "c4a7a2f1e0d9c8b7a6958473625140f3e2d1c0b9a8978685746352413f2e1d0c";
const CANARY_PW: &str = "CanaryPw-7f3a9Zq";

/// A child whose stdout/stderr are collected by threads; killed on drop.
struct Proc {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(DEVKIT)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Proc { child, out, err }
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }
    fn wait_stdout(&self, needle: &str, count: usize) {
        wait_for(
            || self.stdout().matches(needle).count() >= count,
            || format!("stdout {:?} / stderr {:?}", self.stdout(), self.stderr()),
        );
    }
    fn wait_stderr(&self, needle: &str) {
        wait_for(
            || self.stderr().contains(needle),
            || format!("stderr {:?}", self.stderr()),
        );
    }
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for(cond: impl Fn() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "condition not met within 20 s: {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `devkit args` to completion (bounded), feeding `stdin`.
fn run(args: &[&str], stdin: &str) -> Out {
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
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("devkit {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(20));
    let o = Out {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.lock().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err.lock().unwrap()).into_owned(),
    };
    o
}

/// The port name a test's virtual DevKit is reached at, the same across its restarts: on Unix
/// a symlink to its pty (`devkit sim --link`), elsewhere `tcp://127.0.0.1:PORT` with a free
/// port picked now (`devkit sim --transport tcp --tcp-port PORT`).
fn port_in(dir: &Path) -> PathBuf {
    if cfg!(unix) {
        dir.join("port")
    } else {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        PathBuf::from(format!("tcp://{}", probe.local_addr().unwrap()))
    }
}

/// `devkit sim` reachable at `link` (see [`port_in`]); returns once its first stdout line is
/// out (and, on Unix, the link points at its pty).
fn sim(state: &Path, link: &Path, extra: &[&str]) -> Proc {
    let name = link.to_str().unwrap();
    let tcp_port = name.rsplit(':').next().unwrap_or_default();
    let mut args = vec!["sim", "--sim-dir", s(state), "--mac", "c0bdd1a2b3c4"];
    if cfg!(unix) {
        args.extend(["--link", name]);
    } else {
        args.extend(["--transport", "tcp", "--tcp-port", tcp_port]);
    }
    args.extend_from_slice(extra);
    let p = Proc::spawn(&args);
    p.wait_stdout("\n", 1);
    let first = p.stdout().lines().next().unwrap().to_string();
    let on = first.trim_start_matches("virtual DevKit on ");
    if cfg!(unix) {
        assert!(on.starts_with("/dev/"), "first line: {first:?}");
        let pty = PathBuf::from(on);
        wait_for(
            || std::fs::read_link(link).ok().as_deref() == Some(pty.as_path()),
            || "link".into(),
        );
    } else {
        assert_eq!(on, name, "first line: {first:?}");
    }
    p
}

fn eeprom(state: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(state.join("eeprom.json")).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn set_uds_from_a_file_and_generated_lands_in_the_eeprom() {
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let _sim = sim(&state, &link, &["--config-mode"]);
    let uds_file = dir.path().join("uds.txt");
    std::fs::write(&uds_file, format!("{}\n", CANARY_UDS.to_uppercase())).unwrap();
    let o = run(
        &[
            "set-uds",
            "--port",
            s(&link),
            "--uds-file",
            s(&uds_file),
            "--timeout",
            "10",
        ],
        "",
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("INFO: Set DPS UDS successfully."));
    assert_eq!(eeprom(&state)["dps_uds"], CANARY_UDS);

    let saved = dir.path().join("new-uds.txt");
    // A wrong port leaves no file behind, so the retry on the right port may use the same name.
    let wrong = dir.path().join("no-such-port");
    let o = run(
        &[
            "set-uds",
            "--port",
            s(&wrong),
            "--generate",
            "--save-uds-to",
            s(&saved),
        ],
        "",
    );
    assert_ne!(o.code, 0, "{}", o.stderr);
    assert!(
        !saved.exists(),
        "a UDS file was written for a port that does not exist"
    );
    let o = run(
        &[
            "set-uds",
            "--port",
            s(&link),
            "--generate",
            "--save-uds-to",
            s(&saved),
            "--timeout",
            "10",
        ],
        "",
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let generated = std::fs::read_to_string(&saved).unwrap();
    let generated = generated.trim();
    assert_eq!(generated.len(), 64);
    assert_eq!(eeprom(&state)["dps_uds"], generated);
    assert!(!o.stdout.contains(generated) && !o.stderr.contains(generated));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Never overwrite a saved UDS (the old flag name `--save-to` still parses).
    let o = run(
        &[
            "set-uds",
            "--port",
            s(&link),
            "--generate",
            "--save-to",
            s(&saved),
        ],
        "",
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(&saved).unwrap().trim(), generated);
}

#[test]
fn invalid_uds_exits_2_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let sim = sim(&state, &link, &["--config-mode"]);
    let short = &CANARY_UDS[..63];
    for (name, content) in [
        ("short.txt", short.to_string()),
        (
            "sample.txt",
            "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae".into(),
        ),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, &content).unwrap();
        let o = run(&["set-uds", "--port", s(&link), "--uds-file", s(&f)], "");
        assert_eq!(o.code, 2, "{name}: {}", o.stderr);
        assert!(o.stderr.contains("--uds-file"), "{}", o.stderr);
        assert!(!o.stderr.contains(short), "the bad value is not echoed");
    }
    let o = run(
        &[
            "set-uds",
            "--port",
            s(&link),
            "--uds-file",
            s(&dir.path().join("missing.txt")),
        ],
        "",
    );
    assert_eq!(o.code, 2);
    assert!(
        !sim.stderr().contains("reader connected"),
        "the port was never opened: {}",
        sim.stderr()
    );
    assert!(!state.join("eeprom.json").exists());
}

#[test]
fn set_wifi_with_spaces_and_quotes_from_stdin_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let _sim = sim(&state, &link, &["--config-mode"]);
    let ssid = "Joe's \"Lab\" 5 GHz";
    let o = run(
        &[
            "set-wifi",
            "--port",
            s(&link),
            "--ssid",
            ssid,
            "--password-stdin",
            "--timeout",
            "10",
        ],
        "pass \"word\" x\n",
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(eeprom(&state)["wifi_ssid"], ssid);
    assert_eq!(eeprom(&state)["wifi_pwd"], "pass \"word\" x");
    let pw = dir.path().join("pw.txt");
    std::fs::write(&pw, "second\r\n").unwrap();
    let o = run(
        &[
            "set-wifi",
            "--port",
            s(&link),
            "--ssid",
            "Plain",
            "--password-file",
            s(&pw),
            "--timeout",
            "10",
        ],
        "",
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(eeprom(&state)["wifi_pwd"], "second");
    // Too long for the device: refused before sending.
    let o = run(
        &[
            "set-wifi",
            "--port",
            s(&link),
            "--ssid",
            &"x".repeat(32),
            "--password-stdin",
        ],
        "pw\n",
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("--wifi-ssid"), "{}", o.stderr);
    assert_eq!(eeprom(&state)["wifi_ssid"], "Plain");
}

#[test]
fn not_in_configuration_mode_gives_guidance_then_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let _sim = sim(&state, &link, &[]);
    let o = run(
        &[
            "set-wifi",
            "--port",
            s(&link),
            "--ssid",
            "Lab",
            "--password-stdin",
            "--timeout",
            "2",
        ],
        "pw\n",
    );
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("hold button A, press and release the reset button"),
        "{}",
        o.stderr
    );
    assert!(!state.join("eeprom.json").exists());
}

#[test]
fn sim_killed_mid_command_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let mut sim = sim(
        &state,
        &link,
        &["--config-mode", "--command-delay-ms", "30000"],
    );
    let pw = dir.path().join("pw.txt");
    std::fs::write(&pw, "pw").unwrap();
    let setter = Proc::spawn(&[
        "set-wifi",
        "--port",
        s(&link),
        "--ssid",
        "Lab",
        "--password-file",
        s(&pw),
        "--timeout",
        "60",
    ]);
    sim.wait_stderr("running command set_wifissid");
    sim.kill();
    let mut setter = setter;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = setter.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "set-wifi hung after the sim died"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(status.code(), Some(1));
    let err = setter.stderr();
    assert!(
        err.contains("went away")
            && err.contains("set_wifissid")
            && err.contains("Nothing was confirmed"),
        "{err}"
    );
}

#[test]
fn monitor_reconnects_when_the_sim_restarts_on_the_same_link() {
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let mut first = sim(&state, &link, &[]);
    let log = dir.path().join("serial.log");
    let mon = Proc::spawn(&["monitor", "--port", s(&link), "--log-file", s(&log)]);
    mon.wait_stdout("Info: DevKit Firmware Version: 1.6.2", 1);
    first.kill();
    mon.wait_stderr("port disconnected");
    let _second = sim(&state, &link, &[]);
    mon.wait_stdout("Info: DevKit Firmware Version: 1.6.2", 2);
    mon.wait_stderr("reconnected to");
    assert_eq!(
        mon.stdout()
            .matches("MXChip - Microsoft IoT Developer Kit")
            .count(),
        2,
        "both boots seen whole"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        logged
            .matches("Info: DevKit MAC Address: c0bdd1a2b3c4")
            .count(),
        2,
        "{logged}"
    );
}

/// `--log-file` on a full filesystem: one warning naming the file and the OS error, and the
/// device's output still shown.
#[test]
fn monitor_warns_once_when_its_log_file_cannot_be_written() {
    let Some(fs) = small_fs::SmallFs::mount("64k") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let log = fs.path().join("serial.log");
    fs.fill();
    let mut first = sim(&state, &link, &[]);
    let mon = Proc::spawn(&["monitor", "--port", s(&link), "--log-file", s(&log)]);
    mon.wait_stdout("Info: DevKit Firmware Version: 1.6.2", 1);
    mon.wait_stderr("No space left on device");
    // More output after a restart: still shown, no second warning.
    first.kill();
    let _second = sim(&state, &link, &[]);
    mon.wait_stdout("Info: DevKit Firmware Version: 1.6.2", 2);
    let err = mon.stderr();
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("log file")).collect();
    assert!(
        matches!(&warnings[..], [w] if w.contains(&log.display().to_string()) && w.contains("No space left on device")),
        "{err}"
    );
}

#[test]
fn monitor_prints_events_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let _sim = sim(&state, &link, &[]);
    let mon = Proc::spawn(&["monitor", "--port", s(&link), "--events"]);
    mon.wait_stdout("\"firmwareVersion\":\"1.6.2\"", 1);
    let first = mon.stdout().lines().next().unwrap().to_string();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&first).unwrap()["kind"],
        "boot"
    );
}

#[test]
fn canary_secrets_never_appear_in_any_output_or_log() {
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let mut sim = sim(&state, &link, &["--config-mode"]);
    let mut outputs: Vec<(String, String)> = Vec::new();

    let uds_file = dir.path().join("uds.txt");
    std::fs::write(&uds_file, CANARY_UDS).unwrap();
    let o = run(
        &[
            "set-uds",
            "--port",
            s(&link),
            "--uds-file",
            s(&uds_file),
            "--timeout",
            "10",
        ],
        "",
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    outputs.push(("set-uds".into(), o.stdout + &o.stderr));
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, format!("{CANARY_UDS}0")).unwrap();
    let o = run(&["set-uds", "--port", s(&link), "--uds-file", s(&bad)], "");
    assert_eq!(o.code, 2);
    outputs.push(("set-uds bad".into(), o.stdout + &o.stderr));
    let o = run(
        &[
            "set-wifi",
            "--port",
            s(&link),
            "--ssid",
            "Lab",
            "--password-stdin",
            "--timeout",
            "10",
        ],
        &format!("{CANARY_PW}\n"),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    outputs.push(("set-wifi".into(), o.stdout + &o.stderr));
    let o = run(
        &[
            "set-wifi",
            "--port",
            s(&link),
            "--ssid",
            "Lab",
            "--password-stdin",
        ],
        &format!("{CANARY_PW}\t{CANARY_PW}{CANARY_PW}{CANARY_PW}{CANARY_PW}\n"),
    );
    assert_eq!(o.code, 2);
    outputs.push(("set-wifi bad".into(), o.stdout + &o.stderr));
    assert_eq!(
        eeprom(&state)["dps_uds"],
        CANARY_UDS,
        "the secrets did reach the device"
    );
    assert_eq!(eeprom(&state)["wifi_pwd"], CANARY_PW);

    // Boot the image in user mode under the monitor: the identity is derived from the UDS.
    let fx = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tasks/tests/fixtures/dice-vectors/auto-id-small");
    let bin = std::fs::read(fx.join("DevKitDPS.ino.bin")).unwrap();
    let map = std::fs::read_to_string(fx.join("DevKitDPS.ino.map")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = dir.path().join("monitor.log");
    let mon = Proc::spawn(&[
        "monitor",
        "--port",
        s(&link),
        "--timestamps",
        "--log-file",
        s(&log),
    ]);
    mon.wait_stderr("monitoring");
    rt.block_on(tasks::sim::control::load_image(&state, &bin, &map, None))
        .unwrap();
    mon.wait_stdout("registration failed!", 1);
    assert!(mon.stdout().contains("DevKit alias certificate SHA-256: "));
    let o = run(&["logs", "--events", s(&log)], "");
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("\"aliasCertSha256\""));
    outputs.push(("logs".into(), o.stdout + &o.stderr));
    drop(mon);
    sim.kill();
    outputs.push(("sim".into(), sim.stdout() + &sim.stderr()));
    outputs.push(("monitor log".into(), std::fs::read_to_string(&log).unwrap()));

    for (what, text) in &outputs {
        for secret in [
            CANARY_UDS,
            &CANARY_UDS.to_uppercase(),
            &CANARY_UDS[..32],
            CANARY_PW,
        ] {
            assert!(!text.contains(secret), "{what} leaked a secret: {text}");
        }
    }
}

#[test]
fn logs_events_from_a_captured_file() {
    let fx =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks/tests/fixtures/logs/dps-401002.log");
    let o = run(&["logs", "--events", s(&fx)], "");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let events: Vec<serde_json::Value> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed = events.iter().find(|e| e["kind"] == "failed").unwrap();
    assert_eq!(failed["errorCode"], 401002);
    assert!(failed["hint"]
        .as_str()
        .unwrap()
        .contains("compare the enrolled certificate"));
    assert_eq!(
        failed["nextActions"],
        serde_json::json!([{"action": "regenerateCert"}, {"action": "enroll"}])
    );
    let o = run(&["logs", "--events", "/nonexistent/serial.log"], "");
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("/nonexistent/serial.log"));
}

#[test]
fn ports_lists_as_table_and_json() {
    let o = run(&["ports"], "");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(&["ports", "--json"], "");
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(serde_json::from_str::<serde_json::Value>(&o.stdout)
        .unwrap()
        .is_array());
    let _ = BufReader::new(&b""[..]).lines();
}

#[test]
fn set_uds_exits_1_when_the_device_does_not_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let (state, link) = (dir.path().join("state"), port_in(dir.path()));
    let _sim = sim(
        &state,
        &link,
        &["--config-mode", "--eeprom-fault", "verify"],
    );
    let uds_file = dir.path().join("uds.txt");
    std::fs::write(&uds_file, CANARY_UDS).unwrap();
    let o = run(
        &[
            "set-uds",
            "--port",
            s(&link),
            "--uds-file",
            s(&uds_file),
            "--timeout",
            "10",
        ],
        "",
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("did not read back") && o.stderr.contains("ERROR: Verify failed."),
        "{}",
        o.stderr
    );
    assert!(o.stdout.is_empty());
}
