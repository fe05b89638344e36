//! `devkit build`, `devkit upload` and `devkit device-upload` through the real binary: the
//! arduino-cli stand-in (not a real arduino-cli), the flash guards (exit 2, nothing opened),
//! the real probe-rs / OpenOCD no-probe errors, the virtual DevKit booting an uploaded image
//! with the thumbprint `devkit generate-cert --json` computes, the identity drift warning,
//! and that the UDS never appears in any output.

// The tests that run the arduino-cli stand-in (a shell script) are Unix-only.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

mod json_casing;

#[path = "../../tasks/tests/fixtures/arduino-cli-standin/project.rs"]
mod standin;

use standin::{next_thumbprint, open_port, vector, Project};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");
/// The UDS of vector `explicit-id-medium-crlf`; it must never appear in any output.
const MEDIUM_UDS: &str = "0000000000000000000000000000000000000000000000000000000000000001";

fn run(args: &[&str], cwd: &Path) -> Output {
    let out = Command::new(DEVKIT)
        .args(args)
        .current_dir(cwd)
        .env_remove("DEVKIT_DPS_ID_SCOPE")
        .env_remove("DEVKIT_DPS_GLOBAL_ENDPOINT")
        .env_remove("DEVKIT_DPS_REGISTRATION_ID")
        .env_remove("DEVKIT_ARDUINO_CLI")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run devkit");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains(MEDIUM_UDS),
        "the UDS leaked into the output of {args:?}"
    );
    out
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn build_args<'a>(p: &'a Project, cli: &'a str) -> Vec<&'a str> {
    vec!["--project", s(p.root()), "--arduino-cli", cli]
}

#[cfg(unix)]
#[test]
fn build_success_skip_compile_error_and_missing_tools() {
    let p = Project::new(true);
    let cli = p.arduino_cli();
    let mut args = vec!["build"];
    args.extend(build_args(&p, s(&cli)));

    // No ID Scope and no previous build: invalid input.
    let o = run(&args, p.root());
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("--id-scope"));

    let mut with_scope = args.clone();
    with_scope.extend(["--id-scope", "0ne0001A2B3", "--json"]);
    let o = run(&with_scope, p.root());
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    json_casing::assert_camel_case(&v, "build --json");
    assert_eq!(v["skipped"], false);
    assert!(v["bin"]
        .as_str()
        .unwrap()
        .ends_with(".devkit/build/DevKitDPS.ino.bin"));
    assert!(Path::new(v["map"].as_str().unwrap()).is_file());
    assert!(
        text(&o).1.contains("Sketch uses"),
        "compiler output streamed on stderr"
    );

    // Same inputs (settings reused from the previous build): skipped.
    let mut again = args.clone();
    again.push("--json");
    let o = run(&again, p.root());
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["skipped"], true);
    assert_eq!(p.compiles(), 1);

    // An unusual ID Scope warns but builds.
    let mut odd = args.clone();
    odd.extend(["--id-scope", "my-scope"]);
    let o = run(&odd, p.root());
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(text(&o).1.contains("does not look like 0ne"));

    // A compile error: exit 1, structured diagnostics on stdout with --json.
    std::fs::write(
        p.sketch().join("DevKitDPS.ino"),
        "void setup() {}\n#error \"broken\"\n",
    )
    .unwrap();
    let o = run(&with_scope, p.root());
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    json_casing::assert_camel_case(&v, "build --json (compile error)");
    assert_eq!(v["diagnostics"][0]["line"], 2);
    assert_eq!(v["diagnostics"][0]["severity"], "error");
    assert!(text(&o).1.contains("error(s)"));

    // A build with nothing on PATH (extra flags appended): exit 1, stderr.
    let without_tools = |extra: &[&str]| {
        let o = Command::new(DEVKIT)
            .args([
                "build",
                "--project",
                s(p.root()),
                "--id-scope",
                "0ne0001A2B3",
            ])
            .args(extra)
            .env("PATH", p.root().join("empty-path"))
            .env_remove("DEVKIT_ARDUINO_CLI")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
        text(&o).1
    };
    // arduino-cli missing from PATH: install commands, the flag as the next step.
    let err = without_tools(&[]);
    assert!(
        err.contains("arduino-cli not found")
            && err.contains("arduino-cli core install AZ3166:stm32f4 --additional-urls")
            && err.contains("next: ")
            && err.contains("--arduino-cli FILE"),
        "{err}"
    );
    // arduino-builder chosen and missing: it is named (not arduino-cli), with the Debian
    // package to install and the flag that names another one.
    let err = without_tools(&["--builder", "arduino-builder"]);
    assert!(
        err.contains("arduino-builder not found: `arduino-builder` is not on PATH")
            && err.contains("apt-get install arduino-builder")
            && err.contains("--arduino-builder FILE")
            && !err.contains("arduino-cli not found"),
        "{err}"
    );

    // No arduino-cli, an arduino-builder, and the default Arduino15 folder missing: the error
    // names that folder and what it lacks, and is no "invalid --arduino-data" (never given).
    let tools = p.root().join("builder-only");
    std::fs::create_dir_all(&tools).unwrap();
    stand_in(&tools, "arduino-builder", "echo 'Arduino Builder 1.3.25'");
    let home = p.root().join("home");
    let o = build_on_path(&p, &[], tools.as_os_str(), &home);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("invalid --arduino-data")
            && err.contains("`arduino-cli` is not on PATH")
            && err.contains(&format!(
                "the default Arduino data folder, {}, does not exist",
                home.join(".arduino15").display()
            ))
            && err.contains("next: install arduino-cli and the AZ3166 platform")
            && err.contains("--arduino-data DIR"),
        "{err}"
    );
}

/// `devkit build` of `p` with only `path` on PATH, `home` as HOME and no builder settings
/// from the environment (`extra` flags appended).
#[cfg(unix)]
fn build_on_path(p: &Project, extra: &[&str], path: &std::ffi::OsStr, home: &Path) -> Output {
    Command::new(DEVKIT)
        .args([
            "build",
            "--project",
            s(p.root()),
            "--id-scope",
            "0ne0001A2B3",
        ])
        .args(extra)
        .env("PATH", path)
        .env("HOME", home)
        .env_remove("DEVKIT_ARDUINO_CLI")
        .env_remove("DEVKIT_ARDUINO_DATA")
        .env_remove("DEVKIT_BUILDER")
        .output()
        .unwrap()
}

#[cfg(unix)]
fn stand_in(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let f = dir.join(name);
    std::fs::write(&f, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A complete arduino-builder route in `dir`: stand-ins of arduino-builder and
/// arm-none-eabi-gcc in `bin/`, and an Arduino15 folder holding the AZ3166 platform 1.6.2.
#[cfg(unix)]
fn builder_route(dir: &Path) -> (PathBuf, PathBuf) {
    let tools = dir.join("bin");
    std::fs::create_dir_all(&tools).unwrap();
    stand_in(&tools, "arduino-builder", "echo 'Arduino Builder 1.3.25'");
    stand_in(&tools, "arm-none-eabi-gcc", "echo 12.2.1");
    let data = dir.join("Arduino15");
    let platform = data.join("packages/AZ3166/hardware/stm32f4/1.6.2");
    std::fs::create_dir_all(&platform).unwrap();
    std::fs::write(platform.join("platform.txt"), "name=AZ3166\n").unwrap();
    (tools, data)
}

/// `build`'s auto choice takes the first complete route, as `doctor` reports it: arduino-cli
/// without the platform gives way to a complete arduino-builder route.
#[cfg(unix)]
#[test]
fn build_falls_back_to_a_complete_arduino_builder_route() {
    let p = Project::new(false);
    let (tools, data) = builder_route(p.root());
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        tools.display(),
        p.arduino_cli().parent().unwrap().display()
    );
    let o = build_on_path(&p, &["--arduino-data", s(&data)], path.as_ref(), p.root());
    let err = text(&o).1;
    // The stand-in builder compiles nothing: the build fails after choosing it.
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("arduino-cli cannot build for the DevKit (the DevKit platform AZ3166:stm32f4 is not installed")
            && err.contains("building with arduino-builder instead"),
        "{err}"
    );
}

/// `devkit doctor` takes the arduino-builder route the README offers: with it complete and no
/// arduino-cli, the setup is complete (exit 0) and says which route the build takes.
#[cfg(unix)]
#[test]
fn doctor_is_complete_with_the_arduino_builder_route() {
    let tmp = tempfile::tempdir().unwrap();
    let (tools, data) = builder_route(tmp.path());
    let doctor = |extra: &[&str]| {
        Command::new(DEVKIT)
            .arg("doctor")
            .args(extra)
            .env("PATH", &tools)
            .env("HOME", tmp.path())
            .env_remove("DEVKIT_ARDUINO_CLI")
            .env_remove("DEVKIT_ARDUINO_DATA")
            .env_remove("DEVKIT_ARDUINO_BUILDER")
            .output()
            .unwrap()
    };
    let o = doctor(&["--arduino-data", s(&data)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("setup complete: `devkit build` will use arduino-builder")
            && out.contains("the arduino-cli route lacks arduino-cli")
            && out.contains("n/a  arduino-cli "),
        "{out}"
    );
    let o = doctor(&["--arduino-data", s(&data), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ready"].as_bool(), v["builder"].as_str()),
        (Some(true), Some("arduino-builder"))
    );
    // The default folder (under HOME) has no platform: neither route, exit 1, both named.
    let o = doctor(&[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        err.contains("neither build route works")
            && out.contains(&format!(
                "the default Arduino data folder, {}, does not exist",
                tmp.path().join(".arduino15").display()
            )),
        "{out}\n{err}"
    );
}

#[cfg(unix)]
#[test]
fn build_warns_where_the_sketch_hard_codes_a_setting_it_contradicts() {
    let p = Project::new(true);
    let cli = p.arduino_cli();
    std::fs::write(
        p.sketch().join("DevKitDPS.ino"),
        "#include \"dps_config.h\"\nstatic const char* ID_Scope = \"0ne00000A0A\";\nvoid setup() {}\nvoid loop() {}\n",
    )
    .unwrap();
    let mut args = vec!["build"];
    args.extend(build_args(&p, s(&cli)));
    args.extend(["--id-scope", "0ne0001A2B3"]);
    let o = run(&args, p.root());
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let err = text(&o).1;
    let warning = err
        .lines()
        .find(|l| l.starts_with("warning: ") && l.contains("DevKitDPS.ino:2: "))
        .unwrap_or_else(|| panic!("no file:line warning in {err}"));
    assert!(
        warning.contains("\"0ne00000A0A\"") && warning.contains("\"0ne0001A2B3\""),
        "both values: {warning}"
    );
    // The settings agree with the sketch: no warning.
    let mut same = vec!["build"];
    same.extend(build_args(&p, s(&cli)));
    same.extend(["--id-scope", "0ne00000A0A"]);
    let o = run(&same, p.root());
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(!text(&o).1.contains("hard-coded"), "{:?}", text(&o));
}

#[cfg(unix)]
#[test]
fn build_without_the_platform_names_the_install_commands() {
    let p = Project::new(false);
    let cli = p.arduino_cli();
    let mut args = vec!["build", "--id-scope", "0ne0001A2B3"];
    args.extend(build_args(&p, s(&cli)));
    let o = run(&args, p.root());
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(
        err.contains("AZ3166:stm32f4 is not installed") && err.contains("may no longer be served"),
        "{err}"
    );
}

#[test]
fn upload_guards_and_real_no_probe_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty.bin"), b"").unwrap();
    std::fs::write(d.join("big.bin"), vec![0u8; 999_425]).unwrap();
    std::fs::write(d.join("ok.bin"), vec![0u8; 999_424]).unwrap();
    for (args, needle) in [
        (vec!["upload", "--bin", "empty.bin"], "empty"),
        (vec!["upload", "--bin", "big.bin"], "999424"),
        (
            vec!["upload", "--bin", "ok.bin", "--address", "0x08000000"],
            "bootloader",
        ),
        (
            vec!["upload", "--bin", "ok.bin", "--address", "0x0800BFFF"],
            "bootloader",
        ),
        (
            vec!["upload", "--bin", "ok.bin", "--address", "0x0800C004"],
            "past the end",
        ),
        (
            vec!["upload", "--bin", "ok.bin", "--backend", "sim"],
            "--sim-dir",
        ),
        (
            vec![
                "upload",
                "--bin",
                "ok.bin",
                "--backend",
                "sim",
                "--sim-state",
                "s",
                "--probe",
                "0483:374b",
            ],
            "--probe",
        ),
        (
            vec!["upload", "--bin", "ok.bin", "--probe", "not-a-selector"],
            "--probe",
        ),
        (vec!["upload", "--bin", "missing.bin"], "--bin"),
        (vec!["upload", "--build-dir", "."], "several images"),
        (vec!["upload", "--build-dir", "no-such-dir"], "--build-dir"),
    ] {
        let o = run(&args, d);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {:?}", text(&o));
        assert!(text(&o).1.contains(needle), "{args:?}: {}", text(&o).1);
        assert!(
            !text(&o).1.contains("Looking for the probe"),
            "{args:?} opened nothing"
        );
    }
    // The largest image passes the guards and reaches probe-rs, which finds no probe.
    let o = run(&["upload", "--bin", "ok.bin"], d);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(
        err.contains("0483:374b") && err.contains("probes found:"),
        "{err}"
    );

    if which_openocd() {
        let o = run(&["upload", "--bin", "ok.bin", "--backend", "openocd"], d);
        assert_eq!(o.status.code(), Some(1));
        let err = text(&o).1;
        assert!(
            err.contains("program {") && err.contains("verify reset 0x800c000"),
            "{err}"
        );
        assert!(err.contains("ST-LINK"), "{err}");
    }
}

fn which_openocd() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("openocd").is_file()));
    assert!(
        found || std::env::var_os("DEVKIT_SKIP_OPENOCD").is_some(),
        "openocd is not installed: run scripts/deps.sh (or set DEVKIT_SKIP_OPENOCD=1)"
    );
    found
}

fn uds_file(dir: &Path) -> PathBuf {
    let p = dir.join("devkit.uds");
    std::fs::write(&p, format!("{MEDIUM_UDS}\n")).unwrap();
    p
}

#[cfg(unix)]
#[test]
fn upload_to_the_virtual_devkit_boots_with_generate_certs_thumbprint() {
    let p = Project::new(true);
    p.wrapper("1.2.2", "explicit-id-medium-crlf");
    let cli = p.arduino_cli();
    let mut args = vec![
        "build",
        "--id-scope",
        "0ne0001A2B3",
        "--global-endpoint",
        "127.0.0.1:9",
        "--registration-id",
        "devkit-medium-crlf",
    ];
    args.extend(build_args(&p, s(&cli)));
    let o = run(&args, p.root());
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    let state = tempfile::tempdir().unwrap();
    let build_dir = p.build_path();
    let o = run(
        &[
            "upload",
            "--backend",
            "sim",
            "--build-dir",
            s(&build_dir),
            "--sim-state",
            s(state.path()),
        ],
        p.root(),
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let dps: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state.path().join("firmware/dps_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dps["registrationId"], "devkit-medium-crlf");
    assert_eq!(dps["idScope"], "0ne0001A2B3");

    // The host's view, through the CLI.
    let uds = uds_file(p.root());
    let bin = build_dir.join("DevKitDPS.ino.bin");
    let map = build_dir.join("DevKitDPS.ino.map");
    let out_dir = p.root().join("certs");
    let o = run(
        &[
            "generate-cert",
            "--bin",
            s(&bin),
            "--map",
            s(&map),
            "--uds-file",
            s(&uds),
            "--registration-id",
            "devkit-medium-crlf",
            "--out-dir",
            s(&out_dir),
            "--project",
            s(p.root()),
            "--json",
        ],
        p.root(),
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let gen: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let expected = gen["sha256Thumbprint"].as_str().unwrap().to_string();

    // The virtual DevKit started afterwards boots the uploaded image.
    let mut eeprom = tasks::sim::eeprom::Eeprom::load(state.path()).unwrap();
    eeprom.set("dps_uds", MEDIUM_UDS).unwrap();
    let devkit =
        tasks::sim::VirtualDevKit::start(tasks::sim::SimOptions::new(state.path())).unwrap();
    assert_eq!(
        next_thumbprint(open_port(devkit.device_port()).as_mut(), &mut String::new()),
        expected
    );
    devkit.stop();
    assert_eq!(expected.len(), 64);
}

#[cfg(unix)]
#[test]
fn device_upload_warns_on_identity_drift_before_flashing() {
    let p = Project::new(true);
    let cli = p.arduino_cli();
    let uds = uds_file(p.root());
    // generate-cert for the small image records the project's identity.
    let small = vector("explicit-id-small");
    let o = run(
        &[
            "generate-cert",
            "--bin",
            s(&small.join("DevKitDPS.ino.bin")),
            "--map",
            s(&small.join("DevKitDPS.ino.map")),
            "--uds-file",
            s(&uds),
            "--registration-id",
            "devkit-a",
            "--out-dir",
            s(&p.root().join("certs")),
            "--project",
            s(p.root()),
        ],
        p.root(),
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    // The same image: no drift.
    let state = tempfile::tempdir().unwrap();
    let mut args = vec![
        "device-upload",
        "--id-scope",
        "0ne0001A2B3",
        "--backend",
        "sim",
        "--sim-state",
        s(state.path()),
        "--uds-file",
        s(&uds),
        "--json",
    ];
    args.extend(build_args(&p, s(&cli)));
    let o = run(&args, p.root());
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["drift"].is_null(), "{v}");
    assert_eq!(v["backend"], "sim");

    // A build whose .riot_fw changed: warned, with the new thumbprint, and still flashed.
    p.wrapper("1.2.2", "explicit-id-medium-crlf");
    std::fs::write(
        p.sketch().join("DevKitDPS.ino"),
        "#include \"dps_config.h\"\nvoid setup() { /* new */ }\nvoid loop() {}\n",
    )
    .unwrap();
    let o = run(&args, p.root());
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    json_casing::assert_camel_case(&v, "device-upload --json");
    let thumb = v["drift"]["newSha256Thumbprint"]
        .as_str()
        .expect("new thumbprint with the UDS");
    assert!(
        text(&o).1.contains("changes the device identity") && text(&o).1.contains(thumb),
        "{}",
        text(&o).1
    );
    assert_eq!(v["drift"]["registrationId"], "devkit-a");
    assert_eq!(
        v["drift"]["nextActions"],
        serde_json::json!([{"action": "regenerateCert"}, {"action": "enroll"}])
    );
    assert!(
        !v["drift"]["message"].as_str().unwrap().contains("devkit "),
        "{v}"
    );

    // Through probe-rs there is no probe: the warning still comes first, then exit 1.
    let mut probe_args = vec!["device-upload", "--uds-file", s(&uds)];
    probe_args.extend(build_args(&p, s(&cli)));
    let o = run(&probe_args, p.root());
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    let warn = err
        .find("changes the device identity")
        .expect("drift warning");
    let flash = err.find("==> Flashing").expect("flash attempted");
    assert!(warn < flash, "{err}");
    assert!(err.contains("probes found:"), "{err}");
}
