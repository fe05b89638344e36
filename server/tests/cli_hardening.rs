//! Hostile and careless input through the real binary (issue "Hardening"): secrets in bad
//! input are never echoed, a UDS file is never overwritten, every input is bounded and must be
//! a regular file, temporary files of killed runs are cleaned up.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");
const KEY_CANARY: &str = "Y2FuYXJ5LWtleS1uZXZlci1zaG93bg==";

fn small() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tasks/tests/fixtures/dice-vectors/explicit-id-small")
}

/// Run with a deadline: a FIFO or device input must be refused, not hang.
fn run(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(DEVKIT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("devkit {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_connection_string_file_holding_only_the_key_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dps.cs");
    for content in [
        KEY_CANARY.to_string(),
        format!("SharedAccessKey:{KEY_CANARY}"),
        format!("HostName=h;SharedAccessKeyName=p;SharedAccessKey:{KEY_CANARY}\n"),
    ] {
        std::fs::write(&f, &content).unwrap();
        let o = run(&[
            os("enroll"),
            os("--connection-string-file"),
            f.as_os_str(),
            os("--cert"),
            os("/nonexistent.pem"),
        ]);
        let out = all_output(&o);
        assert_eq!(o.status.code(), Some(2), "{out}");
        assert!(
            out.contains("--connection-string-file") && out.contains('#'),
            "names the input and the segment: {out}"
        );
        assert!(
            !out.contains("Y2FuYXJ5") && !out.contains("canary"),
            "{out}"
        );
    }
}

#[test]
fn provision_never_overwrites_a_uds_file() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("x.ino.bin");
    std::fs::copy(small().join("DevKitDPS.ino.bin"), &bin).unwrap();
    std::fs::copy(
        small().join("DevKitDPS.ino.map"),
        dir.path().join("x.ino.map"),
    )
    .unwrap();
    let cs = dir.path().join("dps.cs");
    std::fs::write(
        &cs,
        format!("HostName=h.example;SharedAccessKeyName=p;SharedAccessKey={KEY_CANARY}\n"),
    )
    .unwrap();
    let existing = dir.path().join("other-device.uds");
    std::fs::write(&existing, "ab".repeat(32)).unwrap();
    let port_missing = dir.path().join("no-such-port");
    let provision = |save_uds_to: &Path| {
        run(&[
            os("provision"),
            os("--port"),
            port_missing.as_os_str(),
            os("--bin"),
            bin.as_os_str(),
            os("--connection-string-file"),
            cs.as_os_str(),
            os("--registration-id"),
            os("dev-1"),
            os("--save-uds-to"),
            save_uds_to.as_os_str(),
            os("--project"),
            dir.path().as_os_str(),
        ])
    };
    let o = provision(&existing);
    let out = all_output(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("--save-uds-to") && out.contains("exists"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "ab".repeat(32),
        "the other device's UDS is kept"
    );
    assert!(!out.contains("Y2FuYXJ5"), "{out}");

    // A new file with a port that does not exist: nothing reached the device, so no UDS file is
    // left behind to refuse the retry on the right port.
    let fresh = dir.path().join("new-device.uds");
    let o = provision(&fresh);
    let out = all_output(&o);
    assert_ne!(o.status.code(), Some(0), "{out}");
    assert!(
        !fresh.exists(),
        "a UDS that was never sent left its file: {out}"
    );
}

#[cfg(unix)]
#[test]
fn devices_fifos_and_oversized_inputs_are_refused_naming_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let uds = dir.path().join("a.uds");
    std::fs::write(&uds, "ab".repeat(32)).unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (bin, map) = (
        small().join("DevKitDPS.ino.bin"),
        small().join("DevKitDPS.ino.map"),
    );
    let gen = |bin: &Path, map: &Path, uds: &Path, out: &Path| {
        run(&[
            os("generate-cert"),
            os("--bin"),
            bin.as_os_str(),
            os("--map"),
            map.as_os_str(),
            os("--uds-file"),
            uds.as_os_str(),
            os("--registration-id"),
            os("dev-1"),
            os("--out-dir"),
            out.as_os_str(),
            os("--project"),
            out.as_os_str(),
        ])
    };
    let out_dir = dir.path().join("out");
    for (o, input, what) in [
        (
            gen(Path::new("/dev/zero"), &map, &uds, &out_dir),
            "--bin",
            "device",
        ),
        (gen(&bin, &fifo, &uds, &out_dir), "--map", "FIFO"),
        (
            gen(&bin, &map, Path::new("/dev/urandom"), &out_dir),
            "--uds-file",
            "device",
        ),
        (
            gen(&bin, &map, dir.path(), &out_dir),
            "--uds-file",
            "directory",
        ),
    ] {
        let text = all_output(&o);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(
            text.contains(input) && text.contains(what),
            "{input}: {text}"
        );
    }
    // Too large for what it is.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 1024 * 1024 + 1]).unwrap();
    let text = all_output(&gen(&big, &map, &uds, &out_dir));
    assert!(text.contains("--bin") && text.contains("1 MiB"), "{text}");
    // A FIFO where the certificate goes: refused, not a hang.
    let fifo_out = dir.path().join("fifo-out");
    std::fs::create_dir_all(&fifo_out).unwrap();
    nix::unistd::mkfifo(&fifo_out.join("dev-1.pem"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let o = gen(&bin, &map, &uds, &fifo_out);
    assert_ne!(o.status.code(), Some(0), "{}", all_output(&o));
    assert!(all_output(&o).contains("FIFO"), "{}", all_output(&o));
    // A Wi-Fi password file that is not a password: bounded, never echoed.
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "hunter2-canary ".repeat(1000)).unwrap();
    let o = run(&[
        os("set-wifi"),
        os("--port"),
        os("/nonexistent"),
        os("--ssid"),
        os("Lab"),
        os("--password-file"),
        pw.as_os_str(),
    ]);
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(
        text.contains("--wifi-password-file")
            && text.contains("4 KiB")
            && !text.contains("hunter2"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn a_readable_uds_file_is_warned_about_and_stale_temp_files_are_cleaned() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let uds = dir.path().join("a.uds");
    std::fs::write(&uds, "c4a7".repeat(16)).unwrap();
    std::fs::set_permissions(&uds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // Left by a SIGKILLed run (its PID cannot exist), and a live writer's (this process).
    let stale = out_dir.join(".devkit-tmp-4194999-abcdef");
    let live = out_dir.join(format!(".devkit-tmp-{}-abcdef", std::process::id()));
    for p in [&stale, &live] {
        let f = std::fs::File::create(p).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(600))
            .unwrap();
    }
    let o = run(&[
        os("generate-cert"),
        os("--bin"),
        small().join("DevKitDPS.ino.bin").as_os_str(),
        os("--map"),
        small().join("DevKitDPS.ino.map").as_os_str(),
        os("--uds-file"),
        uds.as_os_str(),
        os("--registration-id"),
        os("dev-1"),
        os("--alias-key"),
        os("--out-dir"),
        out_dir.as_os_str(),
        os("--project"),
        out_dir.as_os_str(),
    ]);
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("readable by other users") && text.contains("0600"),
        "{text}"
    );
    assert!(!text.contains("c4a7c4a7"), "{text}");
    assert!(
        !stale.exists(),
        "the killed run's temporary file is removed"
    );
    assert!(live.exists(), "a live writer's temporary file is kept");
    assert_eq!(
        std::fs::metadata(out_dir.join("alias-key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

/// `monitor --log-file` naming a symbolic link (to a file, or dangling) is refused before any
/// port is opened: nothing is appended to the link's target, nothing is created.
#[cfg(unix)]
#[test]
fn a_log_file_that_is_a_symbolic_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim.txt");
    std::fs::write(&target, "theirs\n").unwrap();
    let link = dir.path().join("monitor.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let dangling = dir.path().join("dangling.log");
    let nowhere = dir.path().join("nowhere.txt");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    for log in [&link, &dangling] {
        let o = run(&[
            os("monitor"),
            os("--port"),
            os("/dev/null"),
            os("--log-file"),
            log.as_os_str(),
        ]);
        let all = all_output(&o);
        assert_eq!(o.status.code(), Some(2), "{all}");
        assert!(all.contains("symbolic link"), "{all}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs\n");
    assert!(!nowhere.exists());
}
