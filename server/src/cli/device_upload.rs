//! `devkit device-upload`: build (when needed), warn on identity drift, flash, report.
//!
//! The CLI owns no serial monitor (monitors run in `devkit monitor` or the daemon), so nothing
//! is paused here; the daemon runs the same task with its monitor registry as the `PortPause`.

use super::build::BuildArgs;
use super::upload::FlashArgs;
use super::{CliError, CliResult};
use std::path::PathBuf;
use tasks::progress::CancellationToken;
use tasks::upload::{DeviceUploadOptions, NoMonitor};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub build: BuildArgs,
    #[command(flatten)]
    pub flash: FlashArgs,
    /// File holding the device's UDS (64 hex digits): with it, an identity drift warning names
    /// the new certificate thumbprint. Never pass the UDS itself on the command line.
    #[arg(long, value_name = "FILE")]
    pub uds_file: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> CliResult {
    let build = args.build.options()?;
    let backend = args.flash.backend()?;
    let uds = match &args.uds_file {
        Some(path) => {
            let input = format!("--uds-file {:?}", path.display().to_string());
            Some(super::read_uds(
                tasks::identity::UdsSource::File(path),
                &input,
                true,
                "",
            )?)
        }
        None => None,
    };
    let opts = DeviceUploadOptions {
        project_root: args.build.project.clone(),
        build,
        backend,
        port: None,
    };
    let progress = super::build::progress_printer();
    let report = super::runtime()
        .block_on(tasks::upload::device_upload(
            &opts,
            uds.as_ref(),
            &NoMonitor,
            &progress,
            &CancellationToken::new(),
        ))
        .map_err(CliError::from)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
        );
    } else {
        println!(
            "{} {} and flashed it with {}",
            if report.build.skipped {
                "Reused"
            } else {
                "Built"
            },
            report.build.bin.display(),
            report.backend
        );
        if let Some(f) = &report.fwid {
            println!("FWID: {f}");
        }
        if let Some(d) = &report.drift {
            println!("IDENTITY CHANGED: {}", d.message);
            // The drift's next actions (regenerate, enroll) as the commands for this build.
            println!(
                "next: devkit generate-cert --bin {} --map {} --registration-id {} --uds-file <UDS file>; then devkit enroll",
                report.build.bin.display(),
                report.build.map.display(),
                d.registration_id
            );
        }
    }
    Ok(())
}
