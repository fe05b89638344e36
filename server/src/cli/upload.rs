//! `devkit upload`: flash a build (probe-rs in process, OpenOCD, or the virtual DevKit).
//! Flags -> [`UploadRequest`] -> plan -> `tasks::upload` run -> report (the daemon's
//! `devkit/upload` runs the same).

use super::render::print_json;
use super::{CliError, CliResult};
use std::path::{Path, PathBuf};
use tasks::flash::{BackendKind, BackendRequest};
use tasks::progress::CancellationToken;
use tasks::upload::{NoMonitor, UploadRequest};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendArg {
    /// probe-rs in process, through the DevKit's ST-LINK/V2-1.
    ProbeRs,
    /// External OpenOCD with the vendor's command.
    Openocd,
    /// The virtual DevKit whose state directory is --sim-dir.
    Sim,
}

/// Where and how to flash. Shared with `device-upload`.
#[derive(clap::Args, Debug)]
pub struct FlashArgs {
    /// Flashing backend.
    #[arg(long, value_enum, default_value = "probe-rs")]
    pub backend: BackendArg,
    /// Virtual DevKit state directory (with --backend sim).
    #[arg(long = "sim-dir", alias = "sim-state", value_name = "DIR")]
    pub sim_dir: Option<PathBuf>,
    /// PEM of the CA the virtual DevKit trusts for DPS (the DPS emulator's), with --backend sim.
    #[arg(long, value_name = "FILE")]
    pub trusted_ca: Option<PathBuf>,
    /// Probe to use, VID:PID[:SERIAL] in hex (with --backend probe-rs) [default: 0483:374b].
    #[arg(long, value_name = "SELECTOR")]
    pub probe: Option<String>,
    /// openocd executable (with --backend openocd) [default: `openocd` on PATH].
    #[arg(long, value_name = "FILE")]
    pub openocd: Option<PathBuf>,
}

impl FlashArgs {
    pub fn request(&self) -> BackendRequest {
        BackendRequest {
            kind: match self.backend {
                BackendArg::ProbeRs => BackendKind::ProbeRs,
                BackendArg::Openocd => BackendKind::OpenOcd,
                BackendArg::Sim => BackendKind::Sim,
            },
            probe: self.probe.clone(),
            openocd: self.openocd.clone(),
            sim_dir: self.sim_dir.clone(),
            trusted_ca: self.trusted_ca.clone(),
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The image to flash (its .map next to it is used by --backend sim).
    #[arg(long, value_name = "FILE", conflicts_with = "build_dir")]
    pub bin: Option<PathBuf>,
    /// A build directory holding <sketch>.ino.bin + .map [default: ./.devkit/build].
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
    #[command(flatten)]
    pub flash: FlashArgs,
    /// Flash address in hex; the bootloader below 0x0800C000 is never touched.
    #[arg(long, value_name = "HEX", value_parser = parse_address, default_value = "0x0800C000")]
    pub address: u32,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_address(s: &str) -> Result<u32, String> {
    let t = s.trim_start_matches("0x").trim_start_matches("0X");
    u32::from_str_radix(t, 16).map_err(|e| format!("{s:?} is not a hex address: {e}"))
}

pub fn run(args: Args) -> CliResult {
    // The CLI's default image location: the build directory of the current project.
    let default_dir = tasks::build::default_build_dir(Path::new("."));
    let plan = UploadRequest {
        bin: args.bin.clone(),
        build_dir: match (&args.bin, &args.build_dir) {
            (None, None) => Some(default_dir),
            (_, dir) => dir.clone(),
        },
        flash: args.flash.request(),
        address: Some(args.address),
        // The CLI owns no monitor: monitors run in other processes.
        port: None,
    }
    .plan()?;
    let progress = super::build::progress_printer();
    let report = super::runtime()
        .block_on(plan.run(&NoMonitor, &progress, &CancellationToken::new()))
        .map_err(CliError::from)?;
    if args.json {
        return print_json(&report);
    }
    println!(
        "Flashed {} ({} bytes) with {}",
        report.bin.display(),
        report.bytes,
        report.backend
    );
    Ok(())
}
