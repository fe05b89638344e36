//! A CLI command whose standard output fails: a reader that went away (`| head -1`) ends it
//! quietly, a write error (`> /dev/full`) is a one-line error with exit 1; never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");
const SAMPLE_UDS: &str = "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae";
/// 128 + SIGPIPE, as a shell reports a tool stopped by a closed pipe.
const STDOUT_CLOSED: i32 = 141;

fn small() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tasks/tests/fixtures/dice-vectors/explicit-id-small")
}

/// Run `devkit args` with a standard output whose reader is already gone.
fn with_closed_stdout(args: &[&str], cwd: &Path) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Command::new(DEVKIT)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run devkit")
}

fn assert_quiet(o: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(STDOUT_CLOSED), "{what}: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{what}: quiet: {stderr}"
    );
}

#[test]
fn a_reader_that_went_away_ends_inspect_cert_ports_and_generate_cert_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let cert = small().join("my-devkit-01.pem");
    let o = with_closed_stdout(&["inspect-cert", cert.to_str().unwrap()], tmp.path());
    assert_quiet(&o, "inspect-cert");
    let o = with_closed_stdout(&["ports"], tmp.path());
    assert_quiet(&o, "ports");

    // generate-cert writes its files before it reports them: they are all there.
    let uds = tmp.path().join("uds.txt");
    std::fs::write(&uds, SAMPLE_UDS).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&uds, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = tmp.path().join("out");
    let bin = small().join("DevKitDPS.ino.bin");
    let map = small().join("DevKitDPS.ino.map");
    let o = with_closed_stdout(
        &[
            "generate-cert",
            "--bin",
            bin.to_str().unwrap(),
            "--map",
            map.to_str().unwrap(),
            "--uds-file",
            uds.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
            "--registration-id",
            "my-devkit-01",
            "--allow-sample-uds",
        ],
        tmp.path(),
    );
    assert_quiet(&o, "generate-cert");
    let der = |p: &Path| {
        tasks::identity::pem::decode(&std::fs::read_to_string(p).unwrap(), None).unwrap()
    };
    assert_eq!(
        der(&out.join("my-devkit-01.pem")),
        der(&small().join("my-devkit-01.pem"))
    );
}

/// `devkit logs` writes as it goes (it ignored write errors): a closed pipe ends it quietly.
#[test]
fn a_reader_that_went_away_ends_logs_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("serial.log");
    std::fs::write(&log, "Info: booted\r\n".repeat(1000)).unwrap();
    let o = with_closed_stdout(&["logs", "serial.log"], tmp.path());
    assert_quiet(&o, "logs");
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_standard_output_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("serial.log"), "Info: booted\r\n").unwrap();
    for args in [vec!["ports"], vec!["logs", "serial.log"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let o = Command::new(DEVKIT)
            .args(&args)
            .current_dir(tmp.path())
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .expect("run devkit");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: cannot write to standard output: No space left on device"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `devkit monitor | head -1`: the monitor ignored write errors and ran on for nothing; it
/// now ends quietly once its reader is gone, the port closed.
#[test]
fn a_reader_that_went_away_ends_the_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = tasks::sim::SimOptions::new(dir.path());
    opts.transport = tasks::sim::SimTransport::Tcp { port: 0 };
    let sim = tasks::sim::VirtualDevKit::start(opts).unwrap();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = Command::new(DEVKIT)
        .arg("monitor")
        .arg("--port")
        .arg(sim.port_path())
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the monitor ran on with nobody reading");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_quiet(&o, "monitor");
}
