//! `devkit doctor`: is this machine ready to build, flash and provision a DevKit? A thin
//! renderer of `tasks::doctor` (the editor's "Check Setup" shows the same checks).

use super::vocab::Hint;
use super::{CliError, CliResult};
use anyhow::Context;
use std::path::PathBuf;
use tasks::doctor::{self, CheckStatus, DoctorOptions};
use tasks::error::NextAction;

#[derive(clap::Args)]
pub struct Args {
    /// arduino-cli to check [default: `arduino-cli` on PATH]
    #[arg(long, value_name = "FILE", env = "DEVKIT_ARDUINO_CLI")]
    pub arduino_cli: Option<PathBuf>,
    /// Print JSON (camelCase) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How the terminal says what fixes a check (the editor shows buttons instead).
fn render_action(action: NextAction, detail: Option<&str>) -> String {
    match action {
        NextAction::InstallToolchain => "install the toolchain (see the detail above)".into(),
        NextAction::InstallUdevRule => format!(
            "add the udev rule to {}",
            detail.unwrap_or(tasks::flash::UDEV_RULE_FILE)
        ),
        other => other.hint(),
    }
}

pub fn run(args: Args) -> CliResult {
    let checks = super::runtime().block_on(doctor::run(&DoctorOptions {
        arduino_cli: args.arduino_cli,
        ..Default::default()
    }));
    let ready = doctor::ready(&checks);
    if args.json && ready {
        let out = serde_json::json!({ "checks": checks, "ready": ready });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).context("serialising the checks")?
        );
    } else if !args.json {
        for c in &checks {
            let mark = match c.status {
                CheckStatus::Ok => "ok  ",
                CheckStatus::Warning => "warn",
                CheckStatus::Error => "FAIL",
            };
            let mut lines = c.detail.lines();
            println!(
                "{mark} {:<26} {}",
                c.title,
                lines.next().unwrap_or_default()
            );
            for l in lines {
                println!("     {:<26} {l}", "");
            }
            for a in &c.next_actions {
                println!(
                    "     {:<26} next: {}",
                    "",
                    render_action(a.action, a.detail.as_deref())
                );
            }
        }
    }
    if ready {
        Ok(())
    } else if args.json {
        // One document: the checks, with the error object next to them.
        Err(CliError::Failed(anyhow::anyhow!(
            "the setup is not complete (see the checks)"
        ))
        .with_output("checks", serde_json::json!(checks))
        .with_output("ready", false.into()))
    } else {
        Err(CliError::Failed(anyhow::anyhow!(
            "the setup is not complete (see the checks above)"
        )))
    }
}
