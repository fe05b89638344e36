//! `devkit set-uds`: push a Unique Device Secret to a DevKit in configuration mode.
//!
//! Flags -> [`SetUdsRequest`] -> plan -> run -> the report on the terminal (or `--json`). The
//! UDS never appears on the command line, in output or in logs: it is read from a file, or
//! generated and kept in the `--save-uds-to` file (mode 0600, written once the device is in
//! configuration mode, before it is sent); a generated UDS kept nowhere is refused (exit 2).

use super::render::{print_json, print_next};
use super::CliResult;
use std::path::PathBuf;
use std::time::Duration;
use tasks::console::configure::{SetUdsReport, SetUdsRequest};
use tasks::console::ConfirmedBy;
use tasks::identity::UdsSource;
use tasks::progress::CancellationToken;

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
    /// Generate a new UDS from the OS's cryptographic random source (needs --save-uds-to).
    #[arg(long)]
    pub generate: bool,
    /// With --generate: save the new UDS to this new file (mode 0600) before sending it.
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
    /// Serial speed (the JSON name is `baudRate`).
    #[arg(long, default_value_t = tasks::console::DEFAULT_BAUD)]
    pub baud: u32,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> CliResult {
    let uds = match &args.uds_file {
        Some(path) => {
            let input = format!("--uds-file {:?}", path.display().to_string());
            Some(super::read_uds(
                UdsSource::File(path),
                &input,
                args.allow_sample_uds,
                "generate one with --generate --save-uds-to FILE",
            )?)
        }
        None => None,
    };
    let plan = SetUdsRequest {
        port: args.port.display().to_string(),
        uds,
        generate: args.generate,
        save_uds_to: args.save_uds_to.clone(),
        return_uds: false,
        baud: Some(args.baud),
        timeout: Some(Duration::from_secs(args.timeout)),
    }
    .plan()?;
    let outcome = plan.run_on_port(&super::build::progress_printer(), &CancellationToken::new())?;
    render(&outcome.report, args.json)
}

fn render(r: &SetUdsReport, json: bool) -> CliResult {
    if json {
        return print_json(r);
    }
    let how = match r.confirmed_by {
        ConfirmedBy::Echo => "device confirmed",
        ConfirmedBy::InfoLine => "device confirmed without echo",
    };
    println!(
        "UDS stored on the DevKit at {} ({how}: {})",
        r.port, r.reply
    );
    if let Some(path) = &r.uds_saved_to {
        println!("the UDS is kept in {} (mode 0600)", path.display());
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    print_next(&r.next_actions);
    Ok(())
}
