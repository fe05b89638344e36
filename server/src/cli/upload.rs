//! `devkit upload`: flash a build (probe-rs in process, OpenOCD, or the virtual DevKit).

use super::{CliError, CliResult};
use std::path::PathBuf;
use tasks::flash::{self, Backend, FlashError, FlashImage};
use tasks::progress::CancellationToken;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendArg {
    /// probe-rs in process, through the DevKit's ST-LINK/V2-1.
    ProbeRs,
    /// External OpenOCD with the vendor's command.
    Openocd,
    /// The virtual DevKit whose state directory is --sim-state.
    Sim,
}

/// Where and how to flash. Shared with `device-upload`.
#[derive(clap::Args, Debug)]
pub struct FlashArgs {
    /// Flashing backend.
    #[arg(long, value_enum, default_value = "probe-rs")]
    pub backend: BackendArg,
    /// Virtual DevKit state directory (with --backend sim).
    #[arg(long, value_name = "DIR")]
    pub sim_state: Option<PathBuf>,
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
    pub fn backend(&self) -> Result<Backend, CliError> {
        let only = |flag: &str, set: bool, backend: &str| {
            if set {
                Err(CliError::invalid(format!("{flag} is only used with --backend {backend}")))
            } else {
                Ok(())
            }
        };
        match self.backend {
            BackendArg::ProbeRs => {
                only("--sim-state", self.sim_state.is_some(), "sim")?;
                only("--trusted-ca", self.trusted_ca.is_some(), "sim")?;
                only("--openocd", self.openocd.is_some(), "openocd")?;
                Ok(Backend::ProbeRs { probe: self.probe.clone() })
            }
            BackendArg::Openocd => {
                only("--sim-state", self.sim_state.is_some(), "sim")?;
                only("--trusted-ca", self.trusted_ca.is_some(), "sim")?;
                only("--probe", self.probe.is_some(), "probe-rs")?;
                Ok(Backend::OpenOcd { openocd: self.openocd.clone() })
            }
            BackendArg::Sim => {
                only("--probe", self.probe.is_some(), "probe-rs")?;
                only("--openocd", self.openocd.is_some(), "openocd")?;
                let state_dir = self.sim_state.clone().ok_or_else(|| CliError::invalid("--backend sim needs --sim-state DIR (the virtual DevKit's state directory, as given to `devkit sim`)"))?;
                let trusted_ca_pem = match &self.trusted_ca {
                    Some(p) => Some(super::read_text_file(p, &format!("--trusted-ca {:?}", p.display().to_string()), tasks::fsutil::limits::CERT_FILE)?),
                    None => None,
                };
                Ok(Backend::Sim { state_dir, trusted_ca_pem })
            }
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
}

fn parse_address(s: &str) -> Result<u32, String> {
    let t = s.trim_start_matches("0x").trim_start_matches("0X");
    u32::from_str_radix(t, 16).map_err(|e| format!("{s:?} is not a hex address: {e}"))
}

pub fn classify(e: FlashError) -> CliError {
    let invalid = e.is_invalid_input();
    super::build::classify(e, invalid)
}

pub fn run(args: Args) -> CliResult {
    let backend = args.flash.backend()?;
    let mut image = match (&args.bin, &args.build_dir) {
        (Some(bin), _) => FlashImage::load(bin).map_err(|e| CliError::invalid(format!("invalid --bin: {e}")))?,
        (None, dir) => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from(".devkit/build"));
            FlashImage::from_build_dir(&dir).map_err(|e| match e {
                FlashError::Read { .. } => CliError::invalid(format!("invalid --build-dir: {e}")),
                e => classify(e),
            })?
        }
    };
    image.address = args.address;
    let progress = super::build::progress_printer();
    super::runtime()
        .block_on(flash::flash(&image, &backend, &progress, &CancellationToken::new()))
        .map_err(classify)?;
    println!("Flashed {} ({} bytes) with {}", image.bin_path.display(), image.bin.len(), backend.name());
    Ok(())
}

