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
#[command(
    name = "devkit",
    version,
    about = "MXChip AZ3166 DevKit: zero-touch Azure DPS provisioning with a DICE/RIoT X.509 identity"
)]
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
    /// Run a virtual DevKit on a pseudo-terminal (Unix) or a loopback TCP port (--transport tcp).
    Sim(cli::sim::Args),
    /// Push a Unique Device Secret to a DevKit in configuration mode.
    SetUds(cli::set_uds::Args),
    /// Store Wi-Fi settings on a DevKit in configuration mode.
    SetWifi(cli::set_wifi::Args),
    /// Watch a DevKit's serial output (raw text or log events).
    Monitor(cli::monitor::Args),
    /// Turn a captured serial log into log events.
    Logs(cli::logs::Args),
    /// Build the sketch with arduino-cli or arduino-builder (--builder).
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
    let matches = match <Cli as clap::CommandFactory>::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => exit_on_usage_error(e),
    };
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => exit_on_usage_error(e),
    };
    let json = wants_json(&matches);
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
        std::process::exit(e.report(json));
    }
}

/// Whether the subcommand was given `--json`: then a failure is printed as the JSON error
/// object on stdout (every subcommand with a `json` flag, whatever else it takes).
fn wants_json(matches: &clap::ArgMatches) -> bool {
    matches
        .subcommand()
        .and_then(|(_, m)| m.try_get_one::<bool>("json").ok().flatten().copied())
        .unwrap_or(false)
}

/// Print clap's usage error with every command-line value redacted, then exit.
///
/// Clap quotes arguments back ("unexpected argument '<value>' found", "invalid value
/// '<value>' for ..."): a secret typed on the command line (a UDS, a base64 key, a positional
/// Wi-Fi password) must not be echoed into a terminal log or CI output. Whatever the shape of
/// the value, only its position is named; flag and subcommand names are kept.
fn exit_on_usage_error(e: clap::Error) -> ! {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let text = redact_usage(&e.render().to_string(), &args, &known_names());
    if e.use_stderr() {
        eprint!("{text}");
        // `--json`: the usage error as the JSON error object too (no input to name: clap's
        // words, redacted, are the message).
        if args.iter().any(|a| a == "--json") {
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = message.join(" ");
            let message = message.trim_start_matches("error: ");
            println!("{}", cli::CliError::invalid(message).json());
        }
    } else {
        print!("{text}");
    }
    std::process::exit(e.exit_code());
}

/// Every subcommand and flag name (`set-uds`, `--port`, `-h`): the only argv words shown.
fn known_names() -> std::collections::HashSet<String> {
    fn walk(cmd: &clap::Command, names: &mut std::collections::HashSet<String>) {
        names.insert(cmd.get_name().to_string());
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long() {
                names.insert(format!("--{l}"));
            }
            if let Some(s) = a.get_short() {
                names.insert(format!("-{s}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, names);
        }
    }
    let mut names = std::collections::HashSet::from([
        "--help".to_string(),
        "-h".into(),
        "--version".into(),
        "-V".into(),
        "help".into(),
        "--".into(),
    ]);
    walk(&<Cli as clap::CommandFactory>::command(), &mut names);
    names
}

/// Replace each argument (`args[i]`, or the value of `--flag=value`) that is not a known name
/// with `<argument N>` wherever clap quoted it; long values (12+ characters: key-sized) are
/// replaced wherever they occur.
fn redact_usage(text: &str, args: &[String], known: &std::collections::HashSet<String>) -> String {
    let mut text = text.to_string();
    let mut values: Vec<(usize, &str)> = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") && known.contains(flag) => {
                values.push((i, value))
            }
            _ => values.push((i, arg)),
        }
    }
    // Longest first, so that a value containing another is replaced whole.
    values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (i, value) in values {
        if value.is_empty() || known.contains(value) {
            continue;
        }
        let label = format!("<argument {}>", i + 1);
        text = text
            .replace(&format!("'{value}'"), &format!("'{label}'"))
            .replace(&format!("'-- {value}'"), &format!("'-- {label}'"));
        if value.chars().count() >= 12 {
            text = text.replace(value, &label);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{known_names, redact_usage, Cli, Command};
    use clap::Parser;

    /// `devkit sim --sim-dir` is the name every command uses; `--state-dir` still parses.
    #[test]
    fn sim_dir_is_the_flag_and_state_dir_a_hidden_alias() {
        for flag in ["--sim-dir", "--state-dir"] {
            let cli = Cli::try_parse_from(["devkit", "sim", flag, "/tmp/s"]).expect(flag);
            let Command::Sim(a) = cli.command else {
                panic!("not sim")
            };
            assert_eq!(a.sim_dir, std::path::Path::new("/tmp/s"));
        }
        let help = <Cli as clap::CommandFactory>::command()
            .find_subcommand_mut("sim")
            .expect("sim")
            .render_long_help()
            .to_string();
        assert!(
            help.contains("--sim-dir") && !help.contains("state-dir"),
            "{help}"
        );
    }

    /// One name per concept: the old names parse, and help shows only the new ones.
    #[test]
    fn renamed_flags_keep_their_old_names_as_hidden_aliases() {
        for flag in ["--rebuild", "--force"] {
            let cli = Cli::try_parse_from(["devkit", "build", flag]).expect(flag);
            let Command::Build(a) = cli.command else {
                panic!("not build")
            };
            assert!(a.build.rebuild, "{flag}");
        }
        for flag in ["--emulator-dir", "--state-dir"] {
            Cli::try_parse_from(["devkit", "dps-emulator", flag, "/tmp/e"]).expect(flag);
        }
        let mut cmd = <Cli as clap::CommandFactory>::command();
        let help = |cmd: &mut clap::Command, sub: &str| {
            cmd.find_subcommand_mut(sub)
                .expect(sub)
                .render_long_help()
                .to_string()
        };
        let build = help(&mut cmd, "build");
        assert!(
            build.contains("--rebuild") && !build.contains("--force"),
            "{build}"
        );
        let emulator = help(&mut cmd, "dps-emulator");
        assert!(
            emulator.contains("--emulator-dir") && !emulator.contains("state-dir"),
            "{emulator}"
        );
    }

    #[test]
    fn every_unknown_argument_is_redacted_and_names_are_kept() {
        let known = known_names();
        assert!(
            known.contains("--port") && known.contains("set-wifi") && known.contains("--uds-file")
        );
        let args: Vec<String> = [
            "set-wifi",
            "--port",
            "/dev/x",
            "hunter2",
            "--timeout=c2VjcmV0LWtleQ==",
            "--prot",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let text = "error: unexpected argument 'hunter2' found\n  tip: to pass 'hunter2' as a value, use '-- hunter2'\n\
                    error: invalid value 'c2VjcmV0LWtleQ==' for '--timeout <SECS>'\nerror: unexpected argument '--prot' found; a similar argument exists: '--port'\n";
        let out = redact_usage(text, &args, &known);
        assert!(
            !out.contains("hunter2") && !out.contains("c2VjcmV0"),
            "{out}"
        );
        assert!(
            out.contains("'<argument 4>'")
                && out.contains("'-- <argument 4>'")
                && out.contains("'<argument 5>'"),
            "{out}"
        );
        assert!(
            out.contains("'<argument 6>'")
                && out.contains("'--port'")
                && out.contains("'--timeout <SECS>'"),
            "{out}"
        );
    }
}
