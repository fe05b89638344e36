//! `devkit`: the DevKit DPS command line and daemon.
//!
//! A thin adapter over the `tasks` crate: every subcommand parses its arguments, calls one
//! task, and renders the result. `devkit lsp` runs the same tasks behind a language server on
//! stdio for the VS Code extension.
//!
//! Exit codes: 0 success, 2 invalid input (the message names the input and what is allowed),
//! 1 any other failure.

mod cli;
mod lsp;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "devkit", version, about = "MXChip AZ3166 DevKit: zero-touch Azure DPS provisioning with a DICE/RIoT X.509 identity")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Compute the device's alias certificate from the build's .bin + .map and its UDS.
    GenerateCert(cli::generate_cert::Args),
    /// Read a RIoT alias or DeviceID certificate leniently; compare two with --against.
    InspectCert(cli::inspect_cert::Args),
    /// List serial ports, DevKits (USB 0483:374B) marked and first.
    Ports(cli::ports::Args),
    /// Run a virtual DevKit on a pseudo-terminal.
    Sim(cli::sim::Args),
    /// Push a Unique Device Secret to a DevKit in configuration mode.
    SetUds(cli::set_uds::Args),
    /// Store Wi-Fi settings on a DevKit in configuration mode.
    SetWifi(cli::set_wifi::Args),
    /// Watch a DevKit's serial output (raw text or registration events).
    Monitor(cli::monitor::Args),
    /// Turn a captured serial log into registration events.
    Logs(cli::logs::Args),
    /// Build the sketch with arduino-cli.
    Build(cli::build::Args),
    /// Flash a build to the DevKit (probe-rs, OpenOCD or the virtual DevKit).
    Upload(cli::upload::Args),
    /// Build (when needed), pause the monitor, flash, resume: the `device-upload` task.
    DeviceUpload(cli::device_upload::Args),
    /// Run a local DPS emulator (service and device APIs over TLS).
    DpsEmulator(cli::dps_emulator::Args),
    /// Create or update the DPS individual enrollment for the device's alias certificate.
    Enroll(cli::enroll::Args),
    /// Provision end to end: UDS, Wi-Fi, upload, certificate, enrollment, registration.
    Provision(cli::provision::Args),
    /// Run the language-server daemon on stdio (used by the VS Code extension).
    Lsp(cli::lsp::Args),
    /// Check this machine's setup: arduino-cli, the AZ3166 platform, a probe, the udev rule.
    Doctor(cli::doctor::Args),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_on_usage_error(e),
    };
    let result = match cli.command {
        Command::GenerateCert(a) => cli::generate_cert::run(a),
        Command::InspectCert(a) => cli::inspect_cert::run(a),
        Command::Ports(a) => cli::ports::run(a),
        Command::Sim(a) => cli::sim::run(a),
        Command::SetUds(a) => cli::set_uds::run(a),
        Command::SetWifi(a) => cli::set_wifi::run(a),
        Command::Monitor(a) => cli::monitor::run(a),
        Command::Logs(a) => cli::logs::run(a),
        Command::Build(a) => cli::build::run(a),
        Command::Upload(a) => cli::upload::run(a),
        Command::DeviceUpload(a) => cli::device_upload::run(a),
        Command::DpsEmulator(a) => cli::dps_emulator::run(a),
        Command::Enroll(a) => cli::enroll::run(a),
        Command::Provision(a) => cli::provision::run(a),
        Command::Lsp(a) => cli::lsp::run(a),
        Command::Doctor(a) => cli::doctor::run(a),
    };
    if let Err(e) = result {
        std::process::exit(e.report());
    }
}

/// Print clap's usage error with anything that looks like a secret redacted, then exit.
///
/// Clap quotes unexpected arguments back ("unexpected argument '<value>' found"): a user who
/// types the UDS or a connection string on the command line must not see it echoed into a
/// terminal log or CI output.
fn exit_on_usage_error(e: clap::Error) -> ! {
    let rendered = e.render().to_string();
    let mut text = rendered.clone();
    for arg in std::env::args().skip(1) {
        if looks_secret(&arg) {
            text = text.replace(&arg, "<redacted>");
        }
    }
    if e.use_stderr() {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    std::process::exit(e.exit_code());
}

/// A UDS-like hex string (32 bytes or more of hex) or a key/connection-string fragment.
fn looks_secret(arg: &str) -> bool {
    let value = arg.split_once('=').map_or(arg, |(_, v)| v);
    let hex_digits = value.chars().filter(|c| c.is_ascii_hexdigit()).count();
    (hex_digits >= 32 && value.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '-'))
        || arg.contains("SharedAccessKey")
        || arg.contains("SharedAccessSignature")
}

#[cfg(test)]
mod tests {
    use super::looks_secret;

    #[test]
    fn secrets_are_recognised_and_ordinary_arguments_are_not() {
        assert!(looks_secret("19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae"));
        assert!(looks_secret("--uds=ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"));
        assert!(looks_secret("HostName=x;SharedAccessKeyName=p;SharedAccessKey=abc="));
        assert!(!looks_secret("--registration-id"));
        assert!(!looks_secret("c0bdd1a2b3c4"));
        assert!(!looks_secret("az-c0bdd1a2b3c4v1v6v2"));
    }
}
