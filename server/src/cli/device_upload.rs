//! `devkit device-upload`: build (when needed), warn on identity drift, flash, report.
//! Flags -> [`DeviceUploadRequest`] -> plan -> run -> report (`--json`: the daemon's
//! `devkit/deviceUpload` result).
//!
//! The CLI owns no serial monitor (monitors run in `devkit monitor` or the daemon), so nothing
//! is paused here; the daemon runs the same task with its monitor registry as the `PortPause`.

use super::build::BuildArgs;
use super::render::print_json;
use super::upload::FlashArgs;
use super::{CliError, CliResult};
use std::path::PathBuf;
use tasks::progress::CancellationToken;
use tasks::upload::{DeviceUploadRequest, NoMonitor};

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
    let uds = match &args.uds_file {
        Some(path) => {
            let input = format!("--uds-file {:?}", path.display().to_string());
            // Only for the drift warning's thumbprint: the sample is accepted here.
            Some(super::read_uds(
                tasks::identity::UdsSource::File(path),
                &input,
                true,
                "",
            )?)
        }
        None => None,
    };
    let plan = DeviceUploadRequest {
        build: args.build.request(),
        flash: args.flash.request(),
        port: None,
        uds,
    }
    .plan()?;
    // Planning warnings are printed now (before the build), and kept in the report for --json.
    if let Some(note) = &plan.note {
        eprintln!("note: {note}");
    }
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let progress = super::build::progress_printer();
    let report = super::runtime()
        .block_on(plan.run(&NoMonitor, &progress, &CancellationToken::new()))
        .map_err(CliError::from)?;
    if args.json {
        return print_json(&report);
    }
    println!(
        "{} {} and flashed it with {}",
        if report.skipped_build {
            "Reused"
        } else {
            "Built"
        },
        report.bin.display(),
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
            report.bin.display(),
            report.map.display(),
            d.registration_id
        );
    }
    Ok(())
}
