//! `devkit ports`: list serial ports, DevKits (USB 0483:374B) marked and first.

use super::{CliError, CliResult};
use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON (one array) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> CliResult {
    let ports = tasks::monitor::ports::list_ports()
        .context("cannot list serial ports")
        .map_err(CliError::Failed)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&ports).context("serialising ports")?
        );
        return Ok(());
    }
    if ports.is_empty() {
        println!("no serial ports found (is the DevKit plugged in? a virtual one: `devkit sim --sim-dir DIR`)");
    }
    for p in ports {
        let mark = if p.is_devkit { "DevKit" } else { "-" };
        let ids = match (p.vid, p.pid) {
            (Some(v), Some(d)) => format!("{v:04x}:{d:04x}"),
            _ => p.kind.clone(),
        };
        let mut line = format!("{:<20} {:<7} {ids}", p.port, mark);
        if let Some(sn) = &p.serial_number {
            line += &format!("  SN {sn}");
        }
        if let Some(prod) = p.description.as_ref().or(p.manufacturer.as_ref()) {
            line += &format!("  {prod}");
        }
        println!("{line}");
    }
    Ok(())
}
