//! `--json` failures: every subcommand that takes `--json` prints, when it fails, one JSON
//! object on stdout, `{"error": {"kind", "input", "message", "hint", "nextActions"}}`, and
//! exits with the code it has without `--json` (2 for the caller's input, 1 otherwise). The
//! error goes to stderr as text either way.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn devkit(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devkit"))
        .args(args)
        .current_dir(cwd)
        .env_remove("DEVKIT_ARDUINO_CLI")
        .env_remove("DEVKIT_DPS_ID_SCOPE")
        .env_remove("DEVKIT_DPS_GLOBAL_ENDPOINT")
        .env_remove("DEVKIT_DPS_REGISTRATION_ID")
        .stdin(Stdio::null())
        .output()
        .expect("run devkit")
}

/// One failing invocation per `--json` subcommand: (args, exit code, the refused input).
const CASES: &[(&[&str], i32, Option<&str>)] = &[
    (
        &[
            "build",
            "--json",
            "--id-scope",
            "0ne00000A0A",
            "--sketch",
            "nowhere",
        ],
        2,
        Some("sketch"),
    ),
    (
        &[
            "device-upload",
            "--json",
            "--id-scope",
            "0ne00000A0A",
            "--sketch",
            "nowhere",
            "--backend",
            "sim",
        ],
        2,
        Some("simDir"),
    ),
    (
        &[
            "doctor",
            "--json",
            "--arduino-cli",
            "/nonexistent/arduino-cli",
        ],
        1,
        None,
    ),
    (&["enroll", "--json"], 2, Some("connectionString")),
    (
        &[
            "generate-cert",
            "--json",
            "--bin",
            "missing.bin",
            "--map",
            "missing.map",
            "--uds-file",
            "missing.uds",
            "--out-dir",
            "out",
        ],
        2,
        Some("registrationId"),
    ),
    (&["inspect-cert", "--json", "missing.pem"], 2, Some("cert")),
    (&["provision", "--json"], 2, Some("port")),
    // Refused before any port is opened (the input named depends on which check comes first).
    (
        &[
            "set-uds",
            "--json",
            "--port",
            "/nonexistent/tty",
            "--generate",
        ],
        2,
        None,
    ),
    (
        &[
            "set-wifi",
            "--json",
            "--port",
            "/nonexistent/tty",
            "--wifi-ssid",
            "Lab",
            "--wifi-password-file",
            "missing.txt",
        ],
        2,
        None,
    ),
    (
        &[
            "upload",
            "--json",
            "--backend",
            "sim",
            "--bin",
            "missing.bin",
        ],
        2,
        None,
    ),
];

/// `--json` subcommands with no failing invocation a test can cause: `ports` fails only when
/// the operating system cannot list serial ports.
const CANNOT_FAIL_HERE: &[&str] = &["ports"];

const KINDS: &[&str] = &[
    "invalidParams",
    "notFound",
    "wouldOverwrite",
    "deviceError",
    "buildFailed",
    "flashFailed",
    "dpsError",
    "cancelled",
    "taskFailed",
];

/// The subcommands `devkit --help` lists.
fn subcommands(cwd: &Path) -> Vec<String> {
    let help = String::from_utf8(devkit(&["--help"], cwd).stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_json_subcommand_has_a_case() {
    let tmp = tempfile::tempdir().unwrap();
    let all = subcommands(tmp.path());
    assert!(all.len() > 10, "{all:?}");
    for sub in all {
        if !takes_json(&sub, tmp.path()) {
            continue;
        }
        assert!(
            CASES.iter().any(|(args, ..)| args[0] == sub)
                || CANNOT_FAIL_HERE.contains(&sub.as_str()),
            "`devkit {sub}` takes --json: add a failing invocation to CASES"
        );
    }
}

/// The `error` member, checked field by field.
fn check_error(v: &serde_json::Value, what: &str, input: Option<&str>) {
    let e = v["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: no error object: {v}"));
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["hint", "input", "kind", "message", "nextActions"],
        "{what}: {v}"
    );
    let kind = e["kind"].as_str().unwrap_or_default();
    assert!(KINDS.contains(&kind), "{what}: kind {kind:?}");
    match input {
        Some(i) => assert_eq!(e["input"], i, "{what}: {v}"),
        None => assert!(
            e["input"].is_null() || e["input"].is_string(),
            "{what}: {v}"
        ),
    }
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {v}"
    );
    assert!(e["hint"].is_null() || e["hint"].is_string(), "{what}: {v}");
    for step in e["nextActions"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: nextActions is not an array: {v}"))
    {
        assert!(step["action"].is_string(), "{what}: {step}");
        assert!(
            step.as_object()
                .unwrap()
                .keys()
                .all(|k| k == "action" || k == "detail"),
            "{what}: {step}"
        );
    }
}

#[test]
fn each_json_subcommand_prints_one_error_object_on_failure() {
    let mut ran = 0;
    for (args, code, input) in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let what = args.join(" ");
        // A case waits for its subcommand to take --json (the coverage test asks for one case
        // per subcommand that does).
        if !takes_json(args[0], tmp.path()) {
            continue;
        }
        ran += 1;
        let o = devkit(args, tmp.path());
        assert_eq!(o.status.code(), Some(*code), "{what}: {o:?}");
        let out = String::from_utf8(o.stdout).unwrap();
        // One document: the whole of stdout parses as one JSON value.
        let v: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{what}: stdout is not one JSON object ({e}): {out}"));
        check_error(&v, &what, *input);
        if *code == 2 {
            assert_eq!(v["error"]["kind"], "invalidParams", "{what}: {v}");
        }

        // Without --json: the same exit code, the error as text on stderr, nothing on stdout.
        let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        let o = devkit(&plain, tmp.path());
        assert_eq!(o.status.code(), Some(*code), "{what} (text)");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("error: "), "{what} (text): {err}");
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("\"error\""),
            "{what} (text)"
        );
    }
    assert!(ran >= 7, "ran {ran} cases");
}

/// Whether `devkit <sub> --help` lists `--json`.
fn takes_json(sub: &str, cwd: &Path) -> bool {
    String::from_utf8(devkit(&[sub, "--help"], cwd).stdout)
        .unwrap()
        .contains("--json")
}

/// A usage error clap finds (a missing required flag) is the JSON error object too.
#[test]
fn a_usage_error_with_json_is_the_error_object() {
    let tmp = tempfile::tempdir().unwrap();
    let o = devkit(&["generate-cert", "--json", "--out-dir", "out"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8(o.stdout).unwrap().trim()).unwrap();
    check_error(&v, "generate-cert usage", None);
    assert_eq!(v["error"]["kind"], "invalidParams");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("required arguments"),
        "{v}"
    );
}
