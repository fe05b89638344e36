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
    /// arduino-builder to check [default: `arduino-builder` on PATH].
    #[arg(long, env = "DEVKIT_ARDUINO_BUILDER", value_name = "FILE")]
    pub arduino_builder: Option<PathBuf>,
    /// The Arduino15 folder holding packages/AZ3166/hardware/stm32f4/<version>, as `devkit
    /// build` takes it [default: ~/.arduino15, ~/Library/Arduino15 or %LOCALAPPDATA%\Arduino15].
    #[arg(long, env = "DEVKIT_ARDUINO_DATA", value_name = "DIR")]
    pub arduino_data: Option<PathBuf>,
    /// Print JSON (camelCase) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How the terminal says what fixes a check (the editor shows buttons instead).
fn render_action(action: NextAction, detail: Option<&str>) -> String {
    match action {
        NextAction::InstallToolchain => match detail {
            Some("arduino-cli") => {
                "install arduino-cli and the AZ3166 platform (the commands are in the arduino-cli check)".into()
            }
            Some(tasks::build::PLATFORM_ID) => "install the AZ3166 platform with arduino-cli, or give an Arduino15 folder \
                 that holds it with --arduino-data DIR"
                .into(),
            Some(what) => format!("install {what} (see the detail above)"),
            None => "install the toolchain (see the detail above)".into(),
        },
        NextAction::InstallUdevRule => format!(
            "add the udev rule to {}",
            detail.unwrap_or(tasks::flash::UDEV_RULE_FILE)
        ),
        other => other.hint(),
    }
}

pub fn run(args: Args) -> CliResult {
    let report = super::runtime().block_on(doctor::run(&DoctorOptions {
        arduino_cli: args.arduino_cli,
        arduino_builder: args.arduino_builder,
        arduino_data: args.arduino_data,
        ..Default::default()
    }));
    if args.json && report.ready {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serialising the checks")?
        );
    } else if !args.json {
        let width = report
            .checks
            .iter()
            .map(|c| c.title.len())
            .max()
            .unwrap_or(0);
        for c in &report.checks {
            let mark = match c.status {
                CheckStatus::Ok => "ok  ",
                CheckStatus::Warning => "warn",
                CheckStatus::Error => "FAIL",
                CheckStatus::NotNeeded => "n/a ",
            };
            let mut lines = c.detail.lines();
            println!(
                "{mark} {:<width$} {}",
                c.title,
                lines.next().unwrap_or_default()
            );
            for l in lines {
                println!("     {:<width$} {l}", "");
            }
            for a in &c.next_actions {
                println!(
                    "     {:<width$} next: {}",
                    "",
                    render_action(a.action, a.detail.as_deref())
                );
            }
        }
    }
    let not_complete = match report.builder {
        None => "the setup is not complete: neither build route works (arduino-cli with the AZ3166 platform, \
             or arduino-builder with an Arduino15 folder holding it and arm-none-eabi-gcc; see the checks)",
        Some(_) => "the setup is not complete (see the checks)",
    };
    match (report.ready, report.builder) {
        (true, Some(route)) => {
            if !args.json {
                println!("setup complete: `devkit build` will use {}", route.name());
            }
            Ok(())
        }
        (true, None) => Ok(()),
        // One document: the checks, with the error object next to them.
        (false, _) if args.json => Err(CliError::Failed(anyhow::anyhow!(not_complete))
            .with_output("checks", serde_json::json!(report.checks))
            .with_output("ready", false.into())
            .with_output("builder", serde_json::json!(report.builder))),
        (false, _) => Err(CliError::Failed(anyhow::anyhow!(
            "{} above)",
            not_complete.trim_end_matches(')')
        ))),
    }
}
