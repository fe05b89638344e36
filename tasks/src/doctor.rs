//! doctor: is this machine ready to build, flash and provision a DevKit?
//!
//! One list of checks for `devkit doctor` and the daemon's `devkit/checkSetup` (the editor's
//! "Check Setup" command): `devkit` on PATH, the two routes a build can take, a debug probe,
//! and on Linux the udev rule that lets a user open the DevKit's ST-LINK. Each check that is
//! not fine names the next action that fixes it ([`NextStep`], the shared next-action
//! contract of errors), so each adapter renders it its own way.
//!
//! A build has two routes (the README offers both): arduino-cli with the AZ3166 platform, or
//! Arduino's arduino-builder over an Arduino15 folder holding
//! `packages/AZ3166/hardware/stm32f4/<version>` plus an ARM compiler. The setup is complete
//! when either route is; the report says which one `devkit build` will take (the rule of
//! [`crate::build::builder::resolve`]: arduino-cli first) and what the other one lacks, whose
//! failing checks are then [`CheckStatus::NotNeeded`] rather than errors.

use crate::build::{builder, toolchain, BuildError};
use crate::error::{DomainError, NextAction, NextStep};
use crate::flash::{UDEV_RELOAD, UDEV_RULE, UDEV_RULE_FILE};
use crate::progress::Progress;
use serde::Serialize;
use std::ffi::OsString;
use std::path::PathBuf;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckStatus {
    Ok,
    /// Works for some flows (the virtual DevKit), not for a real one.
    Warning,
    /// Blocks building or flashing.
    Error,
    /// Fails, but only on the build route not taken: the other route is complete.
    NotNeeded,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable id: `daemon`, `buildRoute`, `arduinoCli`, `platform` (the arduino-cli route),
    /// `arduinoBuilder`, `arduinoData`, `armGcc` (the arduino-builder route), `probe`,
    /// `udevRule`.
    pub id: &'static str,
    pub title: &'static str,
    pub status: CheckStatus,
    /// What was found, or what is wrong and how to fix it (may span lines).
    pub detail: String,
    /// What fixes it (the next-action contract of errors).
    pub next_actions: Vec<NextStep>,
}

/// Inputs of [`run`]; the defaults read the real machine.
#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    /// The configured arduino-cli (the editor's setting or the CLI's option); else PATH.
    pub arduino_cli: Option<PathBuf>,
    /// The Arduino15 folder holding the platform (arduino-cli's `ARDUINO_DIRECTORIES_DATA`,
    /// arduino-builder's packages); `None`: arduino-cli's own, and for arduino-builder the
    /// OS's usual place.
    pub arduino_data: Option<PathBuf>,
    /// The configured arduino-builder; else PATH.
    pub arduino_builder: Option<PathBuf>,
    /// PATH to search (`None`: the process's).
    pub path_env: Option<OsString>,
    /// Folders holding udev rules (`None`: the system's). Only read on Linux.
    pub udev_dirs: Option<Vec<PathBuf>>,
    /// Skip listing USB debug probes (tests: the result depends on the machine).
    pub skip_probe: bool,
}

const SYSTEM_UDEV_DIRS: [&str; 3] = [
    "/etc/udev/rules.d",
    "/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
];

fn action(action: NextAction, detail: Option<&str>) -> NextStep {
    NextStep {
        action,
        detail: detail.map(str::to_string),
    }
}

/// The route a build takes: the build's [`crate::build::BuilderChoice`] once `auto` is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildRoute {
    ArduinoCli,
    ArduinoBuilder,
}

impl BuildRoute {
    /// Its name, as `--builder` and the build report's `toolchain.builder` spell it.
    pub const fn name(self) -> &'static str {
        match self {
            BuildRoute::ArduinoCli => "arduino-cli",
            BuildRoute::ArduinoBuilder => "arduino-builder",
        }
    }
}

/// What `devkit doctor --json` prints and `devkit/checkSetup` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupReport {
    pub checks: Vec<Check>,
    /// No check is an error (warnings allowed): one build route is complete.
    pub ready: bool,
    /// The route `devkit build` will take (`arduino-cli` or `arduino-builder`); `None` when
    /// neither is complete.
    pub builder: Option<BuildRoute>,
}

/// Run every check (nothing is changed on the machine).
pub async fn run(opts: &DoctorOptions) -> SetupReport {
    let mut checks = vec![daemon_check(opts.path_env.as_ref())];
    let (route, mut route_checks, builder) = build_route_checks(opts).await;
    checks.push(route);
    checks.append(&mut route_checks);
    if !opts.skip_probe {
        checks.push(probe_check(
            tokio::task::spawn_blocking(crate::flash::probe::list)
                .await
                .unwrap_or_default(),
        ));
    }
    if cfg!(target_os = "linux") {
        let dirs = opts
            .udev_dirs
            .clone()
            .unwrap_or_else(|| SYSTEM_UDEV_DIRS.iter().map(PathBuf::from).collect());
        checks.push(udev_check(&dirs));
    }
    SetupReport {
        ready: ready(&checks),
        checks,
        builder,
    }
}

fn which_in(name: &str, path_env: Option<&OsString>) -> Option<PathBuf> {
    match path_env {
        Some(p) => which::which_in(
            name,
            Some(p),
            std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        )
        .ok(),
        None => which::which(name).ok(),
    }
}

fn daemon_check(path_env: Option<&OsString>) -> Check {
    let (status, detail) = match which_in("devkit", path_env) {
        Some(p) => (CheckStatus::Ok, format!("{} (this daemon is {})", p.display(), env!("CARGO_PKG_VERSION"))),
        None => (
            CheckStatus::Warning,
            format!(
                "this daemon ({}) runs, but `devkit` is not on PATH: the editor finds it, a terminal does not. \
                 Add its folder to PATH to use the command line.",
                env!("CARGO_PKG_VERSION")
            ),
        ),
    };
    Check {
        id: "daemon",
        title: "DevKit daemon",
        status,
        detail,
        next_actions: vec![],
    }
}

/// The checks of the arduino-cli route: the program and its version, then the platform.
async fn cli_route(opts: &DoctorOptions) -> Vec<Check> {
    let not_checked = |why: &str| Check {
        id: "platform",
        title: "AZ3166 platform (arduino-cli)",
        status: CheckStatus::Error,
        detail: format!("not checked: {why}"),
        next_actions: vec![action(
            NextAction::InstallToolchain,
            Some(toolchain::PLATFORM_ID),
        )],
    };
    let cli =
        match toolchain::find_arduino_cli(opts.arduino_cli.as_deref(), opts.path_env.as_deref()) {
            Ok(cli) => cli,
            Err(e) => {
                // The build's own error: one wording and one list of next actions.
                let found = Check {
                    id: "arduinoCli",
                    title: "arduino-cli",
                    status: CheckStatus::Error,
                    detail: e.to_string(),
                    next_actions: e.next_actions(),
                };
                return vec![found, not_checked("arduino-cli was not found")];
            }
        };
    let progress = Progress::none();
    let version =
        match toolchain::arduino_cli_version(&cli, opts.arduino_data.as_deref(), &progress).await {
            Ok(v) => Check {
                id: "arduinoCli",
                title: "arduino-cli",
                status: CheckStatus::Ok,
                detail: format!("{} version {v}", cli.display()),
                next_actions: vec![],
            },
            Err(e) => Check {
                id: "arduinoCli",
                title: "arduino-cli",
                status: CheckStatus::Error,
                detail: e.to_string(),
                next_actions: vec![
                    action(NextAction::InstallToolchain, Some("arduino-cli")),
                    action(NextAction::SetArduinoCliPath, None),
                ],
            },
        };
    if version.status != CheckStatus::Ok {
        return vec![version, not_checked("arduino-cli does not work")];
    }
    let platform = match toolchain::platform_version(&cli, opts.arduino_data.as_deref()).await {
        Ok(v) => Check {
            id: "platform",
            title: "AZ3166 platform (arduino-cli)",
            status: CheckStatus::Ok,
            detail: format!("{} {v}", toolchain::PLATFORM_ID),
            next_actions: vec![],
        },
        Err(e) => Check {
            id: "platform",
            title: "AZ3166 platform (arduino-cli)",
            status: CheckStatus::Error,
            detail: e.to_string(),
            next_actions: e.next_actions(),
        },
    };
    vec![version, platform]
}

/// A check from a build step's result: the build's own error wording and next actions.
fn step_check(id: &'static str, title: &'static str, result: Result<String, BuildError>) -> Check {
    match result {
        Ok(detail) => Check {
            id,
            title,
            status: CheckStatus::Ok,
            detail,
            next_actions: vec![],
        },
        Err(e) => Check {
            id,
            title,
            status: CheckStatus::Error,
            detail: e.to_string(),
            next_actions: e.next_actions(),
        },
    }
}

/// The checks of the arduino-builder route: the program, the Arduino15 folder holding the
/// platform, and the ARM compiler (the platform's own in that folder, else on PATH). Each is
/// checked even when another fails, so the report lists everything this route lacks.
async fn builder_route(opts: &DoctorOptions) -> Vec<Check> {
    let path_env = opts.path_env.as_deref();
    let exe = builder::find_arduino_builder(opts.arduino_builder.as_deref(), path_env);
    let program = match exe {
        Ok(exe) => builder::builder_version(&exe)
            .await
            .map(|v| format!("{} version {v}", exe.display())),
        Err(e) => Err(e),
    };
    let data = builder::builder_data(opts.arduino_data.as_deref(), false);
    let gcc = match &data {
        Ok((data, _)) => builder::builder_gcc(Some(data), path_env).map(|gcc| match gcc {
            Some(gcc) => format!(
                "{} (the platform in {} has no compiler of its own)",
                gcc.display(),
                data.display()
            ),
            None => format!("the platform's own, in {}", data.display()),
        }),
        // No platform folder to look in: only PATH can say.
        Err(_) => builder::builder_gcc(None, path_env)
            .map(|gcc| gcc.map(|g| g.display().to_string()).unwrap_or_default()),
    };
    let data = data.map(|(data, platform)| {
        let version = platform
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        format!(
            "{} holds {} {version}",
            data.display(),
            toolchain::PLATFORM_ID
        )
    });
    vec![
        step_check("arduinoBuilder", "arduino-builder", program),
        step_check("arduinoData", "Arduino data folder (arduino-builder)", data),
        step_check("armGcc", "ARM compiler (arduino-builder)", gcc),
    ]
}

const CLI_ROUTE: [&str; 2] = ["arduinoCli", "platform"];
const BUILDER_ROUTE: [&str; 3] = ["arduinoBuilder", "arduinoData", "armGcc"];

/// What a route lacks: its first failing check, in one line.
fn lacks(checks: &[Check]) -> Option<String> {
    checks
        .iter()
        .find(|c| c.status != CheckStatus::Ok)
        .map(|c| {
            format!(
                "{}: {}",
                c.title,
                c.detail.lines().next().unwrap_or_default()
            )
        })
}

/// Both routes' checks, and the summary check (`buildRoute`) that says which one the build
/// takes (arduino-cli first, as [`builder::resolve`]) and what the other one lacks.
async fn build_route_checks(opts: &DoctorOptions) -> (Check, Vec<Check>, Option<BuildRoute>) {
    let cli = cli_route(opts).await;
    let mut builder = builder_route(opts).await;
    let (cli_lacks, builder_lacks) = (lacks(&cli), lacks(&builder));
    let mut checks = cli;
    checks.append(&mut builder);
    let taken = match (&cli_lacks, &builder_lacks) {
        (None, _) => Some((
            BuildRoute::ArduinoCli,
            &CLI_ROUTE[..],
            "arduino-builder",
            builder_lacks.as_deref(),
        )),
        (Some(_), None) => Some((
            BuildRoute::ArduinoBuilder,
            &BUILDER_ROUTE[..],
            "arduino-cli",
            cli_lacks.as_deref(),
        )),
        _ => None,
    };
    let route = match taken {
        Some((choice, ids, other, other_lacks)) => {
            // The route not taken does not block anything.
            for c in checks.iter_mut().filter(|c| !ids.contains(&c.id) && c.status == CheckStatus::Error) {
                c.status = CheckStatus::NotNeeded;
            }
            let name = choice.name();
            let other = match other_lacks {
                None => format!("the {other} route is complete too"),
                Some(l) => format!("the {other} route lacks {l}"),
            };
            Check {
                id: "buildRoute",
                title: "Build route",
                status: CheckStatus::Ok,
                detail: format!("{name}: `devkit build` will use it\n{other}"),
                next_actions: vec![],
            }
        }
        None => Check {
            id: "buildRoute",
            title: "Build route",
            status: CheckStatus::Error,
            detail: format!(
                "none is complete: a build needs arduino-cli with the AZ3166 platform, or arduino-builder with an \
                 Arduino15 folder holding it and an ARM compiler\nthe arduino-cli route lacks {}\nthe arduino-builder route lacks {}",
                cli_lacks.as_deref().unwrap_or_default(),
                builder_lacks.as_deref().unwrap_or_default()
            ),
            next_actions: vec![
                action(NextAction::InstallToolchain, Some("arduino-cli")),
                action(NextAction::InstallToolchain, Some(toolchain::PLATFORM_ID)),
            ],
        },
    };
    let choice = taken.map(|t| t.0);
    (route, checks, choice)
}

fn probe_check(probes: Vec<String>) -> Check {
    let (status, detail) = if probes.is_empty() {
        (
            CheckStatus::Warning,
            "no debug probe found: plug the DevKit in with USB to flash it (the virtual DevKit needs none)".to_string(),
        )
    } else {
        (CheckStatus::Ok, probes.join("\n"))
    };
    Check {
        id: "probe",
        title: "Debug probe (ST-LINK)",
        status,
        detail,
        next_actions: vec![],
    }
}

/// Whether a rules file grants access to USB 0483:374B.
fn rule_matches(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.lines()
        .any(|l| !l.trim_start().starts_with('#') && l.contains("0483") && l.contains("374b"))
}

fn udev_check(dirs: &[PathBuf]) -> Check {
    let found = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "rules")
                && std::fs::metadata(p).is_ok_and(|m| m.len() < 1 << 20)
                && std::fs::read_to_string(p).is_ok_and(|t| rule_matches(&t))
        });
    match found {
        Some(p) => Check { id: "udevRule", title: "udev rule for the ST-LINK", status: CheckStatus::Ok, detail: p.display().to_string(), next_actions: vec![] },
        None => Check {
            id: "udevRule",
            title: "udev rule for the ST-LINK",
            status: CheckStatus::Warning,
            detail: format!(
                "no udev rule gives you access to the DevKit's ST-LINK (USB 0483:374B); flashing may need root.\n\
                 Add this line to {UDEV_RULE_FILE}, then run `{UDEV_RELOAD}` and replug the DevKit:\n{UDEV_RULE}"
            ),
            next_actions: vec![action(NextAction::InstallUdevRule, Some(UDEV_RULE_FILE))],
        },
    }
}

/// Whether every check passed (warnings allowed).
pub fn ready(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != CheckStatus::Error)
}

// The tests drive shell-script stand-ins of arduino-cli (Unix only).
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::path::Path;

    fn standin(dir: &Path, version: &str, platforms: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("arduino-cli");
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in\n version) echo '{{\"VersionString\":\"{version}\"}}';;\n core) echo '{platforms}';;\nesac\n"
        );
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// The repository's arduino-cli stand-in (it reads the platforms from the Arduino15
    /// folder in `ARDUINO_DIRECTORIES_DATA`, as arduino-cli does), linked into `dir`.
    fn fixture_cli(dir: &Path) {
        let standin = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/arduino-cli-standin/arduino-cli");
        std::os::unix::fs::symlink(standin, dir.join("arduino-cli")).unwrap();
    }

    /// arduino-builder and arm-none-eabi-gcc stand-ins in `dir`.
    fn builder_tools(dir: &Path) {
        script(dir, "arduino-builder", "echo 'Arduino Builder 1.3.25'");
        script(dir, "arm-none-eabi-gcc", "echo 12.2.1");
    }

    /// An Arduino15 folder holding the AZ3166 platform 1.6.2.
    fn arduino15(dir: &Path) -> PathBuf {
        let data = dir.join("Arduino15");
        let platform = data.join("packages/AZ3166/hardware/stm32f4/1.6.2");
        std::fs::create_dir_all(&platform).unwrap();
        std::fs::write(platform.join("platform.txt"), "name=AZ3166\n").unwrap();
        data
    }

    /// Only `dir` on PATH, an Arduino data folder in it that does not exist unless made.
    fn opts(dir: &Path) -> DoctorOptions {
        DoctorOptions {
            arduino_cli: None,
            arduino_data: Some(dir.join("Arduino15")),
            arduino_builder: None,
            path_env: Some(dir.as_os_str().to_owned()),
            udev_dirs: Some(vec![dir.join("rules.d")]),
            skip_probe: true,
        }
    }

    fn by_id<'a>(checks: &'a [Check], id: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no {id} check in {checks:?}"))
    }

    fn statuses(report: &SetupReport, ids: &[&str]) -> Vec<CheckStatus> {
        ids.iter()
            .map(|id| by_id(&report.checks, id).status)
            .collect()
    }

    #[tokio::test]
    async fn nothing_installed_names_the_fixes() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(&opts(dir.path())).await;
        let checks = &report.checks;
        assert!(!report.ready);
        assert_eq!(report.builder, None);
        assert_eq!(by_id(checks, "daemon").status, CheckStatus::Warning);
        let cli = by_id(checks, "arduinoCli");
        assert_eq!(cli.status, CheckStatus::Error);
        let actions: Vec<_> = cli.next_actions.iter().map(|a| a.action).collect();
        assert_eq!(
            actions,
            [NextAction::InstallToolchain, NextAction::SetArduinoCliPath]
        );
        assert_eq!(
            statuses(
                &report,
                &["platform", "arduinoBuilder", "arduinoData", "armGcc"]
            ),
            [CheckStatus::Error; 4]
        );
        let route = by_id(checks, "buildRoute");
        assert_eq!(route.status, CheckStatus::Error);
        assert!(
            route
                .detail
                .contains("the arduino-cli route lacks arduino-cli: arduino-cli not found")
                && route.detail.contains(
                    "the arduino-builder route lacks arduino-builder: arduino-builder not found"
                ),
            "{}",
            route.detail
        );
        if cfg!(target_os = "linux") {
            let udev = by_id(checks, "udevRule");
            assert_eq!(udev.status, CheckStatus::Warning);
            assert!(udev.detail.contains(UDEV_RULE), "{}", udev.detail);
            assert_eq!(udev.next_actions[0].action, NextAction::InstallUdevRule);
        }
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["checks"][2]["nextActions"][1],
            serde_json::json!({"action": "setArduinoCliPath"}),
            "camelCase wire shape: {json}"
        );
        assert_eq!(json["builder"], serde_json::Value::Null);
    }

    #[tokio::test]
    async fn a_working_toolchain_and_rule_pass() {
        let dir = tempfile::tempdir().unwrap();
        standin(
            dir.path(),
            "1.2.2",
            r#"{"platforms":[{"id":"AZ3166:stm32f4","installed_version":"1.6.2"}]}"#,
        );
        std::fs::create_dir_all(dir.path().join("rules.d")).unwrap();
        std::fs::write(
            dir.path().join("rules.d/49-stlink.rules"),
            format!("# ST-LINK\n{}\n", UDEV_RULE.to_uppercase()),
        )
        .unwrap();
        let report = run(&opts(dir.path())).await;
        let checks = &report.checks;
        assert!(report.ready, "{checks:?}");
        assert!(by_id(checks, "arduinoCli").detail.contains("1.2.2"));
        assert_eq!(by_id(checks, "platform").detail, "AZ3166:stm32f4 1.6.2");
        if cfg!(target_os = "linux") {
            assert_eq!(by_id(checks, "udevRule").status, CheckStatus::Ok);
        }
    }

    #[tokio::test]
    async fn the_arduino_cli_route_alone_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        fixture_cli(dir.path());
        arduino15(dir.path());
        let report = run(&opts(dir.path())).await;
        assert!(report.ready, "{:?}", report.checks);
        assert_eq!(report.builder, Some(BuildRoute::ArduinoCli));
        assert_eq!(
            statuses(&report, &["arduinoCli", "platform", "arduinoData"]),
            [CheckStatus::Ok; 3]
        );
        // Nothing of the other route blocks: it is not needed.
        assert_eq!(
            statuses(&report, &["arduinoBuilder", "armGcc"]),
            [CheckStatus::NotNeeded; 2]
        );
        let route = by_id(&report.checks, "buildRoute");
        assert!(
            route
                .detail
                .starts_with("arduino-cli: `devkit build` will use it")
                && route.detail.contains(
                    "the arduino-builder route lacks arduino-builder: arduino-builder not found"
                ),
            "{}",
            route.detail
        );
        assert_eq!(
            serde_json::to_value(&report).unwrap()["builder"],
            "arduino-cli"
        );
    }

    #[tokio::test]
    async fn the_arduino_builder_route_alone_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        builder_tools(dir.path());
        arduino15(dir.path());
        let report = run(&opts(dir.path())).await;
        assert!(report.ready, "{:?}", report.checks);
        assert_eq!(report.builder, Some(BuildRoute::ArduinoBuilder));
        assert_eq!(
            statuses(&report, &["arduinoBuilder", "arduinoData", "armGcc"]),
            [CheckStatus::Ok; 3]
        );
        assert_eq!(
            statuses(&report, &["arduinoCli", "platform"]),
            [CheckStatus::NotNeeded; 2]
        );
        let checks = &report.checks;
        assert!(by_id(checks, "arduinoBuilder")
            .detail
            .ends_with("version 1.3.25"));
        assert!(by_id(checks, "arduinoData")
            .detail
            .ends_with("holds AZ3166:stm32f4 1.6.2"));
        assert!(by_id(checks, "armGcc")
            .detail
            .contains("has no compiler of its own"));
        let route = by_id(checks, "buildRoute");
        assert!(
            route
                .detail
                .starts_with("arduino-builder: `devkit build` will use it")
                && route
                    .detail
                    .contains("the arduino-cli route lacks arduino-cli: arduino-cli not found"),
            "{}",
            route.detail
        );
    }

    #[tokio::test]
    async fn with_both_routes_arduino_cli_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        fixture_cli(dir.path());
        builder_tools(dir.path());
        arduino15(dir.path());
        let report = run(&opts(dir.path())).await;
        assert!(report.ready);
        assert_eq!(report.builder, Some(BuildRoute::ArduinoCli));
        assert!(report
            .checks
            .iter()
            .all(|c| c.status != CheckStatus::NotNeeded));
        assert!(by_id(&report.checks, "buildRoute")
            .detail
            .ends_with("the arduino-builder route is complete too"));
    }

    #[tokio::test]
    async fn a_cli_without_the_platform_falls_back_to_a_complete_builder_route() {
        let dir = tempfile::tempdir().unwrap();
        standin(dir.path(), "1.2.2", r#"{"platforms":[]}"#);
        builder_tools(dir.path());
        arduino15(dir.path());
        let report = run(&opts(dir.path())).await;
        assert!(report.ready, "{:?}", report.checks);
        assert_eq!(report.builder, Some(BuildRoute::ArduinoBuilder));
        assert_eq!(
            statuses(&report, &["arduinoCli", "platform"]),
            [CheckStatus::Ok, CheckStatus::NotNeeded]
        );
    }

    #[tokio::test]
    async fn an_incomplete_builder_route_names_the_folder_and_what_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        builder_tools(dir.path());
        std::fs::create_dir_all(dir.path().join("Arduino15/packages")).unwrap();
        let report = run(&opts(dir.path())).await;
        assert!(!report.ready);
        let data = by_id(&report.checks, "arduinoData");
        assert_eq!(data.status, CheckStatus::Error);
        let folder = dir.path().join("Arduino15");
        assert!(
            data.detail.contains(&format!(
                "the Arduino data folder given, {},",
                folder.display()
            )) && data
                .detail
                .contains("has no packages/AZ3166/hardware/stm32f4/<version>"),
            "{}",
            data.detail
        );
        // The compiler is still checked (on PATH): one run lists everything missing.
        assert_eq!(by_id(&report.checks, "armGcc").status, CheckStatus::Ok);
        // No compiler either: that is named too.
        std::fs::remove_file(dir.path().join("arm-none-eabi-gcc")).unwrap();
        let report = run(&opts(dir.path())).await;
        let gcc = by_id(&report.checks, "armGcc");
        assert_eq!(gcc.status, CheckStatus::Error);
        assert!(
            gcc.detail.contains("arm-none-eabi-gcc on PATH"),
            "{}",
            gcc.detail
        );
    }

    #[tokio::test]
    async fn a_missing_platform_or_an_old_cli_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        standin(dir.path(), "1.2.2", r#"{"platforms":[]}"#);
        let checks = run(&opts(dir.path())).await.checks;
        let platform = by_id(&checks, "platform");
        assert_eq!(platform.status, CheckStatus::Error);
        assert!(
            platform.detail.contains("core install"),
            "{}",
            platform.detail
        );
        standin(dir.path(), "0.10.0", "[]");
        let checks = run(&opts(dir.path())).await.checks;
        assert_eq!(by_id(&checks, "arduinoCli").status, CheckStatus::Error);
        assert!(by_id(&checks, "platform").detail.starts_with("not checked"));
    }

    #[test]
    fn commented_rules_do_not_count() {
        assert!(!rule_matches(
            "# ATTRS{idVendor}==\"0483\", ATTRS{idProduct}==\"374b\""
        ));
        assert!(rule_matches(UDEV_RULE));
    }
}
