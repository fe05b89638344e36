//! `devkit set-wifi`: store the Wi-Fi SSID and password on a DevKit in configuration mode.
//! Flags -> [`SetWifiRequest`] -> plan -> run -> report. The password comes from a file or
//! stdin, never from the command line, and is never shown.

use super::render::{print_json, print_next};
use super::CliResult;
use std::path::PathBuf;
use std::time::Duration;
use tasks::console::configure::SetWifiRequest;
use tasks::fsutil::SecretSource;
use tasks::progress::CancellationToken;

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
    /// Serial speed (the JSON name is `baudRate`).
    #[arg(long, default_value_t = tasks::console::DEFAULT_BAUD)]
    pub baud: u32,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> CliResult {
    let password = match &args.password_file {
        Some(path) => super::read_secret_text(
            SecretSource::File(path),
            &format!("--wifi-password-file {:?}", path.display().to_string()),
        )?,
        None => super::read_secret_text(SecretSource::Stdin, "--wifi-password-stdin")?,
    };
    let plan = SetWifiRequest {
        port: args.port.display().to_string(),
        wifi_ssid: args.ssid.clone(),
        wifi_password: Some(password),
        baud: Some(args.baud),
        timeout: Some(Duration::from_secs(args.timeout)),
    }
    .plan()?;
    let r = plan.run_on_port(&super::build::progress_printer(), &CancellationToken::new())?;
    if args.json {
        return print_json(&r);
    }
    println!(
        "Wi-Fi settings stored on the DevKit at {} (SSID {:?}{}; device confirmed both)",
        r.port,
        r.wifi_ssid,
        if r.password_set { "" } else { ", open network" }
    );
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    print_next(&r.next_actions);
    Ok(())
}
