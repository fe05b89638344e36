//! A build as the adapters receive it ([`BuildRequest`]) and the validated options it plans
//! ([`BuildOptions`], [`PlannedBuild`]): the defaults and the DPS settings decided once for
//! the CLI and the daemon.

use super::{read_state, sketch, BuildError, BuilderSettings, DpsSettings};
use super::{DEFAULT_GLOBAL_ENDPOINT, DPS_CONFIG_JSON};
use crate::error::Input;
use std::path::{Path, PathBuf};

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
