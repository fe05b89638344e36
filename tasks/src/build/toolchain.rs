//! Finding arduino-cli and checking that it can build for the DevKit.
//!
//! Only arduino-cli's documented machine-readable commands are used: `version --format json`
//! and `core list --format json` (`--format json` is still accepted by 1.x, where `--json` is
//! its new spelling). `core list` changed shape over the releases (a bare array with `ID` /
//! `Installed` before 0.18, snake case later, `{"platforms": [...]}` with `installed_version`
//! since 1.0), so all shapes are read.

use super::{BuildError, BuildTool};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The DevKit's Arduino platform.
pub const PLATFORM_ID: &str = "AZ3166:stm32f4";
/// The DevKit's fully qualified board name.
pub const FQBN: &str = "AZ3166:stm32f4:MXCHIP_AZ3166";
/// The vendor's Boards Manager index (it may no longer be served).
pub const VENDOR_INDEX_URL: &str = "https://raw.githubusercontent.com/VSChina/azureiotdevkit_tools/master/package_azureboard_index.json";
/// Oldest arduino-cli whose JSON output we read (snake-case keys, `--build-path`).
pub const MIN_VERSION: (u32, u32, u32) = (0, 18, 0);

/// What was found, for the report and the build fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Toolchain {
    /// Which program builds (`arduino-cli` or `arduino-builder`).
    pub builder: super::builder::BuilderChoice,
    /// The builder's executable (arduino-cli or arduino-builder).
    pub arduino_cli: PathBuf,
    pub arduino_cli_version: String,
    pub platform_version: String,
}

/// How to install arduino-cli and the platform, shown with every "not found" error. Worded
/// for the terminal and the editor alike: arduino-cli's own commands, none of devkit's flags
/// (each adapter renders the next actions: flags in the terminal, buttons in the editor).
pub fn install_guidance() -> String {
    format!(
        "Install arduino-cli (https://arduino.github.io/arduino-cli/latest/installation/), then the DevKit platform:\n  \
         arduino-cli core update-index --additional-urls {VENDOR_INDEX_URL}\n  \
         arduino-cli core install {PLATFORM_ID} --additional-urls {VENDOR_INDEX_URL}\n\
         Note: the vendor's old board index URL may no longer be served; if the index download fails, use an existing \
         Arduino15 folder that holds packages/AZ3166/hardware/stm32f4/<version> (from an Arduino IDE install) as the \
         Arduino data folder; without arduino-cli, Arduino's arduino-builder (e.g. Debian's package `arduino-builder`) \
         builds from that folder."
    )
}

/// The arduino-cli to use: the explicit setting when given (it must exist), else `arduino-cli`
/// on `path_env` (the process PATH when `None`).
pub fn find_arduino_cli(
    explicit: Option<&Path>,
    path_env: Option<&OsStr>,
) -> Result<PathBuf, BuildError> {
    let not_found = |configured| BuildTool::ArduinoCli.not_found(configured);
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(not_found(Some(p)))
        };
    }
    let found = match path_env {
        Some(path) => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            which::which_in("arduino-cli", Some(path), cwd)
        }
        None => which::which("arduino-cli"),
    };
    found.map_err(|_| not_found(None))
}

/// Parse `X.Y.Z` (a leading `v` and any `-suffix` ignored).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let t = text.trim().trim_start_matches('v');
    let t = t.split(['-', '+', ' ']).next()?;
    let mut it = t.split('.');
    let v = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next().unwrap_or("0").parse().ok()?,
    );
    Some(v)
}

/// `VersionString` from `arduino-cli version --format json`.
pub fn version_from_json(stdout: &str) -> Option<String> {
    let v: Value = serde_json::from_str(stdout.trim()).ok()?;
    v.get("VersionString")
        .or_else(|| v.get("version_string"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The installed version of `platform_id` in `arduino-cli core list --format json` output, in
/// any of its historical shapes. `Ok(None)`: the list is readable and the platform is absent.
pub fn installed_platform_version(
    stdout: &str,
    platform_id: &str,
) -> Result<Option<String>, String> {
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let list = match &v {
        Value::Null => return Ok(None),
        Value::Array(a) => a.clone(),
        Value::Object(o) => match o.get("platforms") {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Null) | None => return Ok(None),
            Some(_) => return Err("`platforms` is not a list".into()),
        },
        _ => return Err("neither a list nor an object".into()),
    };
    for p in &list {
        let id = p.get("id").or_else(|| p.get("ID")).and_then(Value::as_str);
        if id != Some(platform_id) {
            continue;
        }
        let version = ["installed_version", "installed", "Installed"]
            .iter()
            .find_map(|k| p.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty());
        return Ok(version.map(str::to_string));
    }
    Ok(None)
}

/// Run `arduino-cli <args>` and return stdout; a failure names the command.
async fn query(cli: &Path, data: Option<&Path>, args: &[&str]) -> Result<String, BuildError> {
    let command = format!("{} {}", cli.display(), args.join(" "));
    let mut cmd = tokio::process::Command::new(cli);
    if let Some(d) = data {
        cmd.env("ARDUINO_DIRECTORIES_DATA", d);
    }
    let out = cmd
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| BuildError::ToolchainQuery {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let msg = if stderr.trim().is_empty() {
            stdout.trim().to_string()
        } else {
            stderr.trim().to_string()
        };
        return Err(BuildError::ToolchainQuery {
            command,
            message: format!("{}: {msg}", out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Check arduino-cli's version and that the DevKit platform is installed (in `data`, the
/// Arduino15 folder, when given: arduino-cli's `ARDUINO_DIRECTORIES_DATA`). Warnings (an
/// unparsable development version) go to `progress`.
pub async fn check(
    cli: &Path,
    data: Option<&Path>,
    progress: &crate::progress::Progress,
) -> Result<Toolchain, BuildError> {
    let version = arduino_cli_version(cli, data, progress).await?;
    let platform_version = platform_version(cli, data).await?;
    Ok(Toolchain {
        builder: super::builder::BuilderChoice::ArduinoCli,
        arduino_cli: cli.to_path_buf(),
        arduino_cli_version: version,
        platform_version,
    })
}

/// arduino-cli's version, refused when older than [`MIN_VERSION`].
pub async fn arduino_cli_version(
    cli: &Path,
    data: Option<&Path>,
    progress: &crate::progress::Progress,
) -> Result<String, BuildError> {
    let out = query(cli, data, &["version", "--format", "json"]).await?;
    let version = version_from_json(&out).ok_or_else(|| BuildError::ToolchainQuery {
        command: format!("{} version --format json", cli.display()),
        message: format!("no VersionString in its output: {}", out.trim()),
    })?;
    match parse_version(&version) {
        Some(v) if v < MIN_VERSION => {
            return Err(BuildError::ArduinoCliTooOld {
                found: version,
                minimum: format!("{}.{}.{}", MIN_VERSION.0, MIN_VERSION.1, MIN_VERSION.2),
            })
        }
        Some(_) => {}
        None => progress.warn(format!(
            "arduino-cli reports version {version:?}, which is not X.Y.Z; trying it anyway"
        )),
    }
    Ok(version)
}

/// The installed version of the DevKit platform ([`PLATFORM_ID`]) in `data` (the Arduino15
/// folder, when given); missing is an error.
pub async fn platform_version(cli: &Path, data: Option<&Path>) -> Result<String, BuildError> {
    let out = query(cli, data, &["core", "list", "--format", "json"]).await?;
    installed_platform_version(&out, PLATFORM_ID)
        .map_err(|m| BuildError::ToolchainQuery {
            command: format!("{} core list --format json", cli.display()),
            message: m,
        })?
        .ok_or_else(|| BuildError::PlatformMissing {
            platform: PLATFORM_ID.into(),
            guidance: install_guidance(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.1.1"), Some((1, 1, 1)));
        assert_eq!(parse_version("0.35.0-rc.1"), Some((0, 35, 0)));
        assert_eq!(parse_version("nightly-20210218"), None);
        assert_eq!(version_from_json(r#"{"Application":"arduino-cli","VersionString":"1.2.2","Commit":"c11b9dd5","Status":"","Date":"2025-04-22T13:49:10Z"}"#).as_deref(), Some("1.2.2"));
        assert_eq!(version_from_json("Version: 1.0"), None);
    }

    #[test]
    fn core_list_shapes() {
        let v1 = r#"{"platforms":[{"id":"arduino:avr","installed_version":"1.8.6"},{"id":"AZ3166:stm32f4","installed_version":"1.6.2","latest_version":"1.6.2"}]}"#;
        assert_eq!(
            installed_platform_version(v1, PLATFORM_ID)
                .unwrap()
                .as_deref(),
            Some("1.6.2")
        );
        let v036 = r#"{"platforms":[{"id":"AZ3166:stm32f4","installed":"1.6.0"}]}"#;
        assert_eq!(
            installed_platform_version(v036, PLATFORM_ID)
                .unwrap()
                .as_deref(),
            Some("1.6.0")
        );
        let v020 = r#"[{"id":"AZ3166:stm32f4","installed":"1.5.0","latest":"1.6.0"}]"#;
        assert_eq!(
            installed_platform_version(v020, PLATFORM_ID)
                .unwrap()
                .as_deref(),
            Some("1.5.0")
        );
        let v010 = r#"[{"ID":"AZ3166:stm32f4","Installed":"1.4.0"}]"#;
        assert_eq!(
            installed_platform_version(v010, PLATFORM_ID)
                .unwrap()
                .as_deref(),
            Some("1.4.0")
        );
        for none in [
            "[]",
            "null",
            "{}",
            r#"{"platforms":null}"#,
            r#"{"platforms":[{"id":"arduino:avr","installed_version":"1.8.6"}]}"#,
        ] {
            assert_eq!(
                installed_platform_version(none, PLATFORM_ID).unwrap(),
                None,
                "{none}"
            );
        }
        assert!(installed_platform_version("garbage", PLATFORM_ID).is_err());
    }

    #[test]
    fn guidance_has_the_commands() {
        let g = install_guidance();
        assert!(g.contains("arduino-cli core install AZ3166:stm32f4 --additional-urls https://"));
        assert!(g.contains("may no longer be served"));
    }

    #[test]
    fn missing_explicit_path_names_it() {
        let err = find_arduino_cli(Some(Path::new("/nonexistent/arduino-cli")), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/arduino-cli"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = find_arduino_cli(None, Some(dir.path().as_os_str()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PATH") && err.contains("core install"),
            "{err}"
        );
    }
}
