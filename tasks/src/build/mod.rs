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
pub mod diagnostics;
pub mod known_failures;
pub mod reproducible;
pub mod settings;
pub mod sketch;
pub mod toolchain;

pub use builder::{BuilderChoice, BuilderSettings};
pub use diagnostics::{Diagnostic, Severity};
pub use known_failures::KnownFailure;
pub use settings::{DpsSettings, SettingsError, DEFAULT_GLOBAL_ENDPOINT};
pub use toolchain::{Toolchain, FQBN, PLATFORM_ID};

use crate::error::{DomainError, ErrorKind, Input, InvalidInput, NextAction, NextStep};
use crate::fsutil::{self, Mode};
use crate::progress::{CancellationToken, Progress};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Name of the stamp file in the build path.
pub const STAMP_FILE: &str = "devkit-build.json";
/// Name of the settings file written next to the outputs (read by the sim flash backend).
pub const DPS_CONFIG_JSON: &str = "dps_config.json";
/// Name of the generated header in the sketch directory.
pub const DPS_CONFIG_HEADER: &str = "dps_config.h";

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
    #[error("{}", arduino_data_missing(.data.as_deref()))]
    ArduinoDataMissing { data: Option<PathBuf> },
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

/// The editor setting that holds arduino-cli's path (the detail of
/// [`NextAction::SetArduinoCliPath`]).
pub const ARDUINO_CLI_SETTING: &str = "devkitDps.arduinoCli.path";

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

fn arduino_data_missing(data: Option<&Path>) -> String {
    match data {
        None => format!(
            "no Arduino data folder (Arduino15): arduino-builder reads the DevKit platform {} from one",
            toolchain::PLATFORM_ID
        ),
        Some(d) => format!(
            "the DevKit platform {} is not in the Arduino data folder {}: arduino-builder reads it from \
             {}/packages/AZ3166/hardware/stm32f4/<version> (with platform.txt). Use an Arduino15 folder that has it.",
            toolchain::PLATFORM_ID,
            d.display(),
            d.display()
        ),
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
            BuildError::ArduinoDataMissing { .. } => Some(Input::ArduinoData),
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
                NextStep::with_detail(NextAction::SetArduinoCliPath, ARDUINO_CLI_SETTING),
            ],
            BuildError::ToolNotFound {
                tool: BuildTool::ArduinoBuilder,
                ..
            } => vec![NextStep::with_detail(
                NextAction::InstallToolchain,
                "arduino-builder",
            )],
            BuildError::ArduinoDataMissing { .. } => vec![NextStep::with_detail(
                NextAction::InstallToolchain,
                toolchain::PLATFORM_ID,
            )],
            BuildError::ArduinoCliTooOld { .. } => vec![NextStep::with_detail(
                NextAction::InstallToolchain,
                "arduino-cli",
            )],
            BuildError::PlatformMissing { platform, .. } => vec![NextStep::with_detail(
                NextAction::InstallToolchain,
                platform.clone(),
            )],
            BuildError::Invalid(i) if matches!(i.input, Input::IdScope | Input::GlobalEndpoint) => {
                vec![NextStep::new(NextAction::ConfigureDps)]
            }
            _ => Vec::new(),
        }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The sketch directory (holds `<dir name>.ino`).
    pub sketch_dir: PathBuf,
    /// Where arduino-cli writes objects and outputs; must not be inside the sketch.
    pub build_path: PathBuf,
    /// Explicit arduino-cli path (setting); `None` = `arduino-cli` on PATH.
    pub arduino_cli: Option<PathBuf>,
    /// Which builder (arduino-cli or arduino-builder) and the Arduino15 folder.
    pub builder: BuilderSettings,
    pub dps: DpsSettings,
    /// Compile even when the fingerprint says nothing changed.
    pub force: bool,
}

/// Where a project's build goes unless told otherwise: `<project>/.devkit/build`.
pub fn default_build_dir(project_dir: &Path) -> PathBuf {
    project_dir.join(".devkit").join("build")
}

/// Where a project's sketch is unless told otherwise: `<project>/firmware/DevKitDPS`.
pub fn default_sketch_dir(project_dir: &Path) -> PathBuf {
    project_dir.join("firmware").join("DevKitDPS")
}

/// A build as the adapters receive it (CLI flags, daemon params): [`BuildRequest::options`]
/// applies the defaults and validates the DPS settings, for both.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub project_dir: PathBuf,
    pub sketch: Option<PathBuf>,
    pub build_dir: Option<PathBuf>,
    pub arduino_cli: Option<PathBuf>,
    pub global_endpoint: Option<String>,
    pub id_scope: Option<String>,
    pub registration_id: Option<String>,
    /// `auto` (default), `arduino-cli` or `arduino-builder`.
    pub builder: Option<String>,
    pub arduino_builder: Option<PathBuf>,
    pub arduino_data: Option<PathBuf>,
    pub force: bool,
}

/// Validated build options, and what the user should read about them.
#[derive(Debug, Clone)]
pub struct PlannedBuild {
    pub options: BuildOptions,
    /// Settings warnings (an unusual ID Scope shape, values hard-coded in the sketch that
    /// disagree with the settings compiled in: [`sketch::hard_coded_in`]).
    pub warnings: Vec<String>,
    /// Set when the DPS settings of the previous build were reused.
    pub note: Option<String>,
}

impl BuildRequest {
    pub fn build_dir(&self) -> PathBuf {
        self.build_dir
            .clone()
            .unwrap_or_else(|| default_build_dir(&self.project_dir))
    }

    /// Without any DPS setting, the previous build's settings (its `dps_config.json`) are reused.
    pub fn options(&self) -> Result<PlannedBuild, BuildError> {
        let build_path = self.build_dir();
        let mut warnings = Vec::new();
        let mut note = None;
        let dps = if self.global_endpoint.is_none()
            && self.id_scope.is_none()
            && self.registration_id.is_none()
        {
            let previous = read_state(&build_path.join(DPS_CONFIG_JSON))
                .and_then(|b| serde_json::from_slice::<DpsSettings>(&b).ok());
            let previous = previous.ok_or_else(|| {
                BuildError::invalid(Input::IdScope, "is required (0ne followed by 8 hex digits, from the DPS instance's overview page): it is compiled into the sketch, and there is no previous build to take it from")
            })?;
            note = Some(format!(
                "using the DPS settings of the previous build (ID Scope {}, endpoint {})",
                previous.id_scope, previous.global_endpoint
            ));
            previous
        } else {
            let scope = self.id_scope.as_deref().ok_or_else(|| {
                BuildError::invalid(Input::IdScope, "is required (0ne followed by 8 hex digits)")
            })?;
            let endpoint = self
                .global_endpoint
                .as_deref()
                .unwrap_or(DEFAULT_GLOBAL_ENDPOINT);
            let (dps, w) = DpsSettings::new(endpoint, scope, self.registration_id.as_deref())?;
            warnings = w;
            dps
        };
        let sketch_dir = self
            .sketch
            .clone()
            .unwrap_or_else(|| default_sketch_dir(&self.project_dir));
        // Values hard-coded in the sketch that the settings compiled in contradict.
        warnings.extend(sketch::hard_coded_in(&sketch_dir, &dps));
        let options = BuildOptions {
            sketch_dir,
            build_path,
            arduino_cli: self.arduino_cli.clone(),
            builder: BuilderSettings {
                choice: self.builder.as_deref().unwrap_or("auto").parse()?,
                arduino_builder: self.arduino_builder.clone(),
                arduino_data: self.arduino_data.clone(),
            },
            dps,
            force: self.force,
        };
        Ok(PlannedBuild {
            options,
            warnings,
            note,
        })
    }
}

/// The image a build directory holds: the one rule for finding build outputs (flashing,
/// certificates, the project's identity). arduino-cli writes `<sketch>.ino.bin` and
/// `<sketch>.ino.map`; a `*.ino.bin` is preferred, else the single other `*.bin` (never a
/// `*.bootloader.bin`). The map is the `.bin`'s sibling with the `.map` extension.
pub fn find_outputs(dir: &Path) -> Result<(PathBuf, PathBuf), FindOutputError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FindOutputError::Unreadable {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut bins: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| x == "bin")
                && !p.to_string_lossy().ends_with(".bootloader.bin")
        })
        .collect();
    bins.sort();
    let preferred: Vec<_> = bins
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".ino.bin"))
        .cloned()
        .collect();
    let candidates = if preferred.is_empty() {
        bins
    } else {
        preferred
    };
    match candidates.as_slice() {
        [one] => Ok((one.clone(), one.with_extension("map"))),
        [] => Err(FindOutputError::Invalid(InvalidInput::new(
            Input::BuildDir,
            format!("{} holds no .bin; build the sketch first", dir.display()),
        ))),
        many => Err(FindOutputError::Invalid(InvalidInput::new(
            Input::BuildDir,
            format!(
                "{} holds several images ({}); name the image to use",
                dir.display(),
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))),
    }
}

/// The image of a build directory and its map, both present ([`find_outputs`]): what the
/// identity needs (certificates, the virtual DevKit), for the CLI and the daemon alike.
pub fn find_image_and_map(dir: &Path) -> Result<(PathBuf, PathBuf), FindOutputError> {
    let (bin, map) = find_outputs(dir)?;
    if map.is_file() {
        Ok((bin, map))
    } else {
        Err(FindOutputError::MapMissing { bin, map })
    }
}

/// Why [`find_outputs`] found no image.
#[derive(Debug, thiserror::Error)]
pub enum FindOutputError {
    #[error("cannot read build directory {dir}: {source}")]
    Unreadable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(InvalidInput),
    /// [`find_image_and_map`]: the image has no map next to it.
    #[error("{} has no {} next to it", .bin.display(), .map.display())]
    MapMissing { bin: PathBuf, map: PathBuf },
}

impl DomainError for FindOutputError {
    fn kind(&self) -> ErrorKind {
        match self {
            FindOutputError::Unreadable { source, .. } => crate::error::io_kind(source),
            FindOutputError::Invalid(_) => ErrorKind::InvalidInput,
            FindOutputError::MapMissing { .. } => ErrorKind::NotFound,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            FindOutputError::Invalid(i) => Some(i),
            FindOutputError::Unreadable { .. } | FindOutputError::MapMissing { .. } => None,
        }
    }
    fn input(&self) -> Option<Input> {
        Some(Input::BuildDir)
    }
    fn next_actions(&self) -> Vec<NextStep> {
        vec![NextStep::with_detail(NextAction::Retry, "build")]
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

#[derive(serde::Serialize, serde::Deserialize)]
struct Stamp {
    fingerprint: String,
    bin: PathBuf,
    map: PathBuf,
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

/// The outputs arduino-cli writes for sketch `name` into `build_path`.
pub fn output_paths(build_path: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        build_path.join(format!("{name}.ino.bin")),
        build_path.join(format!("{name}.ino.map")),
    )
}

/// SHA-256 over every input that affects the compiled image. Hidden files and directories are
/// left out (editor swap files, `.git`).
pub fn fingerprint(
    sketch_dir: &Path,
    dps: &DpsSettings,
    toolchain: &Toolchain,
) -> Result<String, BuildError> {
    let mut files = Vec::new();
    collect_files(sketch_dir, sketch_dir, &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    // v2: the prefix maps of `reproducible` (an older image embeds this machine's paths).
    field(b"devkit-build-v2");
    field(FQBN.as_bytes());
    field(
        serde_json::to_string(&toolchain.builder)
            .unwrap_or_default()
            .as_bytes(),
    );
    field(toolchain.arduino_cli_version.as_bytes());
    field(toolchain.platform_version.as_bytes());
    field(&serde_json::to_vec(dps).unwrap_or_default());
    for rel in &files {
        let path = sketch_dir.join(rel);
        let bytes = std::fs::read(&path).map_err(|source| BuildError::Io {
            context: format!("cannot read {}", path.display()),
            source,
        })?;
        field(rel.to_string_lossy().as_bytes());
        field(&bytes);
    }
    Ok(hex::encode(h.finalize()))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    let io = |source| BuildError::Io {
        context: format!("cannot list {}", dir.display()),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ty = entry.file_type().map_err(io)?;
        if ty.is_dir() {
            collect_files(root, &path, out)?;
        } else if ty.is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    Ok(())
}

/// Write `dps_config.h` into the sketch when its content differs (an unchanged header keeps
/// its timestamp, so arduino-cli's own caching is not disturbed).
pub fn write_header(sketch_dir: &Path, dps: &DpsSettings) -> Result<(), BuildError> {
    let path = sketch_dir.join(DPS_CONFIG_HEADER);
    let text = dps.render_header();
    if read_state(&path).as_deref() == Some(text.as_bytes()) {
        return Ok(());
    }
    fsutil::write_atomic(&path, text.as_bytes(), Mode::Public)?;
    Ok(())
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

    if !opts.force {
        if let Some(stamp) = read_stamp(&stamp_path) {
            if stamp.fingerprint == fp
                && stamp.bin == bin
                && stamp.map == map
                && bin.is_file()
                && map.is_file()
            {
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
        }
    }
    // A failed compile must not leave an old stamp that vouches for old outputs.
    match std::fs::remove_file(&stamp_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BuildError::Io {
                context: format!("cannot remove {}", stamp_path.display()),
                source,
            })
        }
    }
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
    let stamp = serde_json::to_vec_pretty(&Stamp {
        fingerprint: fp.clone(),
        bin: bin.clone(),
        map: map.clone(),
    })
    .unwrap_or_default();
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

fn read_stamp(path: &Path) -> Option<Stamp> {
    serde_json::from_slice(&read_state(path)?).ok()
}

/// A small file the build wrote (stamp, `dps_config.json`, the generated header), bounded;
/// missing or unreadable is "nothing to reuse".
fn read_state(path: &Path) -> Option<Vec<u8>> {
    fsutil::read_internal(path, fsutil::limits::STATE_FILE)
        .ok()
        .flatten()
}

/// Run the builder's compile command, streaming every output line as progress and
/// recognising known platform failures (answered with fixes exact for `platform_dir`).
async fn compile(
    mut command: tokio::process::Command,
    platform_dir: Option<&Path>,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Vec<Diagnostic>, BuildError> {
    let program = PathBuf::from(command.as_std().get_program());
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| BuildError::Io {
            context: format!("cannot run {}", program.display()),
            source,
        })?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for reader in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut diagnostics = Vec::new();
    let mut known: Vec<KnownFailure> = Vec::new();
    let mut tail: std::collections::VecDeque<String> = Default::default();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = child.kill().await;
                return Err(BuildError::Cancelled);
            }
            line = rx.recv() => match line {
                Some(line) => {
                    if let Some(d) = diagnostics::parse_line(&line) {
                        diagnostics.push(d);
                    }
                    if let Some(k) = KnownFailure::detect(&line) {
                        if !known.contains(&k) { known.push(k); }
                    }
                    progress.report(line.clone(), None);
                    tail.push_back(line);
                    if tail.len() > 20 { tail.pop_front(); }
                }
                None => break,
            }
        }
    }
    let status = tokio::select! {
        _ = cancel.cancelled() => {
            let _ = child.kill().await;
            return Err(BuildError::Cancelled);
        }
        s = child.wait() => s.map_err(|source| BuildError::Io { context: format!("waiting for {}", program.display()), source })?,
    };
    if !status.success() {
        let output_tail = tail.into_iter().collect::<Vec<_>>().join("\n");
        let known = known
            .into_iter()
            .map(|k| (k, k.explain(platform_dir)))
            .collect();
        return Err(BuildError::Compile {
            diagnostics,
            output_tail,
            known,
        });
    }
    Ok(diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(v: &str) -> Toolchain {
        Toolchain {
            builder: BuilderChoice::ArduinoCli,
            arduino_cli: "/x".into(),
            arduino_cli_version: v.into(),
            platform_version: "1.6.2".into(),
        }
    }

    /// The image needs its map for an identity: one rule (and one error) for CLI and daemon.
    #[test]
    fn image_and_map_are_found_together_or_the_missing_map_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.ino.bin"), b"x").unwrap();
        let e = find_image_and_map(dir.path()).unwrap_err();
        assert!(matches!(e, FindOutputError::MapMissing { .. }), "{e}");
        assert_eq!(
            (e.kind(), e.input()),
            (ErrorKind::NotFound, Some(Input::BuildDir))
        );
        assert!(e.to_string().contains("s.ino.map"), "{e}");
        std::fs::write(dir.path().join("s.ino.map"), b"m").unwrap();
        let (bin, map) = find_image_and_map(dir.path()).unwrap();
        assert!(bin.ends_with("s.ino.bin") && map.ends_with("s.ino.map"));
    }

    #[test]
    fn fingerprint_tracks_sources_settings_and_toolchain_not_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let sk = dir.path().join("S");
        std::fs::create_dir(&sk).unwrap();
        std::fs::write(sk.join("S.ino"), "void setup(){}").unwrap();
        let (dps, _) = DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, "0ne0001A2B3", None).unwrap();
        let a = fingerprint(&sk, &dps, &tc("1.0.0")).unwrap();
        assert_eq!(a, fingerprint(&sk, &dps, &tc("1.0.0")).unwrap());
        assert_ne!(a, fingerprint(&sk, &dps, &tc("1.0.1")).unwrap());
        let (dps2, _) = DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, "0ne0001A2B4", None).unwrap();
        assert_ne!(a, fingerprint(&sk, &dps2, &tc("1.0.0")).unwrap());
        std::fs::write(sk.join(".S.ino.swp"), "junk").unwrap();
        assert_eq!(a, fingerprint(&sk, &dps, &tc("1.0.0")).unwrap());
        std::fs::write(sk.join("S.ino"), "void setup(){ }").unwrap();
        assert_ne!(a, fingerprint(&sk, &dps, &tc("1.0.0")).unwrap());
    }

    #[test]
    fn header_is_rewritten_only_when_different() {
        let dir = tempfile::tempdir().unwrap();
        let (dps, _) = DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, "0ne0001A2B3", None).unwrap();
        write_header(dir.path(), &dps).unwrap();
        let p = dir.path().join(DPS_CONFIG_HEADER);
        let t1 = std::fs::metadata(&p).unwrap().modified().unwrap();
        write_header(dir.path(), &dps).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), t1);
        assert!(std::fs::read_to_string(&p).unwrap().contains("0ne0001A2B3"));
    }

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
