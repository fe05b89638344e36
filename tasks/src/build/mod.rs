//! build: the DevKit sketch built with arduino-cli.
//!
//! `build()` finds arduino-cli, checks it and the `AZ3166:stm32f4` platform, writes the
//! generated `dps_config.h` into the sketch, compiles into a build path the caller chooses
//! (the CLI uses `<project>/.devkit/build`), streams the compiler's output as progress, turns
//! gcc diagnostics into [`Diagnostic`]s and returns the `.bin` + `.map`.
//!
//! A build is skipped when nothing that affects it changed: the fingerprint (SHA-256 over the
//! sketch files, the DPS settings, the FQBN and the toolchain versions) is stored in the build
//! path as `devkit-build.json` and compared before compiling.

pub mod builder;
mod compile;
pub mod diagnostics;
mod dps_config;
pub mod known_failures;
mod outputs;
pub mod reproducible;
mod request;
pub mod settings;
pub mod sketch;
mod stamp;
pub mod toolchain;

pub use builder::{BuilderChoice, BuilderSettings};
pub use diagnostics::{Diagnostic, Severity};
pub use dps_config::{write_header, DPS_CONFIG_HEADER, DPS_CONFIG_JSON};
pub use known_failures::KnownFailure;
pub use outputs::{find_image_and_map, find_outputs, output_paths, FindOutputError};
pub use request::{
    default_build_dir, default_sketch_dir, BuildOptions, BuildRequest, PlannedBuild,
};
pub use settings::{DpsSettings, SettingsError, DEFAULT_GLOBAL_ENDPOINT};
pub use stamp::{fingerprint, STAMP_FILE};
pub use toolchain::{Toolchain, FQBN, PLATFORM_ID};

use crate::error::{DomainError, ErrorKind, Input, InvalidInput, NextAction, NextStep};
use crate::fsutil::{self, Mode};
use crate::progress::{CancellationToken, Progress};
use compile::compile;
use std::path::{Path, PathBuf};

/// Errors from building.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The caller's input (exit 2 at the CLI).
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The program that compiles (arduino-cli, or arduino-builder when chosen) is missing:
    /// `configured` is the path given for it (then the caller's input to fix), else PATH.
    #[error("{} not found: {}.\n{}", .tool.name(), looked(*.tool, .configured.as_deref()), .tool.install_guidance())]
    ToolNotFound {
        tool: BuildTool,
        configured: Option<PathBuf>,
    },
    #[error("arduino-cli {found} is too old: version {minimum} or newer is needed. Update it: https://arduino.github.io/arduino-cli/latest/installation/")]
    ArduinoCliTooOld { found: String, minimum: String },
    #[error("the DevKit platform {platform} is not installed in arduino-cli.\n{guidance}")]
    PlatformMissing { platform: String, guidance: String },
    /// arduino-builder reads the platform from an Arduino15 folder: none, or it lacks it.
    /// `configured`: the folder was given (then it is the caller's input to fix), else it is
    /// the OS's default place; `cli_missing`: arduino-builder was taken because arduino-cli
    /// is not on PATH.
    #[error("{}", arduino_data_missing(.data.as_deref(), *.configured, *.cli_missing))]
    ArduinoDataMissing {
        data: Option<PathBuf>,
        configured: bool,
        cli_missing: bool,
    },
    #[error("`{command}` failed: {message}")]
    ToolchainQuery { command: String, message: String },
    #[error("compilation failed{}", summary(.diagnostics, .output_tail, .known))]
    Compile {
        diagnostics: Vec<Diagnostic>,
        output_tail: String,
        /// Known platform/toolchain failures recognised in the output, each with its fix.
        known: Vec<(KnownFailure, String)>,
    },
    #[error("arduino-cli reported success but {0} is missing")]
    MissingOutput(PathBuf),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] fsutil::FsError),
    #[error("build cancelled")]
    Cancelled,
}

/// A program that builds the sketch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildTool {
    ArduinoCli,
    ArduinoBuilder,
}

impl BuildTool {
    pub const fn name(self) -> &'static str {
        match self {
            BuildTool::ArduinoCli => "arduino-cli",
            BuildTool::ArduinoBuilder => "arduino-builder",
        }
    }
    /// The input that names its executable.
    pub const fn input(self) -> Input {
        match self {
            BuildTool::ArduinoCli => Input::ArduinoCli,
            BuildTool::ArduinoBuilder => Input::ArduinoBuilder,
        }
    }
    /// It was not found: at `configured` when given, else on PATH.
    pub(crate) fn not_found(self, configured: Option<&Path>) -> BuildError {
        BuildError::ToolNotFound {
            tool: self,
            configured: configured.map(Path::to_path_buf),
        }
    }
    /// How to install it, worded for the terminal and the editor alike (no CLI flags).
    pub fn install_guidance(self) -> String {
        match self {
            BuildTool::ArduinoCli => toolchain::install_guidance(),
            BuildTool::ArduinoBuilder => "Install Arduino's arduino-builder (Debian/Ubuntu: the package `arduino-builder`, \
                 `sudo apt-get install arduino-builder`; it is also part of the Arduino IDE 1.x), or build with arduino-cli instead."
                .into(),
        }
    }
}

/// Where a missing build tool was looked for.
fn looked(tool: BuildTool, configured: Option<&Path>) -> String {
    match configured {
        Some(p) => format!(
            "the configured {} {} does not exist",
            tool.name(),
            p.display()
        ),
        None => format!("`{}` is not on PATH", tool.name()),
    }
}

/// Where arduino-builder looked for the platform and what it did not find there. Says which
/// folder it was (the one given, or the default one) so that nobody is told about a setting
/// they never used.
fn arduino_data_missing(data: Option<&Path>, configured: bool, cli_missing: bool) -> String {
    let why = if cli_missing {
        "`arduino-cli` is not on PATH, so the build uses arduino-builder, which"
    } else {
        "arduino-builder"
    };
    let layout = "packages/AZ3166/hardware/stm32f4/<version> (with platform.txt)";
    match data {
        None => format!(
            "the DevKit platform {} was not found: {why} reads it from an Arduino data folder (Arduino15), \
             and this system has no default one (no home folder). Install arduino-cli and the platform, or \
             give an Arduino15 folder holding {layout}.",
            toolchain::PLATFORM_ID
        ),
        Some(d) => {
            let which = if configured { "the Arduino data folder given" } else { "the default Arduino data folder" };
            let found = if d.is_dir() {
                format!("has no {layout}")
            } else {
                "does not exist".to_string()
            };
            format!(
                "the DevKit platform {} was not found: {why} reads it from an Arduino data folder (Arduino15), \
                 and {which}, {}, {found}. Install arduino-cli and the platform, or copy an Arduino15 folder \
                 that holds the platform (an Arduino IDE install has one) to {}, or give its place as the \
                 Arduino data folder.",
                toolchain::PLATFORM_ID,
                d.display(),
                d.display(),
            )
        }
    }
}

fn summary(diagnostics: &[Diagnostic], tail: &str, known: &[(KnownFailure, String)]) -> String {
    if !known.is_empty() {
        let fixes: Vec<&str> = known.iter().map(|(_, fix)| fix.as_str()).collect();
        return format!(
            ": a known problem of the AZ3166 platform with this toolchain.\n{}",
            fixes.join("\n")
        );
    }
    let errors: Vec<_> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    match errors.first() {
        Some(first) => format!(" with {} error(s); first: {first}", errors.len()),
        None if !tail.trim().is_empty() => format!(":\n{}", tail.trim_end()),
        None => String::new(),
    }
}

impl BuildError {
    fn invalid(input: Input, reason: impl Into<String>) -> Self {
        BuildError::Invalid(InvalidInput::new(input, reason))
    }
}

impl DomainError for BuildError {
    fn kind(&self) -> ErrorKind {
        match self {
            BuildError::Invalid(_) => ErrorKind::InvalidInput,
            BuildError::ToolNotFound { .. }
            | BuildError::PlatformMissing { .. }
            | BuildError::ArduinoDataMissing { .. } => ErrorKind::NotFound,
            BuildError::Compile { .. } => ErrorKind::BuildFailed,
            BuildError::Cancelled => ErrorKind::Cancelled,
            BuildError::Write(e) => e.kind(),
            _ => ErrorKind::Failed,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            BuildError::Invalid(i) => Some(i),
            _ => None,
        }
    }
    /// A configured tool path that does not exist, and the Arduino data folder arduino-builder
    /// needs, are the caller's inputs (the CLI names their flags, the daemon `data.field`).
    fn input(&self) -> Option<Input> {
        match self {
            BuildError::Invalid(i) => Some(i.input),
            BuildError::ToolNotFound {
                tool,
                configured: Some(_),
            } => Some(tool.input()),
            BuildError::ArduinoDataMissing {
                configured: true, ..
            } => Some(Input::ArduinoData),
            _ => None,
        }
    }
    fn next_actions(&self) -> Vec<NextStep> {
        match self {
            BuildError::ToolNotFound {
                tool: BuildTool::ArduinoCli,
                ..
            } => vec![
                NextStep::with_detail(NextAction::InstallToolchain, "arduino-cli"),
                NextStep::new(NextAction::SetArduinoCliPath),
            ],
            BuildError::ToolNotFound {
                tool: BuildTool::ArduinoBuilder,
                ..
            } => vec![NextStep::with_detail(
                NextAction::InstallToolchain,
                "arduino-builder",
            )],
            // Installed elsewhere (an Arduino IDE's folder): point at it instead.
            BuildError::ArduinoDataMissing { .. } => vec![
                NextStep::with_detail(NextAction::InstallToolchain, toolchain::PLATFORM_ID),
                NextStep::new(NextAction::SetArduinoDataPath),
            ],
            BuildError::ArduinoCliTooOld { .. } => vec![NextStep::with_detail(
                NextAction::InstallToolchain,
                "arduino-cli",
            )],
            BuildError::PlatformMissing { platform, .. } => vec![
                NextStep::with_detail(NextAction::InstallToolchain, platform.clone()),
                NextStep::new(NextAction::SetArduinoDataPath),
            ],
            BuildError::Invalid(i) if matches!(i.input, Input::IdScope | Input::GlobalEndpoint) => {
                vec![NextStep::new(NextAction::ConfigureDps)]
            }
            _ => Vec::new(),
        }
    }
}

/// A finished (or skipped) build.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildOutput {
    pub bin: PathBuf,
    pub map: PathBuf,
    /// True when the compile was skipped because nothing changed.
    pub skipped: bool,
    /// Warnings and notes of a successful compile (empty when skipped).
    pub diagnostics: Vec<Diagnostic>,
    /// Hex SHA-256 of everything that affects the build.
    pub fingerprint: String,
    pub toolchain: Toolchain,
}

/// The sketch's name (its directory name) after checking `<name>.ino` exists.
fn sketch_name(sketch_dir: &Path) -> Result<String, BuildError> {
    let name = sketch_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            BuildError::invalid(
                Input::Sketch,
                format!("{} has no usable name", sketch_dir.display()),
            )
        })?
        .to_string();
    let ino = sketch_dir.join(format!("{name}.ino"));
    if !ino.is_file() {
        return Err(BuildError::invalid(Input::Sketch, format!("{} does not hold {name}.ino (an Arduino sketch directory holds a .ino named after it)", sketch_dir.display())));
    }
    Ok(name)
}

/// Build the sketch (or skip it when nothing changed).
pub async fn build(
    opts: &BuildOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<BuildOutput, BuildError> {
    let sketch_abs = std::path::absolute(&opts.sketch_dir).map_err(|source| BuildError::Io {
        context: "cannot resolve the sketch path".into(),
        source,
    })?;
    let name = sketch_name(&sketch_abs)?;
    let build_abs = std::path::absolute(&opts.build_path).map_err(|source| BuildError::Io {
        context: "cannot resolve the build path".into(),
        source,
    })?;
    if build_abs.starts_with(&sketch_abs) {
        return Err(BuildError::invalid(Input::BuildDir, format!("{} is inside the sketch directory {}; choose a directory outside it (default: <project>/.devkit/build)", build_abs.display(), sketch_abs.display())));
    }

    progress.begin("Building");
    let builder = builder::resolve(opts.arduino_cli.as_deref(), &opts.builder, progress).await?;
    let toolchain = builder.toolchain.clone();
    let builder_name = match toolchain.builder {
        BuilderChoice::ArduinoBuilder => "arduino-builder",
        _ => "arduino-cli",
    };
    progress.report(
        format!(
            "{builder_name} {}, platform {} {}",
            toolchain.arduino_cli_version, PLATFORM_ID, toolchain.platform_version
        ),
        None,
    );

    write_header(&opts.sketch_dir, &opts.dps)?;
    let fp = fingerprint(&opts.sketch_dir, &opts.dps, &toolchain)?;
    let (bin, map) = output_paths(&build_abs, &name);
    let stamp_path = build_abs.join(STAMP_FILE);

    if !opts.force && stamp::up_to_date(&stamp_path, &fp, &bin, &map) {
        progress.end("Up to date: nothing that affects the build changed");
        return Ok(BuildOutput {
            bin,
            map,
            skipped: true,
            diagnostics: vec![],
            fingerprint: fp,
            toolchain,
        });
    }
    stamp::remove_stamp(&stamp_path)?;
    std::fs::create_dir_all(&build_abs).map_err(|source| BuildError::Io {
        context: format!("cannot create {}", build_abs.display()),
        source,
    })?;

    progress.report(
        format!(
            "Compiling {} for {FQBN} with {builder_name}",
            sketch_abs.display()
        ),
        None,
    );
    if let Some(w) = builder.reproducibility(&sketch_abs, &build_abs).warning {
        progress.warn(w);
    }
    let diagnostics = compile(
        builder.compile_command(&sketch_abs, &build_abs),
        builder.platform_dir.as_deref(),
        progress,
        cancel,
    )
    .await?;
    for p in [&bin, &map] {
        if !p.is_file() {
            return Err(BuildError::MissingOutput(p.clone()));
        }
    }
    let dps_json = serde_json::to_vec_pretty(&opts.dps).unwrap_or_default();
    let stamp = stamp::stamp_json(&fp, &bin, &map);
    fsutil::write_all_atomic(&[
        (build_abs.join(DPS_CONFIG_JSON), dps_json, Mode::Public),
        (stamp_path, stamp, Mode::Public),
    ])?;
    progress.end(format!("Built {}", bin.display()));
    Ok(BuildOutput {
        bin,
        map,
        skipped: false,
        diagnostics,
        fingerprint: fp,
        toolchain,
    })
}

/// A small file the build wrote (stamp, `dps_config.json`, the generated header), bounded;
/// missing or unreadable is "nothing to reuse".
fn read_state(path: &Path) -> Option<Vec<u8>> {
    fsutil::read_internal(path, fsutil::limits::STATE_FILE)
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon runs builds on its multi-threaded runtime: the futures must be `Send`.
    #[test]
    fn futures_are_send() {
        fn is_send<T: Send>(_: &T) {}
        let (dps, _) = DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, "0ne0001A2B3", None).unwrap();
        let opts = BuildOptions {
            sketch_dir: "s".into(),
            build_path: "b".into(),
            arduino_cli: None,
            builder: BuilderSettings::default(),
            dps,
            force: false,
        };
        let (p, c) = (Progress::none(), CancellationToken::new());
        is_send(&build(&opts, &p, &c));
        let up = crate::upload::DeviceUploadOptions {
            project_root: ".".into(),
            build: opts.clone(),
            backend: crate::flash::Backend::ProbeRs { probe: None },
            port: None,
        };
        is_send(&crate::upload::device_upload(
            &up,
            None,
            &crate::upload::NoMonitor,
            &p,
            &c,
        ));
        let img = crate::flash::FlashImage {
            bin_path: "x".into(),
            bin: vec![],
            map: None,
            dps: None,
            address: 0,
        };
        is_send(&crate::flash::flash(&img, &up.backend, &p, &c));
    }

    #[test]
    fn compile_error_summary_names_first_error() {
        let d = diagnostics::parse_output(
            "a.ino:3:1: warning: w\na.ino:4:2: error: boom\nb.ino:5:1: error: bang",
        );
        let e = BuildError::Compile {
            diagnostics: d.clone(),
            output_tail: String::new(),
            known: vec![],
        }
        .to_string();
        assert!(
            e.contains("2 error(s)") && e.contains("a.ino:4:2: error: boom"),
            "{e}"
        );
        // A known platform failure leads with its fix.
        let k = KnownFailure::LocaleCtypePtr;
        let e = BuildError::Compile {
            diagnostics: d,
            output_tail: String::new(),
            known: vec![(k, k.explain(None))],
        }
        .to_string();
        assert!(
            e.contains("known problem") && e.contains(known_failures::LOCALE_SHIM_SOURCE),
            "{e}"
        );
    }
}
