//! `devkit build`: build the sketch with arduino-cli (skipped when nothing changed).

use super::{CliError, CliResult};
use std::path::PathBuf;
use tasks::build::{BuildError, BuildOptions, BuildRequest};
use tasks::progress::{CancellationToken, Progress, ProgressEvent};

/// Where the sketch and build live, and what is compiled in. Shared with `device-upload`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Project directory (holds `.devkit/`).
    #[arg(
        long = "project-dir",
        alias = "project",
        value_name = "DIR",
        default_value = "."
    )]
    pub project: PathBuf,
    /// Sketch directory [default: <project>/firmware/DevKitDPS].
    #[arg(long, value_name = "DIR")]
    pub sketch: Option<PathBuf>,
    /// Build directory (arduino-cli's build path) [default: <project>/.devkit/build].
    #[arg(long = "build-dir", alias = "build-path", value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
    /// arduino-cli to use [default: `arduino-cli` on PATH].
    #[arg(long, env = "DEVKIT_ARDUINO_CLI", value_name = "FILE")]
    pub arduino_cli: Option<PathBuf>,
    /// Which program builds: `arduino-cli`, `arduino-builder`, or `auto` (the first complete
    /// route: arduino-cli with the platform, else arduino-builder; `devkit doctor` says which).
    #[arg(
        long,
        env = "DEVKIT_BUILDER",
        value_name = "BUILDER",
        default_value = "auto"
    )]
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
    // `--force`: the old name, kept as a hidden alias (`force` meant two things: this, and
    // accepting the sample UDS).
    #[arg(long = "rebuild", alias = "force")]
    pub rebuild: bool,
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
    pub fn request(&self) -> BuildRequest {
        BuildRequest {
            project_dir: self.project.clone(),
            sketch: self.sketch.clone(),
            build_dir: self.build_dir.clone(),
            arduino_cli: self.arduino_cli.clone(),
            global_endpoint: self.global_endpoint.clone(),
            id_scope: self.id_scope.clone(),
            registration_id: self.registration_id.clone(),
            builder: Some(self.builder.clone()),
            arduino_builder: self.arduino_builder.clone(),
            arduino_data: self.arduino_data.clone(),
            force: self.rebuild,
        }
    }

    /// Validate into build options; settings notes and warnings go to stderr.
    pub fn options(&self) -> Result<BuildOptions, CliError> {
        let planned = self.request().options()?;
        if let Some(note) = &planned.note {
            eprintln!("note: {note}");
        }
        for w in &planned.warnings {
            eprintln!("warning: {w}");
        }
        Ok(planned.options)
    }
}

/// Progress as lines on stderr (stdout is kept for results).
pub fn progress_printer() -> Progress {
    let last = std::sync::Mutex::new((String::new(), None::<u32>));
    Progress::new(move |e| match e {
        ProgressEvent::Begin { title } => eprintln!("==> {title}"),
        ProgressEvent::Report {
            message,
            percentage,
        } => {
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

pub fn run(args: Args) -> CliResult {
    let opts = args.build.options()?;
    let result = super::runtime().block_on(tasks::build::build(
        &opts,
        &progress_printer(),
        &CancellationToken::new(),
    ));
    match result {
        Ok(out) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?
                );
            } else {
                println!(
                    "{} {}",
                    if out.skipped { "Up to date:" } else { "Built" },
                    out.bin.display()
                );
                println!("map: {}", out.map.display());
            }
            Ok(())
        }
        Err(e) => {
            // A failed compile: its diagnostics next to the JSON error object.
            let output = match &e {
                BuildError::Compile {
                    diagnostics, known, ..
                } => {
                    let known: Vec<_> = known
                        .iter()
                        .map(|(kind, fix)| serde_json::json!({ "kind": kind, "fix": fix }))
                        .collect();
                    Some((serde_json::json!(diagnostics), serde_json::json!(known)))
                }
                _ => None,
            };
            let err = CliError::from(e);
            Err(match output {
                Some((diagnostics, known)) => err
                    .with_output("diagnostics", diagnostics)
                    .with_output("knownFailures", known),
                None => err,
            })
        }
    }
}
