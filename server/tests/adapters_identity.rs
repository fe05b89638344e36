//! One table of generate-cert cases run through both adapters, `devkit generate-cert --json`
//! and the daemon's `devkit/generateCert`: the same report (paths aside) or the same refused
//! input. The CLI's `--json` output and the daemon's result both read back as the task's
//! report, which is the daemon's result type (`ext::GenerateCertResult`).

mod lsp_client;

use lsp_client::{error_code, fixture, Lsp};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tasks::identity::GenerateReport;

const SAMPLE_UDS: &str = "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae";
const UDS: &str = "c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2beef";

/// The project the run records in.
#[derive(Clone, Copy)]
enum Project {
    Fresh,
    /// A file where the project directory should be: the state cannot be saved.
    NotADirectory,
    /// The project enrolled another certificate for the same registration ID.
    EnrolledOther,
}

enum Expect {
    /// Succeeds; a warning containing this text (if any); these next actions.
    Ok {
        warning: Option<&'static str>,
        next_actions: Value,
    },
    /// Refused before anything is written: the daemon's `data.field`, the CLI's flag.
    Invalid {
        field: &'static str,
        flag: &'static str,
    },
}

struct Case {
    name: &'static str,
    uds: &'static str,
    /// `registrationId`, or `mac` + `firmwareVersion` when `None`.
    registration_id: Option<&'static str>,
    mac: &'static str,
    firmware_version: &'static str,
    device_cert: bool,
    alias_key: bool,
    allow_sample_uds: bool,
    /// An empty build directory instead of the image and map.
    empty_build_dir: bool,
    project: Project,
    expect: Expect,
}

fn ok() -> Expect {
    Expect::Ok {
        warning: None,
        next_actions: json!([]),
    }
}

fn case(name: &'static str, expect: Expect) -> Case {
    Case {
        name,
        uds: UDS,
        registration_id: Some("dev-1"),
        mac: "",
        firmware_version: "",
        device_cert: false,
        alias_key: false,
        allow_sample_uds: false,
        empty_build_dir: false,
        project: Project::Fresh,
        expect,
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            device_cert: true,
            alias_key: true,
            ..case("explicit ID, every file", ok())
        },
        Case {
            registration_id: None,
            mac: "C0:BD:D1:A2:B3:C4",
            firmware_version: "1.6.2",
            ..case("automatic ID from MAC and version", ok())
        },
        Case {
            uds: SAMPLE_UDS,
            allow_sample_uds: true,
            ..case(
                "the sample UDS, allowed",
                Expect::Ok {
                    warning: Some("published sample UDS"),
                    next_actions: json!([]),
                },
            )
        },
        Case {
            project: Project::NotADirectory,
            ..case(
                "project state that cannot be saved warns",
                Expect::Ok {
                    warning: Some("the project state was not updated"),
                    next_actions: json!([]),
                },
            )
        },
        Case {
            project: Project::EnrolledOther,
            ..case(
                "an enrollment holding another certificate",
                Expect::Ok {
                    warning: Some("the enrollment of dev-1 holds a different certificate"),
                    next_actions: json!([{"action": "enroll"}]),
                },
            )
        },
        Case {
            uds: SAMPLE_UDS,
            ..case(
                "the sample UDS, refused",
                Expect::Invalid {
                    field: "uds",
                    flag: "--uds-file",
                },
            )
        },
        Case {
            uds: &UDS[..63],
            ..case(
                "a UDS of 63 digits",
                Expect::Invalid {
                    field: "uds",
                    flag: "--uds-file",
                },
            )
        },
        Case {
            registration_id: Some("My_Dev"),
            ..case(
                "an invalid registration ID",
                Expect::Invalid {
                    field: "registrationId",
                    flag: "--registration-id",
                },
            )
        },
        Case {
            registration_id: None,
            mac: "c0bdd1a2b3",
            firmware_version: "1.6.2",
            ..case(
                "a MAC of 10 digits",
                Expect::Invalid {
                    field: "mac",
                    flag: "--mac",
                },
            )
        },
        Case {
            registration_id: None,
            mac: "c0bdd1a2b3c4",
            firmware_version: "1.6",
            ..case(
                "a firmware version of two numbers",
                Expect::Invalid {
                    field: "firmwareVersion",
                    flag: "--firmware-version",
                },
            )
        },
        Case {
            empty_build_dir: true,
            ..case(
                "a build directory without a build",
                Expect::Invalid {
                    field: "buildDir",
                    flag: "--build-dir",
                },
            )
        },
    ]
}

/// One adapter's working directories: output, project, build.
struct Dirs {
    tmp: tempfile::TempDir,
}

impl Dirs {
    fn new(c: &Case) -> Dirs {
        let d = Dirs {
            tmp: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(d.build()).unwrap();
        match c.project {
            Project::Fresh => std::fs::create_dir(d.project()).unwrap(),
            Project::NotADirectory => std::fs::write(d.project(), "not a directory").unwrap(),
            Project::EnrolledOther => {
                std::fs::create_dir_all(d.project().join(".devkit")).unwrap();
                std::fs::write(
                    d.project().join(".devkit/state.json"),
                    json!({"lastEnrolled": {"registrationId": "dev-1", "fwid": "00",
                        "sha256Thumbprint": "00", "aliasCert": "/elsewhere/dev-1.pem",
                        "source": "enrolled"}})
                    .to_string(),
                )
                .unwrap();
            }
        }
        d
    }
    fn root(&self) -> &Path {
        self.tmp.path()
    }
    fn out(&self) -> PathBuf {
        self.root().join("out")
    }
    fn project(&self) -> PathBuf {
        self.root().join("project")
    }
    fn build(&self) -> PathBuf {
        self.root().join("build")
    }
    /// `value` as JSON text with this run's directory replaced, so that both adapters compare.
    fn normalise(&self, value: &Value) -> Value {
        // As the JSON text spells it (a Windows path's backslashes are escaped there).
        let root = serde_json::to_string(&*self.root().to_string_lossy()).unwrap();
        let text = value
            .to_string()
            .replace(root.trim_matches('"'), "<DIR>");
        serde_json::from_str(&text).unwrap()
    }
    fn nothing_written(&self) -> bool {
        !self.out().exists()
    }
}

fn image() -> (PathBuf, PathBuf) {
    let v = fixture("dice-vectors/explicit-id-small");
    (v.join("DevKitDPS.ino.bin"), v.join("DevKitDPS.ino.map"))
}

/// `devkit generate-cert --json` for `c`: exit code, stdout, stderr.
fn through_the_cli(c: &Case, d: &Dirs) -> (i32, String, String) {
    let uds = d.root().join("uds.txt");
    std::fs::write(&uds, c.uds).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&uds, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (bin, map) = image();
    let mut args: Vec<String> = vec!["generate-cert".into(), "--json".into()];
    if c.empty_build_dir {
        args.extend(["--build-dir".into(), d.build().display().to_string()]);
    } else {
        args.extend([
            "--bin".into(),
            bin.display().to_string(),
            "--map".into(),
            map.display().to_string(),
        ]);
    }
    args.extend(["--uds-file".into(), uds.display().to_string()]);
    match c.registration_id {
        Some(id) => args.extend(["--registration-id".into(), id.into()]),
        None => args.extend([
            "--mac".into(),
            c.mac.into(),
            "--firmware-version".into(),
            c.firmware_version.into(),
        ]),
    }
    args.extend([
        "--out-dir".into(),
        d.out().display().to_string(),
        "--project-dir".into(),
        d.project().display().to_string(),
    ]);
    for (on, flag) in [
        (c.device_cert, "--device-cert"),
        (c.alias_key, "--alias-key"),
        (c.allow_sample_uds, "--allow-sample-uds"),
    ] {
        if on {
            args.push(flag.into());
        }
    }
    let o = Command::new(env!("CARGO_BIN_EXE_devkit"))
        .args(&args)
        .current_dir(d.root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `devkit/generateCert` for `c`: the response.
fn through_the_daemon(lsp: &mut Lsp, c: &Case, d: &Dirs) -> Value {
    let (bin, map) = image();
    let mut params = json!({
        "uds": c.uds, "outDir": d.out(), "projectDir": d.project(),
        "deviceCert": c.device_cert, "aliasKey": c.alias_key, "allowSampleUds": c.allow_sample_uds,
    });
    if c.empty_build_dir {
        params["buildDir"] = json!(d.build());
    } else {
        params["bin"] = json!(bin);
        params["map"] = json!(map);
    }
    match c.registration_id {
        Some(id) => params["registrationId"] = json!(id),
        None => {
            params["mac"] = json!(c.mac);
            params["firmwareVersion"] = json!(c.firmware_version);
        }
    }
    lsp.request("devkit/generateCert", params)
}

#[test]
fn both_adapters_give_the_same_outcome_for_every_case() {
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(false);
    for c in cases() {
        let (cli_dirs, daemon_dirs) = (Dirs::new(&c), Dirs::new(&c));
        let (code, stdout, stderr) = through_the_cli(&c, &cli_dirs);
        let response = through_the_daemon(&mut lsp, &c, &daemon_dirs);
        for text in [&stdout, &stderr, &response.to_string()] {
            assert!(!text.contains(&UDS[..32]), "{}: the UDS leaked", c.name);
        }
        match &c.expect {
            Expect::Ok {
                warning,
                next_actions,
            } => {
                assert_eq!(code, 0, "{}: {stderr}", c.name);
                let cli: Value = serde_json::from_str(stdout.trim()).unwrap();
                let daemon = response["result"].clone();
                assert!(daemon.is_object(), "{}: {response}", c.name);
                // Both read back as the task's report: the daemon's result type.
                let cli_report: GenerateReport = serde_json::from_value(cli.clone())
                    .unwrap_or_else(|e| panic!("{}: --json is not the report: {e}", c.name));
                serde_json::from_value::<GenerateReport>(daemon.clone()).unwrap();
                assert_eq!(
                    cli_dirs.normalise(&cli),
                    daemon_dirs.normalise(&daemon),
                    "{}: the adapters' reports differ",
                    c.name
                );
                assert_eq!(&cli["nextActions"], next_actions, "{}", c.name);
                if let Some(w) = warning {
                    assert!(
                        cli_report.warnings.iter().any(|x| x.contains(w)),
                        "{}: {:?}",
                        c.name,
                        cli_report.warnings
                    );
                }
                assert!(cli_report.alias_cert.exists(), "{}", c.name);
                assert_eq!(
                    cli_report.alias_key.is_some(),
                    c.alias_key,
                    "{}: the key only on request",
                    c.name
                );
            }
            Expect::Invalid { field, flag } => {
                assert_eq!(code, 2, "{}: {stdout}{stderr}", c.name);
                assert!(stderr.contains(flag), "{}: names {flag}: {stderr}", c.name);
                assert_eq!(error_code(&response), -32602, "{}: {response}", c.name);
                assert_eq!(
                    response["error"]["data"]["field"], *field,
                    "{}: {response}",
                    c.name
                );
                assert!(
                    cli_dirs.nothing_written() && daemon_dirs.nothing_written(),
                    "{}: nothing written",
                    c.name
                );
            }
        }
    }
    let (status, _) = lsp.shutdown_and_exit();
    assert!(status.success());
}

/// The CLI's hint for the refused sample is its own (a flag), not compared message text.
#[test]
fn the_cli_says_how_to_accept_the_sample_for_a_test() {
    let c = Case {
        uds: SAMPLE_UDS,
        ..case(
            "sample",
            Expect::Invalid {
                field: "uds",
                flag: "--uds-file",
            },
        )
    };
    let d = Dirs::new(&c);
    let (code, _, stderr) = through_the_cli(&c, &d);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("published sample UDS") && stderr.contains("--allow-sample-uds"),
        "{stderr}"
    );
}
