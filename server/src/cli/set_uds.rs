//! `devkit set-uds`: push a Unique Device Secret to a DevKit in configuration mode.
//!
//! The UDS never appears on the command line, in output or in logs: it is read from a file
//! (or generated and saved, mode 0600, before it is sent), validated before anything is sent
//! (the firmware stores a bad one anyway), and confirmed by the device's reply.

use super::{CliError, CliResult};
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;
use tasks::console::{Console, ConsoleError};
use tasks::identity::Uds;

#[derive(clap::Args)]
pub struct Args {
    /// Serial port of the DevKit (see `devkit ports`).
    #[arg(long)]
    pub port: PathBuf,
    /// File holding the UDS: 64 hex digits.
    #[arg(long, conflicts_with = "generate", required_unless_present = "generate")]
    pub uds_file: Option<PathBuf>,
    /// Generate a new UDS from the OS's cryptographic random source.
    #[arg(long)]
    pub generate: bool,
    /// With --generate: save the new UDS to this file (mode 0600) before sending it.
    #[arg(long, requires = "generate")]
    pub save_to: Option<PathBuf>,
    /// Seconds to wait for configuration mode (hold A, press reset) and for the reply.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Accept the UDS published in the original tutorial (never do this for a real device).
    #[arg(long, hide = true)]
    pub allow_published_sample: bool,
    #[arg(long, default_value_t = tasks::console::DEFAULT_BAUD)]
    pub baud: u32,
}

/// Map a console error to the exit code (2 for input refused before sending).
pub fn console_error(e: ConsoleError) -> CliError {
    CliError::from(e)
}

pub fn run(args: Args) -> CliResult {
    let uds = match &args.uds_file {
        Some(path) => {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| CliError::invalid(format!("cannot read --uds-file {}: {e}", path.display())))?,
            );
            let uds = Uds::parse(&text).map_err(|e| CliError::invalid(format!("--uds-file {}: {e}", path.display())))?;
            if uds.is_published_sample() && !args.allow_published_sample {
                return Err(CliError::invalid(format!(
                    "--uds-file {}: this is the UDS published in the original tutorial; anyone can compute the device's keys from it. Generate one with --generate",
                    path.display()
                )));
            }
            uds
        }
        None => {
            let uds = Uds::generate();
            match &args.save_to {
                Some(path) => {
                    if path.exists() {
                        return Err(CliError::invalid(format!("--save-to {}: the file exists; refusing to overwrite a UDS (another device's secret?)", path.display())));
                    }
                    let mut line = zeroize::Zeroizing::new(uds.to_hex().as_bytes().to_vec());
                    line.push(b'\n');
                    tasks::fsutil::write_atomic(path, &line, tasks::fsutil::Mode::Private).with_context(|| format!("saving the UDS to {}", path.display()))?;
                    eprintln!("saved the new UDS to {} (mode 0600); keep it secret, it is this device's root secret", path.display());
                }
                None => eprintln!("warning: the generated UDS is not saved (no --save-to): you will not be able to compute this device's certificate"),
            }
            uds
        }
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut console = Console::open(&args.port, args.baud).map_err(console_error)?;
    console.enter_config_mode(timeout, &mut |g| eprintln!("{g}; waiting up to {} s...", timeout.as_secs())).map_err(console_error)?;
    let reply = console.set_uds(&uds, timeout).map_err(console_error)?;
    println!("UDS stored on the DevKit at {} (device confirmed: {})", args.port.display(), reply.text.trim());
    Ok(())
}
