//! CLI: `devkit dps-emulator`, `devkit enroll`, `devkit provision` (simulated, and against a
//! port with the sim flash backend), run as the real binary.

mod json_casing;
mod small_fs;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tasks/assets/sample-firmware")
        .join(name)
}

fn devkit(args: &[&str]) -> Output {
    Command::new(DEVKIT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A running `devkit dps-emulator` and what its banner said.
struct EmulatorProcess {
    child: Child,
    lines: Vec<String>,
}

impl EmulatorProcess {
    fn start(state: &Path, extra: &[&str]) -> EmulatorProcess {
        let mut child = Command::new(DEVKIT)
            .args(["dps-emulator", "--listen", "127.0.0.1:0", "--emulator-dir"])
            .arg(state)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        for _ in 0..5 {
            let mut l = String::new();
            out.read_line(&mut l).unwrap();
            lines.push(l.trim_end().to_string());
        }
        EmulatorProcess { child, lines }
    }
    fn value(&self, key: &str) -> String {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.lines))
            .to_string()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn generate_cert(dir: &Path, uds: &str, id: &str) -> PathBuf {
    let uds_file = dir.join(format!("{id}.uds"));
    std::fs::write(&uds_file, uds).unwrap();
    let o = Command::new(DEVKIT)
        .args(["generate-cert", "--bin"])
        .arg(sample("sample.bin"))
        .arg("--map")
        .arg(sample("sample.map"))
        .arg("--uds-file")
        .arg(&uds_file)
        .args(["--registration-id", id, "--out-dir"])
        .arg(dir)
        .arg("--project")
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    dir.join(format!("{id}.pem"))
}

#[test]
fn emulator_banner_then_enroll_with_the_project_default_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let emu = EmulatorProcess::start(
        &dir.path().join("dps"),
        &["--hub", "cli-hub.azure-devices.net"],
    );
    assert!(
        emu.lines[0].starts_with("service endpoint: https://127.0.0.1:"),
        "{:?}",
        emu.lines
    );
    assert!(
        emu.lines[1].starts_with("connection string: HostName=127.0.0.1:"),
        "{:?}",
        emu.lines
    );
    assert!(emu.lines[2].starts_with("id scope: 0ne"), "{:?}", emu.lines);
    assert!(
        emu.lines[3].starts_with("device endpoint: 127.0.0.1:"),
        "{:?}",
        emu.lines
    );
    let ca = emu.value("ca certificate");
    assert!(Path::new(&ca).exists());
    let cs = emu.value("connection string");
    let cs_file = dir.path().join("dps.cs");
    std::fs::write(&cs_file, format!("{cs}\n")).unwrap();

    let project = dir.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    generate_cert(
        &project,
        "4f0b2c6a1d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a",
        "cli-dev-1",
    );
    let o = Command::new(DEVKIT)
        .args(["enroll", "--connection-string-file"])
        .arg(&cs_file)
        .arg("--ca-file")
        .arg(&ca)
        .arg("--project")
        .arg(&project)
        .args(["--iot-hub", "cli-hub.azure-devices.net"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "enrollment: cli-dev-1 (enabled, hub cli-hub.azure-devices.net)"
    );
    assert!(
        lines[1].starts_with("thumbprint: ") && lines[1].contains("SHA-1"),
        "{out}"
    );
    assert!(lines[2].starts_with("etag: \""), "{out}");
    let key = cs.split("SharedAccessKey=").nth(1).unwrap();
    assert!(!out.contains(key) && !err.contains(key));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join(".devkit/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["lastEnrolled"]["registrationId"], "cli-dev-1");
    assert_eq!(
        state["lastEnrolled"]["sha256Thumbprint"],
        state["lastGenerated"]["sha256Thumbprint"]
    );

    // Enrolling again updates under the ETag: a new etag.
    let o2 = Command::new(DEVKIT)
        .args(["enroll", "--json", "--connection-string-file"])
        .arg(&cs_file)
        .arg("--ca-file")
        .arg(&ca)
        .arg("--project")
        .arg(&project)
        .output()
        .unwrap();
    assert!(o2.status.success(), "{:?}", text(&o2));
    let v: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    json_casing::assert_camel_case(&v, "enroll --json");
    assert_eq!(v["registrationId"], "cli-dev-1");
    assert_ne!(
        format!("etag: \"{}\"", v["etag"].as_str().unwrap()),
        lines[2]
    );
    // Re-enrolling without --iot-hub keeps the hub someone set (read-modify-write).
    assert_eq!(
        v["iotHubs"],
        serde_json::json!(["cli-hub.azure-devices.net"]),
        "{v}"
    );
    assert_eq!(v["provisioningStatus"], "enabled");
}

/// The project directory on a full disk: DPS creates the enrollment, the project state cannot
/// be saved. enroll still prints the enrollment, thumbprint and ETag (and `--json` its report),
/// warns naming the state file and the OS error, exits 0; once space is freed, enrolling again
/// records the enrollment (DPS already holds it: a new ETag, the same thumbprint).
#[test]
fn enroll_on_a_full_disk_reports_the_enrollment_and_the_next_run_records_it() {
    let Some(fs) = small_fs::SmallFs::mount("64k") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let emu = EmulatorProcess::start(&dir.path().join("dps"), &[]);
    let (ca, cs) = (emu.value("ca certificate"), emu.value("connection string"));
    let cs_file = dir.path().join("dps.cs");
    std::fs::write(&cs_file, format!("{cs}\n")).unwrap();
    let project = fs.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    generate_cert(
        &project,
        "4f0b2c6a1d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a",
        "full-disk-1",
    );
    let state_file = project.join(".devkit").join("state.json");
    let state_before = std::fs::read(&state_file).unwrap();
    let filler = fs.fill();
    let enroll = |json: bool| {
        let mut c = Command::new(DEVKIT);
        c.args(["enroll", "--connection-string-file"])
            .arg(&cs_file)
            .arg("--ca-file")
            .arg(&ca)
            .arg("--project")
            .arg(&project);
        if json {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        let (out, err) = text(&o);
        (o.status.code(), out, err)
    };

    let (code, out, err) = enroll(false);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "enrollment: full-disk-1 (enabled)", "{out}");
    assert!(lines[1].starts_with("thumbprint: "), "{out}");
    assert!(lines[2].starts_with("etag: \""), "{out}");
    let warning = err
        .lines()
        .find(|l| l.starts_with("warning: the enrollment exists in DPS"))
        .unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(
        warning.contains(&state_file.display().to_string())
            && warning.contains("No space left on device"),
        "names the state file and the OS error: {warning}"
    );
    assert!(
        !warning.contains(".devkit-tmp"),
        "names the file the user knows, not a temporary one: {warning}"
    );
    assert!(err.contains("next: "), "{err}");
    assert_eq!(
        std::fs::read(&state_file).unwrap(),
        state_before,
        "kept whole"
    );

    let (code, out, err) = enroll(true);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["registrationId"], "full-disk-1");
    assert!(v["etag"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    let thumbprint = v["sha256Thumbprint"].as_str().unwrap().to_string();
    assert!(lines[1].contains(&thumbprint), "{out}");
    let warnings = |v: &serde_json::Value| -> Vec<String> {
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w.as_str().map(str::to_string))
            .filter(|w| w.contains("state.json"))
            .collect()
    };
    assert!(
        matches!(&warnings(&v)[..], [w] if w.contains("No space left")),
        "{v}"
    );
    assert_eq!(v["nextActions"][0]["action"], "retry", "{v}");

    std::fs::remove_file(filler).unwrap();
    let (code, out, err) = enroll(true);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(warnings(&v).is_empty(), "{v}");
    assert!(v["nextActions"].as_array().unwrap().is_empty(), "{v}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["lastEnrolled"]["registrationId"], "full-disk-1");
    assert!(
        state["lastEnrolled"]["sha256Thumbprint"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(&thumbprint)),
        "{state}"
    );
}

#[test]
fn enroll_refuses_bad_inputs_and_wrong_keys_without_echoing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let emu = EmulatorProcess::start(&dir.path().join("dps"), &[]);
    let ca = emu.value("ca certificate");
    let cs = emu.value("connection string");
    let cert = generate_cert(
        dir.path(),
        "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "cli-dev-2",
    );

    // A wrong key: 401 from the service, exit 1, the key never shown.
    let canary = "Y2FuYXJ5LWtleS1uZXZlci1zaG93bg==";
    let host = cs.split(';').next().unwrap();
    let bad = dir.path().join("bad.cs");
    std::fs::write(
        &bad,
        format!("{host};SharedAccessKeyName=provisioningserviceowner;SharedAccessKey={canary}"),
    )
    .unwrap();
    let o = Command::new(DEVKIT)
        .args(["enroll", "--connection-string-file"])
        .arg(&bad)
        .arg("--ca-file")
        .arg(&ca)
        .arg("--cert")
        .arg(&cert)
        .arg("--project")
        .arg(dir.path())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("401"), "{err}");
    assert!(!out.contains(canary) && !err.contains(canary));

    // A malformed connection string: exit 2 naming the field, not echoing it.
    let broken = dir.path().join("broken.cs");
    std::fs::write(
        &broken,
        format!("{host};SharedAccessKeyName=p;SharedAccessKey=not-base64-canary!"),
    )
    .unwrap();
    let o = Command::new(DEVKIT)
        .args(["enroll", "--connection-string-file"])
        .arg(&broken)
        .arg("--cert")
        .arg(&cert)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("SharedAccessKey") && !err.contains("canary"),
        "{err}"
    );

    // The DeviceID certificate is not what gets enrolled.
    let dev = dir.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    let uds_file = dev.join("u");
    std::fs::write(
        &uds_file,
        "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
    )
    .unwrap();
    let g = Command::new(DEVKIT)
        .args([
            "generate-cert",
            "--device-cert",
            "--registration-id",
            "x1",
            "--bin",
        ])
        .arg(sample("sample.bin"))
        .arg("--map")
        .arg(sample("sample.map"))
        .arg("--uds-file")
        .arg(&uds_file)
        .arg("--out-dir")
        .arg(&dev)
        .arg("--project")
        .arg(&dev)
        .output()
        .unwrap();
    assert!(g.status.success(), "{:?}", text(&g));
    let cs_file = dir.path().join("good.cs");
    std::fs::write(&cs_file, &cs).unwrap();
    let o = Command::new(DEVKIT)
        .args(["enroll", "--connection-string-file"])
        .arg(&cs_file)
        .arg("--ca-file")
        .arg(&ca)
        .arg("--cert")
        .arg(dev.join("device-cert.pem"))
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("DeviceID certificate"), "{err}");

    // No certificate known: exit 2 with what to do.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = Command::new(DEVKIT)
        .args(["enroll", "--connection-string-file"])
        .arg(&cs_file)
        .arg("--project")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("generate-cert"));

    // The az backend is refused cleanly when az is not installed.
    if which_az().is_none() {
        let o = Command::new(DEVKIT)
            .args(["enroll", "--backend", "az", "--dps-name", "d", "--cert"])
            .arg(&cert)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(text(&o).1.contains("az"), "{:?}", text(&o));
    }
}

fn which_az() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("az"))
            .find(|f| f.is_file())
    })
}

#[test]
fn provision_simulate_ends_assigned() {
    let o = devkit(&[
        "provision",
        "--simulate",
        "--hub",
        "sim-cli.azure-devices.net",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(
        out.lines().last(),
        Some("assigned hub: sim-cli.azure-devices.net"),
        "{out}"
    );
    assert!(
        out.contains("hub registry: az-") && out.contains(" found"),
        "{out}"
    );
    for step in [
        "==> Configuring the DevKit",
        "==> Computing the alias certificate",
        "==> Enrolling",
        "==> Waiting for the device to register",
        "device: assigned to sim-cli.azure-devices.net",
    ] {
        assert!(err.contains(step), "missing {step:?} in\n{err}");
    }
}

#[test]
fn provision_simulate_reports_401002_with_its_hint() {
    let o = devkit(&["provision", "--simulate", "--fault", "wrong-uds"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    // Explained against the enrollment DPS holds: which input differs, and the one fix.
    assert!(
        err.contains("401002") && err.contains("hint: ") && err.contains("never generated"),
        "{err}"
    );
    assert!(!out.contains("assigned hub"));
}

#[test]
fn provision_without_simulate_validates_its_inputs() {
    let o = devkit(&["provision"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--port"));
    let o = devkit(&[
        "provision",
        "--port",
        "/dev/null",
        "--bin",
        "/nonexistent.bin",
        "--connection-string-file",
        "/nonexistent",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("--connection-string-file"),
        "{:?}",
        text(&o)
    );
}

/// The non-simulated path: a virtual DevKit on its pty (as a real port), flashed through the
/// sim backend, a separately running emulator, connection string from a file.
#[test]
fn provision_against_a_port_with_the_sim_backend() {
    use tasks::sim::{SimOptions, VirtualDevKit};
    let dir = tempfile::tempdir().unwrap();
    let emu = EmulatorProcess::start(&dir.path().join("dps"), &[]);
    let ca = emu.value("ca certificate");
    let cs_file = dir.path().join("dps.cs");
    std::fs::write(&cs_file, emu.value("connection string")).unwrap();
    let build = dir.path().join("build");
    std::fs::create_dir_all(&build).unwrap();
    std::fs::copy(sample("sample.bin"), build.join("sample.bin")).unwrap();
    std::fs::copy(sample("sample.map"), build.join("sample.map")).unwrap();
    let dps = serde_json::json!({"global_endpoint": emu.value("device endpoint"), "id_scope": emu.value("id scope"), "registration_id": null});
    std::fs::write(build.join("dps_config.json"), dps.to_string()).unwrap();
    let wifi = dir.path().join("wifi");
    std::fs::write(&wifi, "hunter2-canary\n").unwrap();

    let sim_state = dir.path().join("s");
    let devkit = VirtualDevKit::start(SimOptions {
        config_mode: true,
        ..SimOptions::new(&sim_state)
    })
    .unwrap();
    let project = dir.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    let uds_out = dir.path().join("uds.txt");
    let o = Command::new(DEVKIT)
        .arg("provision")
        .arg("--port")
        .arg(devkit.device_port())
        .arg("--bin")
        .arg(build.join("sample.bin"))
        .args(["--backend", "sim", "--sim-state"])
        .arg(&sim_state)
        .arg("--trusted-ca")
        .arg(&ca)
        .arg("--connection-string-file")
        .arg(&cs_file)
        .arg("--ca-file")
        .arg(&ca)
        .args(["--mac", devkit.mac(), "--wifi-ssid", "Lab"])
        .arg("--wifi-password-file")
        .arg(&wifi)
        .arg("--save-uds-to")
        .arg(&uds_out)
        .arg("--project")
        .arg(&project)
        .args(["--timeout", "60"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(
        out.lines().last(),
        Some("assigned hub: devkit-emulated-hub.azure-devices.net"),
        "{out}"
    );
    // The UDS was saved 0600 and appears nowhere in the output; nor does the Wi-Fi password.
    let uds = std::fs::read_to_string(&uds_out).unwrap();
    assert_eq!(uds.trim().len(), 64);
    assert!(!out.contains(uds.trim()) && !err.contains(uds.trim()));
    assert!(!out.contains("hunter2") && !err.contains("hunter2"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&uds_out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join(".devkit/state.json")).unwrap())
            .unwrap();
    let id = state["lastEnrolled"]["registrationId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id, format!("az-{}v1v6v2", devkit.mac()));
    assert!(project.join(format!("{id}.pem")).exists());
    drop(devkit);
}
