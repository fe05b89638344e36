//! `devkit set-wifi`: store the Wi-Fi SSID and password on a DevKit in configuration mode.
//! The password comes from a file or stdin, never from the command line, and is never shown.

use super::set_uds::console_error;
use super::CliResult;
use std::path::PathBuf;
use std::time::Duration;
use tasks::console::Console;
use tasks::fsutil::SecretSource;

#[derive(clap::Args)]
pub struct Args {
    /// Serial port of the DevKit (see `devkit ports`).
    #[arg(long)]
    pub port: PathBuf,
    /// Network name (spaces and quotes are fine; at most 31 bytes).
    #[arg(long = "wifi-ssid", alias = "ssid", value_name = "SSID")]
    pub ssid: String,
    /// File holding the password (one trailing line ending ignored; empty = open network; at most 4 KiB).
    #[arg(
        long = "wifi-password-file",
        alias = "password-file",
        value_name = "FILE",
        conflicts_with = "password_stdin",
        required_unless_present = "password_stdin"
    )]
    pub password_file: Option<PathBuf>,
    /// Read the password from the first line of standard input.
    #[arg(long = "wifi-password-stdin", alias = "password-stdin")]
    pub password_stdin: bool,
    /// Seconds to wait for configuration mode (hold A, press reset) and for each reply.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    #[arg(long, default_value_t = tasks::console::DEFAULT_BAUD)]
    pub baud: u32,
}

pub fn run(args: Args) -> CliResult {
    let password = match &args.password_file {
        Some(path) => super::read_secret_text(
            SecretSource::File(path),
            &format!("--wifi-password-file {:?}", path.display().to_string()),
        )?,
        None => super::read_secret_text(SecretSource::Stdin, "--wifi-password-stdin")?,
    };
    // Validate both values before touching the port.
    tasks::console::wifi_ssid_command(&args.ssid).map_err(console_error)?;
    tasks::console::wifi_password_command(&password).map_err(console_error)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut console = Console::open(&args.port, args.baud).map_err(console_error)?;
    console
        .enter_config_mode(timeout, &mut |g| {
            eprintln!("{g}; waiting up to {} s...", timeout.as_secs())
        })
        .map_err(console_error)?;
    console
        .set_wifi(&args.ssid, &password, timeout)
        .map_err(console_error)?;
    println!(
        "Wi-Fi settings stored on the DevKit at {} (SSID {:?}; device confirmed both)",
        args.port.display(),
        args.ssid
    );
    Ok(())
}
