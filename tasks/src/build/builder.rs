//! Which program compiles the sketch: arduino-cli, or Arduino's older `arduino-builder` (the
//! engine of the Arduino IDE 1.x, packaged by Debian) for users whose setup has no
//! arduino-cli or whose vendor board index is gone but who still have an Arduino15 folder
//! with the AZ3166 platform in it.
//!
//! arduino-builder is driven with its documented command line: `-compile -hardware DIR
//! -tools DIR -fqbn FQBN -build-path DIR -prefs=KEY=VALUE SKETCH`. It reads the platform
//! straight from `<Arduino15>/packages/AZ3166/hardware/stm32f4/<version>`; when the
//! platform's own compiler is not installed under `<Arduino15>/packages/*/tools`, the
//! `arm-none-eabi-gcc` on PATH is used (`runtime.tools.arm-none-eabi-gcc.path`).

use super::reproducible::{self, Reproducibility};
use super::toolchain::{self, Toolchain, FQBN, PLATFORM_ID};
use super::{BuildError, BuildTool};
use crate::progress::Progress;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Which builder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuilderChoice {
    /// arduino-cli when found (or configured), else arduino-builder.
    #[default]
    Auto,
    ArduinoCli,
    ArduinoBuilder,
}

impl std::str::FromStr for BuilderChoice {
    type Err = BuildError;
    fn from_str(s: &str) -> Result<Self, BuildError> {
        match s {
            "auto" => Ok(BuilderChoice::Auto),
            "arduino-cli" => Ok(BuilderChoice::ArduinoCli),
            "arduino-builder" => Ok(BuilderChoice::ArduinoBuilder),
            _ => Err(BuildError::Invalid(crate::error::InvalidInput::new(
                crate::error::Input::Builder,
                format!("{s:?} is not one of `auto`, `arduino-cli`, `arduino-builder`"),
            ))),
        }
    }
}

/// The builder settings of a build (all optional).
#[derive(Debug, Clone, Default)]
pub struct BuilderSettings {
    pub choice: BuilderChoice,
    /// Explicit arduino-builder; `None` = `arduino-builder` on PATH.
    pub arduino_builder: Option<PathBuf>,
    /// The Arduino15 folder holding `packages/` (arduino-cli's data directory); `None` = the
    /// OS's usual place (see [`default_arduino_data`]).
    pub arduino_data: Option<PathBuf>,
}

/// Where the Arduino IDE and arduino-cli keep their data by default.
pub fn default_arduino_data() -> Option<PathBuf> {
    if cfg!(windows) {
        std::env::var_os("LOCALAPPDATA").map(|d| PathBuf::from(d).join("Arduino15"))
    } else {
        let home = PathBuf::from(std::env::var_os("HOME")?);
        Some(if cfg!(target_os = "macos") {
            home.join("Library/Arduino15")
        } else {
            home.join(".arduino15")
        })
    }
}

/// A builder ready to compile.
#[derive(Debug, Clone)]
pub struct Builder {
    pub toolchain: Toolchain,
    /// The installed platform folder, when known (arduino-builder; arduino-cli with a data dir
    /// that holds it). Used to make fixes for known failures exact.
    pub platform_dir: Option<PathBuf>,
    arduino_data: Option<PathBuf>,
    extra_hardware: Vec<PathBuf>,
    extra_tools: Vec<PathBuf>,
    prefs: Vec<String>,
    /// The compiler the platform's recipes run and its `-dumpversion`, for
    /// [`reproducible::plan`](super::reproducible::plan).
    gcc: Option<PathBuf>,
    gcc_version: Option<String>,
}

/// Find and check the builder the settings ask for. `Auto` takes the first complete route,
/// arduino-cli first: arduino-cli with the platform, else arduino-builder over an Arduino15
/// folder holding it (the rule `devkit doctor` reports, so both name the same route).
pub async fn resolve(
    arduino_cli: Option<&Path>,
    settings: &BuilderSettings,
    progress: &Progress,
) -> Result<Builder, BuildError> {
    match settings.choice {
        BuilderChoice::ArduinoCli => resolve_cli(arduino_cli, settings, progress).await,
        BuilderChoice::ArduinoBuilder => resolve_builder(settings, false, progress).await,
        BuilderChoice::Auto => {
            let cli_found = arduino_cli.is_some() || which::which("arduino-cli").is_ok();
            if !cli_found {
                return match find_arduino_builder(settings.arduino_builder.as_deref(), None) {
                    // Neither program: arduino-cli is the one to install.
                    Err(_) => Err(BuildTool::ArduinoCli.not_found(None)),
                    Ok(_) => resolve_builder(settings, true, progress).await,
                };
            }
            let cli_err = match resolve_cli(arduino_cli, settings, progress).await {
                Ok(b) => return Ok(b),
                Err(e @ BuildError::Cancelled) => return Err(e),
                Err(e) => e,
            };
            if find_arduino_builder(settings.arduino_builder.as_deref(), None).is_err() {
                return Err(cli_err);
            }
            match resolve_builder(settings, false, &Progress::none()).await {
                Ok(b) => {
                    progress.warn(format!(
                        "arduino-cli cannot build for the DevKit ({}): building with arduino-builder instead",
                        cli_err.to_string().lines().next().unwrap_or_default()
                    ));
                    Ok(b)
                }
                Err(_) => Err(cli_err),
            }
        }
    }
}

async fn resolve_cli(
    arduino_cli: Option<&Path>,
    settings: &BuilderSettings,
    progress: &Progress,
) -> Result<Builder, BuildError> {
    let data = settings.arduino_data.clone().or_else(default_arduino_data);
    let cli = toolchain::find_arduino_cli(arduino_cli, None)?;
    progress.report(format!("Checking {}", cli.display()), None);
    let toolchain = toolchain::check(&cli, settings.arduino_data.as_deref(), progress).await?;
    let platform_dir = data
        .as_deref()
        .and_then(|d| platform_dir(d, Some(&toolchain.platform_version)));
    let gcc = reproducible::compiler_path(data.as_deref(), None);
    let gcc_version = gcc_version(gcc.as_deref()).await;
    Ok(Builder {
        toolchain,
        platform_dir,
        arduino_data: settings.arduino_data.clone(),
        extra_hardware: vec![],
        extra_tools: vec![],
        prefs: vec![],
        gcc,
        gcc_version,
    })
}

/// The Arduino15 folder arduino-builder reads: the given one, else the OS's usual place;
/// missing, or without the platform, it is an [`BuildError::ArduinoDataMissing`] that says
/// whether the folder was given or the default (`cli_missing`: chosen because arduino-cli
/// is not on PATH).
pub(crate) fn builder_data(
    given: Option<&Path>,
    cli_missing: bool,
) -> Result<(PathBuf, PathBuf), BuildError> {
    let missing = |data: Option<PathBuf>| BuildError::ArduinoDataMissing {
        data,
        configured: given.is_some(),
        cli_missing,
    };
    let data = given
        .map(Path::to_path_buf)
        .or_else(default_arduino_data)
        .ok_or_else(|| missing(None))?;
    let platform = platform_dir(&data, None).ok_or_else(|| missing(Some(data.clone())))?;
    Ok((data, platform))
}

/// The compiler arduino-builder will use when the platform has none of its own in `data`:
/// `Ok(None)` when it has (`packages/*/tools/arm-none-eabi-gcc`), else `arm-none-eabi-gcc` on
/// `path_env` (the process PATH when `None`). Without `data`, only PATH is looked at.
pub(crate) fn builder_gcc(
    data: Option<&Path>,
    path_env: Option<&OsStr>,
) -> Result<Option<PathBuf>, BuildError> {
    if data.is_some_and(has_packaged_gcc) {
        return Ok(None);
    }
    let folder = data.map_or_else(
        || "the Arduino data folder".to_string(),
        |d| d.display().to_string(),
    );
    which_in("arm-none-eabi-gcc", path_env)
        .map(Some)
        .ok_or_else(|| BuildError::PlatformMissing {
            platform: format!("{PLATFORM_ID} compiler (arm-none-eabi-gcc)"),
            guidance: format!("neither {folder}/packages/AZ3166/tools/arm-none-eabi-gcc nor arm-none-eabi-gcc on PATH was found; install one (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib)"),
        })
}

fn which_in(name: &str, path_env: Option<&OsStr>) -> Option<PathBuf> {
    match path_env {
        Some(p) => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            which::which_in(name, Some(p), cwd).ok()
        }
        None => which::which(name).ok(),
    }
}

async fn resolve_builder(
    settings: &BuilderSettings,
    cli_missing: bool,
    progress: &Progress,
) -> Result<Builder, BuildError> {
    let exe = find_arduino_builder(settings.arduino_builder.as_deref(), None)?;
    progress.report(format!("Checking {}", exe.display()), None);
    let version = builder_version(&exe).await?;
    let (data, platform) = builder_data(settings.arduino_data.as_deref(), cli_missing)?;
    let platform_version = platform
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The builder's own files: ctags and global prefs (Debian: /usr/share/arduino-builder;
    // Arduino IDE 1.x: <ide>/hardware and <ide>/tools-builder next to the executable).
    let exe_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let extra_hardware: Vec<PathBuf> = [
        exe_dir.join("hardware"),
        exe_dir.join("../share/arduino-builder"),
        PathBuf::from("/usr/share/arduino-builder"),
    ]
    .into_iter()
    .filter(|d| d.join("platform.txt").is_file() || d.join("arduino").is_dir())
    .take(1)
    .collect();
    let extra_tools: Vec<PathBuf> = [exe_dir.join("tools-builder")]
        .into_iter()
        .filter(|d| d.is_dir())
        .collect();
    let mut prefs = Vec::new();
    let mut gcc_root = None;
    if let Some(gcc) = builder_gcc(Some(&data), None)? {
        let root = gcc
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        progress.report(
            format!(
                "The platform's compiler is not in {}: using {}",
                data.display(),
                gcc.display()
            ),
            None,
        );
        prefs.push(format!(
            "runtime.tools.arm-none-eabi-gcc.path={}",
            root.display()
        ));
        gcc_root = Some(root);
    }
    let gcc = reproducible::compiler_path(Some(&data), gcc_root.as_deref());
    let gcc_version = gcc_version(gcc.as_deref()).await;
    let toolchain = Toolchain {
        builder: BuilderChoice::ArduinoBuilder,
        arduino_cli: exe,
        arduino_cli_version: version,
        platform_version,
    };
    Ok(Builder {
        toolchain,
        platform_dir: Some(platform),
        arduino_data: Some(data),
        extra_hardware,
        extra_tools,
        prefs,
        gcc,
        gcc_version,
    })
}

/// `gcc -dumpversion`, `None` when it cannot be run.
async fn gcc_version(gcc: Option<&Path>) -> Option<String> {
    let out = tokio::process::Command::new(gcc?)
        .arg("-dumpversion")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The arduino-builder to use (`explicit`, else on `path_env`, the process PATH when `None`);
/// missing, it is named (not arduino-cli) with how to install it.
pub(crate) fn find_arduino_builder(
    explicit: Option<&Path>,
    path_env: Option<&OsStr>,
) -> Result<PathBuf, BuildError> {
    let not_found = |configured| BuildTool::ArduinoBuilder.not_found(configured);
    match explicit {
        Some(p) if p.is_file() => Ok(p.to_path_buf()),
        Some(p) => Err(not_found(Some(p))),
        None => which_in("arduino-builder", path_env).ok_or_else(|| not_found(None)),
    }
}

/// `Arduino Builder 1.3.25` -> `1.3.25`.
pub(crate) async fn builder_version(exe: &Path) -> Result<String, BuildError> {
    let out = tokio::process::Command::new(exe)
        .arg("-version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| BuildError::ToolchainQuery {
            command: format!("{} -version", exe.display()),
            message: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_builder_version(&text).ok_or_else(|| BuildError::ToolchainQuery {
        command: format!("{} -version", exe.display()),
        message: format!("no version in its output: {}", text.trim()),
    })
}

fn parse_builder_version(text: &str) -> Option<String> {
    let first = text.lines().find(|l| l.contains("Arduino Builder"))?;
    let v = first.split_whitespace().last()?;
    toolchain::parse_version(v).map(|_| v.to_string())
}

/// The installed `packages/AZ3166/hardware/stm32f4/<version>` folder in `data` (the given
/// version, else the highest one holding a `platform.txt`).
pub fn platform_dir(data: &Path, version: Option<&str>) -> Option<PathBuf> {
    let base = data.join("packages/AZ3166/hardware/stm32f4");
    if let Some(v) = version {
        let d = base.join(v);
        return d.join("platform.txt").is_file().then_some(d);
    }
    type Version = Option<(u32, u32, u32)>;
    let mut found: Vec<(Version, PathBuf)> = std::fs::read_dir(&base)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("platform.txt").is_file())
        .map(|p| {
            (
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(toolchain::parse_version),
                p,
            )
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn has_packaged_gcc(data: &Path) -> bool {
    let Ok(vendors) = std::fs::read_dir(data.join("packages")) else {
        return false;
    };
    vendors.filter_map(Result::ok).any(|v| {
        std::fs::read_dir(v.path().join("tools/arm-none-eabi-gcc"))
            .is_ok_and(|mut versions| versions.next().is_some())
    })
}

impl Builder {
    /// The build properties that keep this machine's paths out of the image
    /// ([`reproducible`]), or why there are none.
    pub fn reproducibility(&self, sketch: &Path, build_path: &Path) -> Reproducibility {
        let Some(platform) = &self.platform_dir else {
            return Reproducibility {
                properties: vec![],
                warning: Some("the platform folder is not known (give the Arduino data folder): the image embeds this machine's install paths, so the device's identity depends on where the platform is installed".into()),
            };
        };
        let props = reproducible::platform_properties(platform);
        // `<data>/packages/AZ3166/hardware/stm32f4/<version>`: the data folder is 5 levels up.
        let maps = reproducible::prefix_maps(
            self.arduino_data.as_deref().or(platform.ancestors().nth(5)),
            Some(platform),
            sketch,
            build_path,
        );
        reproducible::plan(
            &props,
            &maps,
            self.gcc.as_deref(),
            self.gcc_version.as_deref(),
        )
    }

    /// The compile command for `sketch` into `build_path`.
    pub fn compile_command(&self, sketch: &Path, build_path: &Path) -> tokio::process::Command {
        let properties = self.reproducibility(sketch, build_path).properties;
        let mut cmd = tokio::process::Command::new(&self.toolchain.arduino_cli);
        match self.toolchain.builder {
            BuilderChoice::ArduinoBuilder => {
                let packages = self
                    .arduino_data
                    .as_ref()
                    .map(|d| d.join("packages"))
                    .unwrap_or_default();
                cmd.arg("-compile").arg("-logger").arg("human");
                for h in self.extra_hardware.iter().chain(std::iter::once(&packages)) {
                    cmd.arg("-hardware").arg(h);
                }
                for t in self.extra_tools.iter().chain(std::iter::once(&packages)) {
                    cmd.arg("-tools").arg(t);
                }
                cmd.arg("-fqbn")
                    .arg(FQBN)
                    .arg("-build-path")
                    .arg(build_path);
                for p in self.prefs.iter().chain(&properties) {
                    let mut a = OsString::from("-prefs=");
                    a.push(p);
                    cmd.arg(a);
                }
                cmd.arg(sketch);
            }
            _ => {
                if let Some(d) = &self.arduino_data {
                    cmd.env("ARDUINO_DIRECTORIES_DATA", d);
                }
                cmd.arg("compile")
                    .arg("--fqbn")
                    .arg(FQBN)
                    .arg("--build-path")
                    .arg(build_path);
                for p in &properties {
                    cmd.arg("--build-property").arg(p);
                }
                cmd.arg(sketch);
            }
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_and_versions() {
        assert_eq!(
            "arduino-builder".parse::<BuilderChoice>().unwrap(),
            BuilderChoice::ArduinoBuilder
        );
        assert_eq!(
            "auto".parse::<BuilderChoice>().unwrap(),
            BuilderChoice::Auto
        );
        let e = "make".parse::<BuilderChoice>().unwrap_err().to_string();
        assert!(
            e.contains("builder") && e.contains("arduino-builder"),
            "{e}"
        );
        assert_eq!(
            parse_builder_version("Arduino Builder 1.3.25\nCopyright (C) 2015 Arduino LLC\n")
                .as_deref(),
            Some("1.3.25")
        );
        assert_eq!(parse_builder_version("something else"), None);
    }

    #[test]
    fn the_highest_installed_platform_version_wins() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("packages/AZ3166/hardware/stm32f4");
        for v in ["1.6.2", "2.0.0", "10.0.0-broken"] {
            std::fs::create_dir_all(base.join(v)).unwrap();
        }
        for v in ["1.6.2", "2.0.0"] {
            std::fs::write(base.join(v).join("platform.txt"), "").unwrap();
        }
        assert_eq!(platform_dir(d.path(), None), Some(base.join("2.0.0")));
        assert_eq!(
            platform_dir(d.path(), Some("1.6.2")),
            Some(base.join("1.6.2"))
        );
        assert_eq!(platform_dir(d.path(), Some("9.9.9")), None);
        assert_eq!(platform_dir(&d.path().join("nowhere"), None), None);
    }
}
