//! One table of enroll cases run through both adapters, `devkit enroll` (the CLI process) and
//! `devkit/enroll` (a request to `devkit lsp`), against one local DPS emulator: each case must
//! end the same way in both. Successes are compared as the report (the CLI's `--json` output
//! is read as the daemon's result type, `EnrollResult` = `tasks::dps::enroll::EnrollReport`)
//! and against what DPS then holds; failures by kind, field, hint and next actions, the CLI
//! showing the hint after its cause.

mod lsp_client;

use lsp_client::Lsp;
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use tasks::dps::emulator::{Emulator, EmulatorConfig};
use tasks::dps::enroll::EnrollReport;
use tasks::dps::{ClientOptions, IfMatch, IndividualEnrollment, ProvisioningStatus};
use tasks::identity::{self, RegistrationId};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");
const WRONG_KEY: &str = "Y2FuYXJ5LWtleS1uZXZlci1zaG93bg==";

#[derive(Clone, Copy, PartialEq)]
enum Key {
    Good,
    Wrong,
    Missing,
}

/// What exists before the run, and what is asked.
#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    /// The certificate is recorded as the project's last generated one.
    generated: bool,
    /// The certificate is named (`--cert` / `cert`).
    named: bool,
    /// The enrollment already exists with this status.
    existing: Option<ProvisioningStatus>,
    /// `<project>/.devkit` is a regular file: the project state cannot be saved.
    state_blocked: bool,
    key: Key,
    disabled: bool,
    enable: bool,
    az: bool,
    expect: Expect,
}

#[derive(Clone, Copy)]
enum Expect {
    Enrolled {
        status: ProvisioningStatus,
        from_project_state: bool,
        /// A warning containing this, or none at all.
        warning: Option<&'static str>,
        next: &'static [&'static str],
    },
    Refused {
        /// `data.code`; the CLI's exit code follows from it.
        code: &'static str,
        field: Option<&'static str>,
        hint: Option<&'static str>,
        next: &'static [&'static str],
        exit: i32,
    },
}

const BASE: Case = Case {
    name: "",
    generated: false,
    named: true,
    existing: None,
    state_blocked: false,
    key: Key::Good,
    disabled: false,
    enable: false,
    az: false,
    expect: Expect::Enrolled {
        status: ProvisioningStatus::Enabled,
        from_project_state: false,
        warning: None,
        next: &[],
    },
};

fn cases() -> Vec<Case> {
    use ProvisioningStatus::{Disabled, Enabled};
    let enrolled = |status, warning| Expect::Enrolled {
        status,
        from_project_state: false,
        warning,
        next: &[],
    };
    vec![
        Case {
            name: "a new enrollment for the named certificate",
            ..BASE
        },
        Case {
            name: "the project's last generated certificate, said so",
            generated: true,
            named: false,
            expect: Expect::Enrolled {
                status: Enabled,
                from_project_state: true,
                warning: Some("last generated for this project"),
                next: &[],
            },
            ..BASE
        },
        Case {
            name: "created disabled",
            disabled: true,
            expect: enrolled(Disabled, None),
            ..BASE
        },
        Case {
            name: "a disabled enrollment stays disabled when re-enrolled",
            existing: Some(Disabled),
            expect: enrolled(Disabled, None),
            ..BASE
        },
        Case {
            name: "a disabled enrollment is enabled on request",
            existing: Some(Disabled),
            enable: true,
            ..BASE
        },
        Case {
            name: "the project state cannot be saved: enrolled, with a warning and a retry",
            state_blocked: true,
            expect: Expect::Enrolled {
                status: Enabled,
                from_project_state: false,
                warning: Some("state.json"),
                next: &["retry"],
            },
            ..BASE
        },
        Case {
            name: "a wrong key: a DPS error with its hint",
            key: Key::Wrong,
            expect: Expect::Refused {
                code: "dpsError",
                field: None,
                hint: Some("SharedAccessKey and policy"),
                next: &["configureDps"],
                exit: 1,
            },
            ..BASE
        },
        Case {
            name: "no connection string",
            key: Key::Missing,
            expect: Expect::Refused {
                code: "invalidParams",
                field: Some("connectionString"),
                hint: None,
                next: &[],
                exit: 2,
            },
            ..BASE
        },
        Case {
            name: "no certificate named or generated",
            named: false,
            expect: Expect::Refused {
                code: "invalidParams",
                field: Some("cert"),
                hint: None,
                next: &["regenerateCert"],
                exit: 2,
            },
            ..BASE
        },
        Case {
            name: "the az backend without a DPS name or connection string",
            key: Key::Missing,
            az: true,
            expect: Expect::Refused {
                code: "invalidParams",
                field: Some("dpsName"),
                hint: None,
                next: &[],
                exit: 2,
            },
            ..BASE
        },
    ]
}

/// The emulator, the files every case shares, and the daemon.
struct Env {
    rt: tokio::runtime::Runtime,
    emulator: Emulator,
    dir: tempfile::TempDir,
    good_cs: String,
    wrong_cs: String,
    lsp: Lsp,
}

impl Env {
    fn start() -> Env {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            EmulatorConfig::new(([127, 0, 0, 1], 0).into(), dir.path().join("emulator"));
        config.retry_after_secs = 0;
        let emulator = rt.block_on(Emulator::start(config)).unwrap();
        let good_cs = emulator.connection_string().to_secret_string().to_string();
        let host = good_cs.split(';').next().unwrap();
        let wrong_cs = format!(
            "{host};SharedAccessKeyName=provisioningserviceowner;SharedAccessKey={WRONG_KEY}"
        );
        let mut lsp = Lsp::start(&[]);
        lsp.initialize(true);
        Env {
            rt,
            emulator,
            dir,
            good_cs,
            wrong_cs,
            lsp,
        }
    }

    fn ca(&self) -> PathBuf {
        self.emulator.ca_certificate_path().to_path_buf()
    }

    fn client(&self) -> tasks::dps::ServiceClient {
        let options = ClientOptions {
            ca_pem: Some(self.emulator.ca_certificate_pem().to_string()),
            ..Default::default()
        };
        tasks::dps::ServiceClient::new(self.emulator.connection_string(), options).unwrap()
    }

    /// The project for `case` run by `adapter`, with its certificate (path, DER, thumbprint).
    fn prepare(&self, case: &Case, adapter: &str, i: usize) -> Prepared {
        let id = format!("{adapter}-case-{i}");
        let root = self.dir.path().join(&id);
        let project = root.join("project");
        let certs = root.join("certs");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&certs).unwrap();
        let uds = identity::Uds::parse(&"5a".repeat(32)).unwrap();
        let image = tasks::provision::sample::image().unwrap();
        let d = identity::derive(&uds, &image, &RegistrationId::parse(&id).unwrap()).unwrap();
        let written = identity::files::write_identity(&d, &certs, Default::default()).unwrap();
        let cert = written[0].path.clone();
        if case.generated {
            identity::files::record_generated(&project, &d, &cert).unwrap();
        }
        if case.state_blocked {
            std::fs::write(project.join(".devkit"), "not a directory").unwrap();
        }
        if let Some(status) = case.existing {
            let mut e = IndividualEnrollment::x509(&id, &d.alias_cert_der);
            e.provisioning_status = Some(status);
            self.rt
                .block_on(self.client().create_or_update(&e, IfMatch::None))
                .unwrap();
        }
        let cs = match case.key {
            Key::Good => Some(self.good_cs.clone()),
            Key::Wrong => Some(self.wrong_cs.clone()),
            Key::Missing => None,
        };
        Prepared {
            id,
            project,
            cert,
            thumbprint: d.sha256_thumbprint(),
            cs,
            root,
        }
    }

    /// What DPS holds for `id` now.
    fn enrollment(&self, id: &str) -> Option<IndividualEnrollment> {
        self.rt.block_on(self.client().get_optional(id)).unwrap()
    }
}

struct Prepared {
    id: String,
    project: PathBuf,
    cert: PathBuf,
    thumbprint: String,
    cs: Option<String>,
    root: PathBuf,
}

/// What an adapter answered, in common terms.
enum Outcome {
    Enrolled(EnrollReport),
    Refused {
        code: Option<String>,
        exit: Option<i32>,
        field: Option<String>,
        hint: Option<String>,
        next: Vec<String>,
        /// The CLI's stderr (checked for order).
        text: String,
    },
}

fn run_cli(env: &Env, case: &Case, p: &Prepared) -> Outcome {
    let mut args: Vec<OsString> = vec![
        "enroll".into(),
        "--project-dir".into(),
        p.project.clone().into(),
    ];
    if let Some(cs) = &p.cs {
        let file = p.root.join("dps.cs");
        std::fs::write(&file, format!("{cs}\n")).unwrap();
        args.extend(["--connection-string-file".into(), file.into()]);
    }
    args.extend(["--ca-file".into(), env.ca().into()]);
    if case.named {
        args.extend(["--cert".into(), p.cert.clone().into()]);
    }
    if case.disabled {
        args.push("--disabled".into());
    }
    if case.enable {
        args.push("--enable".into());
    }
    if case.az {
        args.extend(["--backend".into(), "az".into()]);
    }
    let success = matches!(case.expect, Expect::Enrolled { .. });
    if success {
        args.push("--json".into());
    }
    let o = Command::new(DEVKIT).args(&args).output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(
        !out.contains(WRONG_KEY) && !err.contains(WRONG_KEY),
        "{}: key echoed",
        case.name
    );
    if o.status.success() {
        // The CLI's --json is the daemon's result type.
        let report: EnrollReport = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
            panic!("{}: --json is not an EnrollResult ({e}): {out}", case.name)
        });
        return Outcome::Enrolled(report);
    }
    let line = |prefix: &str| {
        err.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
    };
    Outcome::Refused {
        code: None,
        exit: o.status.code(),
        field: None,
        hint: line("hint: "),
        next: line("next: ").into_iter().collect(),
        text: err,
    }
}

fn run_daemon(env: &mut Env, case: &Case, p: &Prepared) -> Outcome {
    let mut params = json!({"projectDir": p.project, "caFile": env.ca()});
    if let Some(cs) = &p.cs {
        params["connectionString"] = json!(cs);
    }
    if case.named {
        params["cert"] = json!(p.cert);
    }
    for (flag, key) in [(case.disabled, "disabled"), (case.enable, "enable")] {
        if flag {
            params[key] = json!(true);
        }
    }
    if case.az {
        params["backend"] = json!("az");
    }
    let r = env.lsp.request("devkit/enroll", params);
    assert!(
        !r.to_string().contains(WRONG_KEY),
        "{}: key echoed",
        case.name
    );
    if let Some(result) = r.get("result") {
        let report: EnrollReport = serde_json::from_value(result.clone())
            .unwrap_or_else(|e| panic!("{}: not an EnrollResult ({e}): {r}", case.name));
        return Outcome::Enrolled(report);
    }
    let data = &r["error"]["data"];
    let text = |v: &Value| v.as_str().map(str::to_string);
    Outcome::Refused {
        code: text(&data["code"]),
        exit: None,
        field: text(&data["field"]),
        hint: text(&data["hint"]),
        next: data["nextActions"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| text(&s["action"])).collect())
            .unwrap_or_default(),
        text: r.to_string(),
    }
}

fn check(env: &Env, case: &Case, p: &Prepared, adapter: &str, outcome: Outcome) {
    let what = format!("{} ({adapter})", case.name);
    match (case.expect, outcome) {
        (
            Expect::Enrolled {
                status,
                from_project_state,
                warning,
                next,
            },
            Outcome::Enrolled(r),
        ) => {
            assert_eq!(r.registration_id, p.id, "{what}");
            assert_eq!(r.provisioning_status, status, "{what}");
            assert_eq!(r.cert_from_project_state, from_project_state, "{what}");
            assert_eq!(r.sha256_thumbprint, p.thumbprint, "{what}");
            assert_eq!(
                std::fs::canonicalize(&r.cert).unwrap(),
                std::fs::canonicalize(&p.cert).unwrap(),
                "{what}"
            );
            match warning {
                Some(w) => assert!(
                    r.warnings.iter().any(|x| x.contains(w)),
                    "{what}: no warning with {w:?}: {:?}",
                    r.warnings
                ),
                None => assert!(r.warnings.is_empty(), "{what}: {:?}", r.warnings),
            }
            let actions: Vec<&str> = r.next_actions.iter().map(|s| s.action.name()).collect();
            assert_eq!(actions, next, "{what}");
            // What DPS holds: the report's ETag (bare) and status.
            let held = env.enrollment(&p.id).expect("enrolled");
            let etag = r.etag.as_deref().expect("an etag");
            assert!(!etag.starts_with('"'), "{what}: {etag}");
            assert_eq!(
                held.etag.as_deref().map(|e| e.trim_matches('"')),
                Some(etag),
                "{what}"
            );
            assert_eq!(
                held.is_enabled(),
                status == ProvisioningStatus::Enabled,
                "{what}"
            );
            // Recorded in the project state unless it could not be saved.
            let state = tasks::project::ProjectState::load(&p.project);
            if case.state_blocked {
                // Not recorded: unreadable (Unix: ENOTDIR), or, on Windows, where a path under
                // a file is "not found", empty.
                assert!(
                    state.map_or(true, |s| s.last_enrolled.is_none()),
                    "{what}"
                );
            } else {
                let enrolled = state.unwrap().last_enrolled.expect("recorded");
                assert_eq!(enrolled.sha256_thumbprint, p.thumbprint, "{what}");
            }
        }
        (
            Expect::Refused {
                code,
                field,
                hint,
                next,
                exit,
            },
            Outcome::Refused {
                code: got_code,
                exit: got_exit,
                field: got_field,
                hint: got_hint,
                next: got_next,
                text,
            },
        ) => {
            if adapter == "cli" {
                assert_eq!(got_exit, Some(exit), "{what}: {text}");
                // The cause, then the hint, then what to do (progress lines may come first).
                let lines: Vec<&str> = text.lines().collect();
                let at = |p: &str| lines.iter().position(|l| l.starts_with(p));
                let error = at("error: ").unwrap_or_else(|| panic!("{what}: {text}"));
                assert!(!lines[error].contains("hint:"), "{what}: {text}");
                if hint.is_some() {
                    assert!(at("hint: ") > Some(error), "{what}: {text}");
                }
                if !next.is_empty() {
                    assert!(
                        at("next: ") > at("hint: ").max(Some(error)),
                        "{what}: {text}"
                    );
                }
                if let Some(f) = field {
                    let flag = match f {
                        "connectionString" => "--connection-string-file",
                        "dpsName" => "--dps-name",
                        other => other,
                    };
                    assert!(text.contains(flag) || f == "cert", "{what}: {text}");
                }
            } else {
                assert_eq!(got_code.as_deref(), Some(code), "{what}: {text}");
                assert_eq!(got_field.as_deref(), field, "{what}: {text}");
                let got: Vec<&str> = got_next.iter().map(String::as_str).collect();
                assert_eq!(got, next, "{what}: {text}");
            }
            match hint {
                Some(h) => assert!(
                    got_hint.as_deref().is_some_and(|g| g.contains(h)),
                    "{what}: no hint with {h:?}: {text}"
                ),
                None => assert!(got_hint.is_none(), "{what}: {text}"),
            }
            // Refused: DPS holds nothing new.
            if case.existing.is_none() {
                assert!(env.enrollment(&p.id).is_none(), "{what}");
            }
        }
        (_, Outcome::Enrolled(r)) => panic!("{what}: enrolled, expected a refusal: {r:?}"),
        (_, Outcome::Refused { text, .. }) => panic!("{what}: refused: {text}"),
    }
}

#[test]
fn both_adapters_end_every_case_the_same_way() {
    let mut env = Env::start();
    for (i, case) in cases().iter().enumerate() {
        let p = env.prepare(case, "cli", i);
        let outcome = run_cli(&env, case, &p);
        check(&env, case, &p, "cli", outcome);
        let p = env.prepare(case, "lsp", i);
        let outcome = run_daemon(&mut env, case, &p);
        check(&env, case, &p, "lsp", outcome);
    }
    let (status, stderr) = env.lsp.shutdown_and_exit();
    assert!(status.success());
    assert!(!stderr.contains(WRONG_KEY));
    env.rt.block_on(env.emulator.shutdown());
}

/// The daemon takes `useAz` as the deprecated spelling of `"backend": "az"`, and refuses it
/// against `"backend": "rest"`.
#[test]
fn use_az_is_a_deprecated_alias_of_the_az_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut lsp = Lsp::start(&[]);
    lsp.initialize(false);
    let project = json!(dir.path());
    // No DPS name and no connection string: the az backend's own refusal.
    let r = lsp.request(
        "devkit/enroll",
        json!({"projectDir": project, "useAz": true}),
    );
    assert_eq!(r["error"]["data"]["field"], "dpsName", "{r}");
    let r = lsp.request(
        "devkit/enroll",
        json!({"projectDir": project, "useAz": true, "backend": "rest"}),
    );
    assert_eq!(r["error"]["data"]["field"], "useAz", "{r}");
    let r = lsp.request(
        "devkit/enroll",
        json!({"projectDir": project, "backend": "ftp"}),
    );
    assert_eq!(r["error"]["data"]["field"], "backend", "{r}");
}
