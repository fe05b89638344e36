//! doctor: is this machine ready to build, flash and provision a DevKit?
//!
//! One list of checks for `devkit doctor` and the daemon's `devkit/checkSetup` (the editor's
//! "Check Setup" command): `devkit` on PATH, arduino-cli and its version, the AZ3166 platform,
//! a debug probe, and on Linux the udev rule that lets a user open the DevKit's ST-LINK. Each
//! check that is not fine names the next action that fixes it ([`NextStep`], the shared
//! next-action contract of errors), so each adapter renders it its own way.

use crate::build::toolchain;
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
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable id: `daemon`, `arduinoCli`, `platform`, `probe`, `udevRule`.
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
    /// The configured arduino-cli (`devkitDps.arduinoCli.path`, `--arduino-cli`); else PATH.
    pub arduino_cli: Option<PathBuf>,
    /// The Arduino15 folder holding the platform (arduino-cli's `ARDUINO_DIRECTORIES_DATA`).
    pub arduino_data: Option<PathBuf>,
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

/// Run every check (nothing is changed on the machine).
pub async fn run(opts: &DoctorOptions) -> Vec<Check> {
    let mut checks = vec![daemon_check(opts.path_env.as_ref())];
    checks.extend(toolchain_checks(opts).await);
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
    checks
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

async fn toolchain_checks(opts: &DoctorOptions) -> Vec<Check> {
    let not_checked = |why: &str| Check {
        id: "platform",
        title: "AZ3166 platform",
        status: CheckStatus::Error,
        detail: format!("not checked: {why}"),
        next_actions: vec![action(NextAction::InstallToolchain, None)],
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
            title: "AZ3166 platform",
            status: CheckStatus::Ok,
            detail: format!("{} {v}", toolchain::PLATFORM_ID),
            next_actions: vec![],
        },
        Err(e) => Check {
            id: "platform",
            title: "AZ3166 platform",
            status: CheckStatus::Error,
            detail: e.to_string(),
            next_actions: vec![action(
                NextAction::InstallToolchain,
                Some(toolchain::PLATFORM_ID),
            )],
        },
    };
    vec![version, platform]
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

    fn opts(dir: &Path) -> DoctorOptions {
        DoctorOptions {
            arduino_cli: None,
            arduino_data: None,
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

    #[tokio::test]
    async fn nothing_installed_names_the_fixes() {
        let dir = tempfile::tempdir().unwrap();
        let checks = run(&opts(dir.path())).await;
        assert!(!ready(&checks));
        assert_eq!(by_id(&checks, "daemon").status, CheckStatus::Warning);
        let cli = by_id(&checks, "arduinoCli");
        assert_eq!(cli.status, CheckStatus::Error);
        let actions: Vec<_> = cli.next_actions.iter().map(|a| a.action).collect();
        assert_eq!(
            actions,
            [NextAction::InstallToolchain, NextAction::SetArduinoCliPath]
        );
        assert_eq!(by_id(&checks, "platform").status, CheckStatus::Error);
        if cfg!(target_os = "linux") {
            let udev = by_id(&checks, "udevRule");
            assert_eq!(udev.status, CheckStatus::Warning);
            assert!(udev.detail.contains(UDEV_RULE), "{}", udev.detail);
            assert_eq!(udev.next_actions[0].action, NextAction::InstallUdevRule);
        }
        let json = serde_json::to_value(&checks).unwrap();
        assert_eq!(
            json[1]["nextActions"][1],
            serde_json::json!({"action": "setArduinoCliPath"}),
            "camelCase wire shape: {json}"
        );
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
        let checks = run(&opts(dir.path())).await;
        assert!(ready(&checks), "{checks:?}");
        assert!(by_id(&checks, "arduinoCli").detail.contains("1.2.2"));
        assert_eq!(by_id(&checks, "platform").detail, "AZ3166:stm32f4 1.6.2");
        if cfg!(target_os = "linux") {
            assert_eq!(by_id(&checks, "udevRule").status, CheckStatus::Ok);
        }
    }

    #[tokio::test]
    async fn a_missing_platform_or_an_old_cli_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        standin(dir.path(), "1.2.2", r#"{"platforms":[]}"#);
        let checks = run(&opts(dir.path())).await;
        let platform = by_id(&checks, "platform");
        assert_eq!(platform.status, CheckStatus::Error);
        assert!(
            platform.detail.contains("core install"),
            "{}",
            platform.detail
        );
        standin(dir.path(), "0.10.0", "[]");
        let checks = run(&opts(dir.path())).await;
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
