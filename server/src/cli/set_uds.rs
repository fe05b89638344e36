//! `devkit set-uds`: push a Unique Device Secret to a DevKit in configuration mode.
//!
//! The UDS never appears on the command line, in output or in logs: it is read from a file
//! (or generated and saved, mode 0600, before it is sent), validated before anything is sent
//! (the firmware stores a bad one anyway), and confirmed by the device's reply.

use super::{CliError, CliResult};
use std::path::PathBuf;
use std::time::Duration;
use tasks::console::{Console, ConsoleError};
use tasks::identity::uds::{check_new_uds_file, save_new_uds};
use tasks::identity::{Uds, UdsSource};

#[derive(clap::Args)]
pub struct Args {
    /// Serial port of the DevKit (see `devkit ports`).
    #[arg(long)]
    pub port: PathBuf,
    /// File holding the UDS: 64 hex digits.
    #[arg(
        long,
        conflicts_with = "generate",
        required_unless_present = "generate"
    )]
    pub uds_file: Option<PathBuf>,
    /// Generate a new UDS from the OS's cryptographic random source.
    #[arg(long)]
    pub generate: bool,
    /// With --generate: save the new UDS to this file (mode 0600) before sending it.
    // `--save-to`: the old name, kept as a hidden alias (`provision` and the daemon say saveUdsTo).
    #[arg(
        long = "save-uds-to",
        alias = "save-to",
        value_name = "FILE",
        requires = "generate"
    )]
    pub save_uds_to: Option<PathBuf>,
    /// Seconds to wait for configuration mode (hold A, press reset) and for the reply.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Accept the UDS published in the original tutorial (never do this for a real device).
    // `--allow-published-sample`: the old name (generate-cert and the daemon say allow-sample-uds).
    #[arg(
        long = "allow-sample-uds",
        alias = "allow-published-sample",
        hide = true
    )]
    pub allow_sample_uds: bool,
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
            let input = format!("--uds-file {:?}", path.display().to_string());
            super::read_uds(
                UdsSource::File(path),
                &input,
                args.allow_sample_uds,
                "generate one with --generate",
            )?
        }
        None => {
            match &args.save_uds_to {
                // Refused before the port is touched; written only once the device listens.
                Some(path) => check_new_uds_file(path)?,
                None => eprintln!("warning: the generated UDS is not saved (no --save-uds-to): you will not be able to compute this device's certificate"),
            }
            Uds::generate()
        }
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut console = Console::open(&args.port, args.baud).map_err(console_error)?;
    console
        .enter_config_mode(timeout, &mut |g| {
            eprintln!("{g}; waiting up to {} s...", timeout.as_secs())
        })
        .map_err(console_error)?;
    if let (None, Some(path)) = (&args.uds_file, &args.save_uds_to) {
        // Written (atomically, 0600, never over an existing file) before it is sent, and only
        // once the device is in configuration mode: a UDS the device may have stored is never
        // lost, and a wrong port leaves no file behind that would refuse the retry.
        save_new_uds(&uds, path)?;
        eprintln!(
            "saved the new UDS to {} (mode 0600); keep it secret, it is this device's root secret",
            path.display()
        );
    }
    let reply = console.set_uds(&uds, timeout).map_err(|e| {
        let e = console_error(e);
        match (&args.save_uds_to, e) {
            // Sent, but not confirmed: the device may hold it, and the file keeps it.
            (Some(path), CliError::Failed(e)) => {
                CliError::Failed(e.context(format!("the UDS sent is kept in {}", path.display())))
            }
            (_, e) => e,
        }
    })?;
    println!(
        "UDS stored on the DevKit at {} (device confirmed: {})",
        args.port.display(),
        reply.text.trim()
    );
    Ok(())
}
