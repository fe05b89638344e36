//! Command-line parsing of the real binary: usage errors never echo a secret.

use std::process::Command;

const CANARY_UDS: &str = "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2";

#[test]
fn a_uds_typed_as_a_positional_argument_is_not_echoed() {
    let out = Command::new(env!("CARGO_BIN_EXE_devkit"))
        .args(["generate-cert", CANARY_UDS])
        .output()
        .expect("run devkit");
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("<redacted>"), "the error still says what was wrong: {stderr}");
    assert!(!stderr.to_lowercase().contains(&CANARY_UDS[..16]), "UDS echoed on stderr");
    assert!(!stdout.to_lowercase().contains(&CANARY_UDS[..16]), "UDS echoed on stdout");
}

#[test]
fn version_prints_the_package_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_devkit")).arg("--version").output().expect("run devkit");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("devkit {}", env!("CARGO_PKG_VERSION")));
}
