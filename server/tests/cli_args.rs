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
    assert!(
        stderr.contains("<argument 2>"),
        "the error still says what was wrong: {stderr}"
    );
    assert!(
        !stderr.to_lowercase().contains(&CANARY_UDS[..16]),
        "UDS echoed on stderr"
    );
    assert!(
        !stdout.to_lowercase().contains(&CANARY_UDS[..16]),
        "UDS echoed on stdout"
    );
}

/// Any shape of secret on argv (a base64 key, a positional Wi-Fi password, `--flag=value`):
/// the usage error names its position, never its text.
#[test]
fn every_unexpected_or_invalid_argument_value_is_redacted() {
    let cases: &[&[&str]] = &[
        &[
            "set-wifi",
            "--port",
            "/dev/null",
            "--ssid",
            "home",
            "pw-canary-Hunter2",
        ],
        &["enroll", "c2VjcmV0LWNhbmFyeS1rZXktZm9yLXRlc3RzLW9ubHk="],
        &[
            "set-uds",
            "--port",
            "/dev/null",
            "--generate",
            "--timeout=pw-canary-77",
        ],
        &[
            "set-uds",
            "--port",
            "/dev/null",
            "--generate",
            "--timeout",
            "pw-canary-77",
        ],
        &["set-wifi", "--pw-canary-flag"],
        // A hidden alias of a switch given a value (issue 20): clap quotes the value alone.
        &[
            "set-uds",
            "--generate",
            "--allow-published-sample=5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2",
        ],
        &["pw-canary-subcommand"],
    ];
    for args in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_devkit"))
            .args(*args)
            .output()
            .expect("run devkit");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for word in ["canary", "c2VjcmV0", "Hunter2", &CANARY_UDS[..16]] {
            assert!(!all.contains(word), "{args:?} echoed {word}: {all}");
        }
        assert!(all.contains("<argument "), "names the position: {all}");
    }
}

#[test]
fn version_prints_the_package_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_devkit"))
        .arg("--version")
        .output()
        .expect("run devkit");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("devkit {}", env!("CARGO_PKG_VERSION"))
    );
}
