//! `devkit build`: build the sketch with arduino-cli (skipped when nothing changed).

use super::{CliError, CliResult};
use std::path::PathBuf;
use tasks::build::{BuildError, BuildOptions, BuilderSettings, DpsSettings, DEFAULT_GLOBAL_ENDPOINT, DPS_CONFIG_JSON};
use tasks::progress::{CancellationToken, Progress, ProgressEvent};

/// Where the sketch and build live, and what is compiled in. Shared with `device-upload`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Project root (holds `.devkit/`).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Sketch directory [default: <project>/firmware/DevKitDPS].
    #[arg(long, value_name = "DIR")]
    pub sketch: Option<PathBuf>,
    /// arduino-cli build path [default: <project>/.devkit/build].
    #[arg(long, value_name = "DIR")]
    pub build_path: Option<PathBuf>,
    /// arduino-cli to use [default: `arduino-cli` on PATH].
    #[arg(long, env = "DEVKIT_ARDUINO_CLI", value_name = "FILE")]
    pub arduino_cli: Option<PathBuf>,
    /// Which program builds: `arduino-cli`, `arduino-builder`, or `auto` (arduino-cli when
    /// found, else arduino-builder).
    #[arg(long, env = "DEVKIT_BUILDER", value_name = "BUILDER", default_value = "auto")]
    pub builder: String,
    /// arduino-builder to use [default: `arduino-builder` on PATH].
    #[arg(long, env = "DEVKIT_ARDUINO_BUILDER", value_name = "FILE")]
    pub arduino_builder: Option<PathBuf>,
    /// The Arduino15 folder holding packages/AZ3166/hardware/stm32f4/<version> (arduino-cli's
    /// data directory) [default: ~/.arduino15, ~/Library/Arduino15 or %LOCALAPPDATA%\Arduino15].
    #[arg(long, env = "DEVKIT_ARDUINO_DATA", value_name = "DIR")]
    pub arduino_data: Option<PathBuf>,
    /// DPS Global Device Endpoint compiled into the sketch [default: global.azure-devices-provisioning.net].
    #[arg(long, env = "DEVKIT_DPS_GLOBAL_ENDPOINT", value_name = "HOST[:PORT]")]
    pub global_endpoint: Option<String>,
    /// DPS ID Scope compiled into the sketch (0ne + 8 hex digits). When no DPS flag is given,
    /// the settings of the previous build in the build path are reused.
    #[arg(long, env = "DEVKIT_DPS_ID_SCOPE", value_name = "SCOPE")]
    pub id_scope: Option<String>,
    /// Registration ID compiled into the sketch [default: the device's az-<mac>v<x>v<y>v<z>].
    #[arg(long, env = "DEVKIT_DPS_REGISTRATION_ID", value_name = "ID")]
    pub registration_id: Option<String>,
    /// Compile even when nothing changed.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Print the result (or the diagnostics of a failed compile) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl BuildArgs {
    pub fn build_path(&self) -> PathBuf {
        self.build_path.clone().unwrap_or_else(|| self.project.join(".devkit").join("build"))
    }

    /// Validate into build options; settings warnings go to stderr.
    pub fn options(&self) -> Result<BuildOptions, CliError> {
        let build_path = self.build_path();
        let dps = if self.global_endpoint.is_none() && self.id_scope.is_none() && self.registration_id.is_none() {
            let previous = std::fs::read(build_path.join(DPS_CONFIG_JSON)).ok().and_then(|b| serde_json::from_slice::<DpsSettings>(&b).ok());
            match previous {
                Some(p) => {
                    eprintln!("note: using the DPS settings of the previous build (ID Scope {}, endpoint {})", p.id_scope, p.global_endpoint);
                    p
                }
                None => return Err(CliError::invalid("missing --id-scope: the DPS ID Scope (0ne followed by 8 hex digits, from the DPS instance's overview page) must be compiled into the sketch; pass --id-scope or set DEVKIT_DPS_ID_SCOPE")),
            }
        } else {
            let scope = self.id_scope.as_deref().ok_or_else(|| CliError::invalid("missing --id-scope (0ne followed by 8 hex digits)"))?;
            let endpoint = self.global_endpoint.as_deref().unwrap_or(DEFAULT_GLOBAL_ENDPOINT);
            let (dps, warnings) = DpsSettings::new(endpoint, scope, self.registration_id.as_deref()).map_err(CliError::invalid)?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            dps
        };
        Ok(BuildOptions {
            sketch_dir: self.sketch.clone().unwrap_or_else(|| self.project.join("firmware").join("DevKitDPS")),
            build_path,
            arduino_cli: self.arduino_cli.clone(),
            builder: BuilderSettings {
                choice: self.builder.parse().map_err(|e: BuildError| CliError::invalid(format!("invalid --builder: {e}")))?,
                arduino_builder: self.arduino_builder.clone(),
                arduino_data: self.arduino_data.clone(),
            },
            dps,
            force: self.force,
        })
    }
}

/// Progress as lines on stderr (stdout is kept for results).
pub fn progress_printer() -> Progress {
    let last = std::sync::Mutex::new((String::new(), None::<u32>));
    Progress::new(move |e| match e {
        ProgressEvent::Begin { title } => eprintln!("==> {title}"),
        ProgressEvent::Report { message, percentage } => {
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            // Percentages: one line per 10% step of a step, not one per sector.
            let step = percentage.map(|p| p / 10);
            if last.0 == message && last.1 == step {
                return;
            }
            match percentage {
                Some(p) => eprintln!("    {message} {p}%"),
                None => eprintln!("    {message}"),
            }
            *last = (message, step);
        }
        ProgressEvent::End { message } => eprintln!("    {message}"),
        ProgressEvent::Warning { message } => eprintln!("warning: {message}"),
    })
}

/// Exit 2 for the caller's input, 1 for the rest.
pub fn classify<E: std::error::Error + Send + Sync + 'static>(e: E, invalid_input: bool) -> CliError {
    if invalid_input {
        CliError::Invalid(e.into())
    } else {
        CliError::Failed(e.into())
    }
}

pub fn run(args: Args) -> CliResult {
    let opts = args.build.options()?;
    let result = super::runtime().block_on(tasks::build::build(&opts, &progress_printer(), &CancellationToken::new()));
    match result {
        Ok(out) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?);
            } else {
                println!("{} {}", if out.skipped { "Up to date:" } else { "Built" }, out.bin.display());
                println!("map: {}", out.map.display());
            }
            Ok(())
        }
        Err(e) => {
            if let (true, BuildError::Compile { diagnostics, known, .. }) = (args.json, &e) {
                let known: Vec<_> = known.iter().map(|(kind, fix)| serde_json::json!({ "kind": kind, "fix": fix })).collect();
                let v = serde_json::json!({ "error": e.to_string(), "diagnostics": diagnostics, "knownFailures": known });
                println!("{}", serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?);
            }
            let invalid = e.is_invalid_input();
            Err(classify(e, invalid))
        }
    }
}
