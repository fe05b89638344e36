//! `devkit generate-cert`: the device's alias certificate from the build and its UDS.
//!
//! Contract (later tooling depends on it):
//! `devkit generate-cert (--bin FILE --map FILE | --build-dir DIR) (--uds-file FILE | --uds-stdin)
//! (--registration-id ID | --mac HEX12 --firmware-version X.Y.Z) [--out-dir DIR] [--device-cert]
//! [--alias-key] [--json] [--allow-sample-uds] [--project-dir DIR]`, or `--batch MANIFEST.csv`
//! instead of the UDS and ID options. Every input is validated before anything is written;
//! exit 2 names the bad input. Existing files with different content are kept as
//! `<name>.<UTC timestamp>.bak` (said in the output); identical content is left untouched
//! (`tasks::identity::files`).
//!
//! The task is `tasks::identity::generate` (the daemon's `devkit/generateCert` runs the same):
//! this module maps the flags to its request, names refused inputs by their flags, and renders
//! the report (`--json`: the report itself).

use super::vocab::Hint;
use super::{CliError, CliResult};
use std::io::Write;
use std::path::{Path, PathBuf};
use tasks::error::{DomainError, Input};
use tasks::identity::files::FileAction;
use tasks::identity::generate::{
    self, BatchRequest, BatchRow, GenerateReport, GenerateRequest, ImageInput, UdsInput,
};
use tasks::identity::IdentityError;
use tasks::progress::{CancellationToken, Progress};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("image").required(true).args(["bin", "build_dir"])))]
#[command(group(clap::ArgGroup::new("uds_source").args(["uds_file", "uds_stdin"])))]
pub struct Args {
    /// The sketch's firmware image (`<sketch>.ino.bin`).
    #[arg(long, value_name = "FILE", requires = "map")]
    bin: Option<PathBuf>,
    /// The linker map of the same build (`<sketch>.ino.map`).
    #[arg(long, value_name = "FILE", requires = "bin")]
    map: Option<PathBuf>,
    /// A build directory holding exactly one `*.ino.bin` + `*.ino.map` pair.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["bin", "map"])]
    build_dir: Option<PathBuf>,
    /// File holding the device's UDS (64 hex digits). The UDS is never taken on the command line.
    #[arg(long, value_name = "FILE")]
    uds_file: Option<PathBuf>,
    /// Read the UDS from the first line of standard input.
    #[arg(long)]
    uds_stdin: bool,
    /// Never accepted: catches `--uds <hex>` to refuse it without echoing the secret.
    #[arg(long, hide = true, value_name = "NEVER")]
    uds: Option<zeroize::Zeroizing<String>>,
    /// Registration ID (1 to 64 characters of a-z, 0-9 and -).
    #[arg(long, value_name = "ID", conflicts_with_all = ["mac", "firmware_version"])]
    registration_id: Option<String>,
    /// Device MAC (12 hex digits, `:`/`-` allowed) for the automatic ID `az-<mac>v<x>v<y>v<z>`.
    #[arg(long, value_name = "HEX12", requires = "firmware_version")]
    mac: Option<String>,
    /// DevKit firmware (SDK) version `X.Y.Z` for the automatic ID.
    #[arg(long, value_name = "X.Y.Z", requires = "mac")]
    firmware_version: Option<String>,
    /// Factory batch: CSV `uds_file,registration_id` or `uds_file,mac,firmware_version`.
    #[arg(long, value_name = "MANIFEST.csv", conflicts_with_all = ["uds_file", "uds_stdin", "registration_id", "mac", "firmware_version"])]
    batch: Option<PathBuf>,
    /// Where to write the certificates (default: current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out_dir: PathBuf,
    /// Also write `device-cert.pem` and `device-id-pub.pem`.
    #[arg(long)]
    device_cert: bool,
    /// Also write the alias private key `alias-key.pem` (mode 0600).
    #[arg(long)]
    alias_key: bool,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Accept the published sample UDS (tests only: its keys are public).
    #[arg(long)]
    allow_sample_uds: bool,
    /// Project whose state records the generated identity (`<DIR>/.devkit/state.json`).
    #[arg(
        long = "project-dir",
        alias = "project",
        value_name = "DIR",
        default_value = "."
    )]
    project: PathBuf,
}

/// `--flag "value"` as error messages name inputs.
fn flag(name: &str, value: &impl std::fmt::Display) -> String {
    format!("{name} {:?}", value.to_string())
}

/// What the CLI adds to the typed sample-UDS refusal: how to accept it here.
const SAMPLE_HINT: &str = "--allow-sample-uds accepts it for a throw-away test";

impl Args {
    fn image(&self) -> ImageInput {
        ImageInput {
            bin: self.bin.clone(),
            map: self.map.clone(),
            build_dir: self.build_dir.clone(),
        }
    }

    /// A refused input named by the flag (and value) it came from; the sample-UDS refusal with
    /// the flag that accepts it.
    fn error(&self, e: IdentityError) -> CliError {
        let name = match e.input() {
            Some(Input::Uds) => match &self.uds_file {
                Some(p) => Some(flag("--uds-file", &p.display())),
                None => Some("--uds-stdin".into()),
            },
            Some(Input::RegistrationId) => self
                .registration_id
                .as_ref()
                .map(|v| flag("--registration-id", v)),
            Some(Input::Mac) => self.mac.as_ref().map(|v| flag("--mac", v)),
            Some(Input::FirmwareVersion) => self
                .firmware_version
                .as_ref()
                .map(|v| flag("--firmware-version", v)),
            Some(Input::Bin) => self.bin.as_ref().map(|p| flag("--bin", &p.display())),
            Some(Input::Map) => self.map.as_ref().map(|p| flag("--map", &p.display())),
            Some(Input::Manifest) => self.batch.as_ref().map(|p| flag("--batch", &p.display())),
            _ => None,
        };
        let e = match name {
            Some(n) => e.named_as(n),
            None => e,
        };
        match &e {
            IdentityError::SampleUds(i) => {
                CliError::from(i.clone()).with_hint(Some(SAMPLE_HINT.to_string()))
            }
            _ => e.into(),
        }
    }
}

fn invalid(input: &str, reason: &str) -> CliError {
    CliError::invalid(format!("invalid {input}: {reason}"))
}

pub fn run(args: Args) -> CliResult {
    if args.uds.is_some() {
        return Err(invalid(
            "--uds",
            "the UDS is never taken on the command line (it would show in the process list and shell history); use --uds-file FILE or --uds-stdin",
        ));
    }
    if let Some(manifest) = &args.batch {
        return run_batch(&args, manifest);
    }
    let uds = match (&args.uds_file, args.uds_stdin) {
        (Some(path), _) => UdsInput::File(path.clone()),
        (None, true) => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("UDS (64 hex digits): ");
            }
            UdsInput::Stdin
        }
        (None, false) => {
            return Err(CliError::invalid(
                "give the UDS with --uds-file FILE or --uds-stdin (never on the command line)",
            ))
        }
    };
    let request = GenerateRequest {
        image: args.image(),
        uds: Some(uds),
        registration_id: args.registration_id.clone(),
        mac: args.mac.clone(),
        firmware_version: args.firmware_version.clone(),
        out_dir: Some(args.out_dir.clone()),
        device_cert: args.device_cert,
        alias_key: args.alias_key,
        allow_sample_uds: args.allow_sample_uds,
        project_dir: Some(args.project.clone()),
    };
    let plan = request.plan().map_err(|e| args.error(e))?;
    let report = generate::run(plan, &Progress::none(), &CancellationToken::new())?;
    render(args.json, &report, &report.warnings, print_report)
}

/// `--json`: the report itself on stdout (its warnings on stderr too); else `human`.
fn render<T: serde::Serialize>(
    json: bool,
    report: &T,
    warnings: &[String],
    human: fn(&T),
) -> CliResult {
    if json {
        let text = serde_json::to_string(report).map_err(anyhow::Error::from)?;
        println!("{text}");
        warn(warnings);
    } else {
        human(report);
    }
    Ok(())
}

fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn print_report(report: &GenerateReport) {
    println!("Registration ID:    {}", report.registration_id);
    println!("SHA-1 thumbprint:   {}", report.sha1_thumbprint);
    println!("SHA-256 thumbprint: {}", report.sha256_thumbprint);
    println!("FWID:               {}", report.fwid);
    for f in &report.files {
        let action = match f.action {
            FileAction::Written => "written",
            FileAction::Unchanged => "unchanged",
            FileAction::Replaced => "replaced; previous file backed up",
        };
        println!(
            "{:<19} {} ({action})",
            format!("{}:", f.kind.label()),
            f.path.display()
        );
    }
    warn(&report.warnings);
    for step in &report.next_actions {
        println!("next: {}", step.hint());
    }
    println!("Note: {}", report.note);
}

/// `--batch`: one identity per manifest row; failing rows are reported, the others written.
/// Rows are printed as their chunk is written (streamed: memory does not grow with the
/// manifest); `--json` writes the report object's `results` array one row at a time.
fn run_batch(args: &Args, manifest: &Path) -> CliResult {
    let request = BatchRequest {
        image: args.image(),
        manifest: manifest.to_path_buf(),
        out_dir: Some(args.out_dir.clone()),
        device_cert: args.device_cert,
        alias_key: args.alias_key,
        allow_sample_uds: args.allow_sample_uds,
        project_dir: None,
    };
    let plan = request.plan().map_err(|e| args.error(e))?;
    let rows = plan.rows;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut started = false;
    let summary =
        generate::run_batch_streaming(plan, &Progress::none(), &CancellationToken::new(), |row| {
            let written = if args.json {
                let separator: &[u8] = if started { b"," } else { b"{\"results\":[" };
                out.write_all(separator)
                    .and_then(|()| serde_json::to_writer(&mut out, &row).map_err(Into::into))
            } else {
                print_row(&mut out, &row)
            };
            started = true;
            written.unwrap_or_else(|e| super::stdout_failed(&e));
        })?;
    let failure = (summary.failed > 0).then(|| {
        CliError::Failed(anyhow::anyhow!(
            "{} of {} manifest rows failed (see above)",
            summary.failed,
            rows
        ))
    });
    let written = if args.json {
        let opening: &[u8] = if started { b"" } else { b"{\"results\":[" };
        let mut tail = serde_json::json!({
            "ok": summary.ok,
            "failed": summary.failed,
            "warnings": summary.warnings,
            "note": summary.note,
        });
        // With a failed row, one document: the batch report next to the error object.
        if let Some(e) = &failure {
            tail["error"] = e.json()["error"].clone();
        }
        let tail = serde_json::to_string(&tail).map_err(anyhow::Error::from)?;
        out.write_all(opening)
            .and_then(|()| writeln!(out, "],{}", &tail[1..]))
    } else {
        writeln!(
            out,
            "{} certificate(s) written, {} row(s) failed.\nNote: {}",
            summary.ok, summary.failed, summary.note
        )
    };
    written
        .and_then(|()| out.flush())
        .unwrap_or_else(|e| super::stdout_failed(&e));
    drop(out);
    warn(&summary.warnings);
    match failure {
        Some(e) if args.json => super::exit_after_document(&e),
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One row of the human output: the certificate on stdout, its warnings or its error on stderr.
fn print_row(out: &mut impl Write, row: &BatchRow) -> std::io::Result<()> {
    match (&row.certificate, &row.error) {
        (Some(c), _) => {
            writeln!(
                out,
                "line {}: {} {} {}",
                row.line,
                c.registration_id,
                c.sha1_thumbprint,
                c.alias_cert.display()
            )?;
            if !c.warnings.is_empty() {
                // stderr in step with the buffered stdout on a terminal.
                out.flush()?;
            }
            for w in &c.warnings {
                eprintln!("line {}: warning: {w}", row.line);
            }
        }
        (None, Some(e)) => {
            out.flush()?;
            eprintln!("line {}: error: {}", row.line, e.message)
        }
        (None, None) => {}
    }
    Ok(())
}
