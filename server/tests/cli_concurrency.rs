//! Several `devkit` processes at once on the same files: the daemon's in-process locks do not
//! reach across processes, the output directory's advisory lock does.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");

fn build() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks/tests/fixtures/dice-vectors/auto-id-small")
}

fn uds_file(dir: &Path, uds: &str) -> PathBuf {
    let p = dir.join(format!("{}.uds", &uds[..4]));
    std::fs::write(&p, uds).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

fn generate(uds: &Path, out: &Path, project: &Path) -> Command {
    let mut c = Command::new(DEVKIT);
    c.args(["generate-cert", "--build-dir"])
        .arg(build())
        .arg("--uds-file")
        .arg(uds)
        .args(["--registration-id", "dev-1", "--device-cert", "--out-dir"])
        .arg(out)
        .arg("--project-dir")
        .arg(project)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// The files of `dir` whose name starts with `prefix` (the file and its backups).
fn contents(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Six concurrent `generate-cert` processes (different UDS, one registration ID and output
/// directory): every identity survives (as the file or a backup) and the alias certificate
/// and the device certificate left in place are the same device's.
#[test]
fn concurrent_generate_cert_processes_keep_every_identity_and_one_device_per_file_set() {
    let tmp = tempfile::tempdir().unwrap();
    let udss: Vec<String> = (10..16).map(|i| format!("{i:x}").repeat(64)).collect();
    let files: Vec<PathBuf> = udss.iter().map(|u| uds_file(tmp.path(), u)).collect();
    // Each device's files, written alone.
    let expected: Vec<(String, String)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let out = tmp.path().join(format!("alone-{i}"));
            let o = generate(f, &out, &out).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            (
                std::fs::read_to_string(out.join("dev-1.pem")).unwrap(),
                std::fs::read_to_string(out.join("device-cert.pem")).unwrap(),
            )
        })
        .collect();
    for round in 0..4 {
        let out = tmp.path().join(format!("shared-{round}"));
        let children: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let project = tmp.path().join(format!("project-{round}-{i}"));
                generate(f, &out, &project).spawn().unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let aliases = contents(&out, "dev-1.pem");
        for (alias, _) in &expected {
            assert!(
                aliases.contains(alias),
                "round {round}: an identity was lost"
            );
        }
        let alias = std::fs::read_to_string(out.join("dev-1.pem")).unwrap();
        let device = std::fs::read_to_string(out.join("device-cert.pem")).unwrap();
        assert!(
            expected.contains(&(alias, device)),
            "round {round}: dev-1.pem and device-cert.pem are different devices'"
        );
    }
}
