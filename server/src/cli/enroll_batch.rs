//! `devkit enroll --batch MANIFEST.csv --cert-dir DIR [--report FILE]` (with enroll's
//! connection string, `--ca-file`, `--device-id`/`--iot-hub`/`--disabled`/`--enable` and
//! `--json`): flags to a [`tasks::dps::enroll::BatchEnrollRequest`], a progress bar on a
//! terminal, the summary (`--json`: the report, the daemon's `devkit/enroll` batch result).

use super::{CliError, CliResult};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use tasks::dps::enroll::{run_batch, BatchEnrollReport, BatchEnrollRequest, EnrollmentSettings};
use tasks::progress::{Progress, ProgressEvent};
use zeroize::Zeroizing;

/// The batch flags of `devkit enroll`.
#[derive(clap::Args)]
pub struct BatchArgs {
    /// Enroll every registration ID of this manifest (the CSV generate-cert --batch reads),
    /// in DPS bulk requests; resumable (a journal next to the manifest records what DPS confirmed).
    #[arg(
        long,
        value_name = "MANIFEST.csv",
        requires = "cert_dir",
        conflicts_with = "cert"
    )]
    pub batch: Option<PathBuf>,
    /// Where the batch's `<registration id>.pem` files are (generate-cert --batch's --out-dir).
    #[arg(long, value_name = "DIR", requires = "batch")]
    pub cert_dir: Option<PathBuf>,
    /// The batch's report CSV [default: MANIFEST.csv.enroll-report.csv].
    #[arg(long, value_name = "FILE", requires = "batch")]
    pub report: Option<PathBuf>,
    /// Batch: send at most N requests per minute (a bulk request enrolls up to 10) [default:
    /// 1000, one DPS unit's quota; 0: no pacing, throttling (429) is still waited out].
    #[arg(long, value_name = "N", requires = "batch")]
    pub requests_per_minute: Option<u32>,
}

/// What `enroll` hands over for a batch.
pub struct Batch {
    pub manifest: PathBuf,
    pub args: BatchArgs,
    pub connection_string: Option<Zeroizing<String>>,
    pub ca_file: Option<PathBuf>,
    pub settings: EnrollmentSettings,
    pub json: bool,
}

pub fn run(batch: Batch) -> CliResult {
    let request = BatchEnrollRequest {
        connection_string: batch.connection_string,
        ca_file: batch.ca_file,
        manifest: batch.manifest,
        cert_dir: batch.args.cert_dir.unwrap_or_default(),
        report_csv: batch.args.report,
        settings: batch.settings,
        requests_per_minute: batch.args.requests_per_minute,
    };
    let plan = request.plan()?;
    let bar = progress_bar();
    let report = super::provision::run_cancellable(|_lines, cancel| async move {
        run_batch(plan, &bar, &cancel).await
    })?;
    if batch.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(anyhow::Error::from)?
        );
    } else {
        print_summary(&report);
    }
    if report.failed > 0 {
        return Err(CliError::Failed(anyhow::anyhow!(
            "{} of {} rows not enrolled (see {})",
            report.failed,
            report.rows,
            report.report_csv.display()
        )));
    }
    Ok(())
}

/// A one-line bar redrawn on a terminal; whole lines (one per 10%) otherwise.
fn progress_bar() -> Progress {
    if !std::io::stderr().is_terminal() {
        return super::build::progress_printer();
    }
    Progress::new(|e| match e {
        ProgressEvent::Begin { title } => eprintln!("==> {title}"),
        ProgressEvent::Report {
            message,
            percentage,
        } => {
            let p = percentage.unwrap_or(0).min(100) as usize;
            let filled = "#".repeat(p * 30 / 100);
            eprint!("\r    [{filled:<30}] {p:>3}% {message}   ");
            let _ = std::io::stderr().flush();
        }
        ProgressEvent::End { message } => eprintln!("\n    {message}"),
        ProgressEvent::Warning { message } => eprintln!("\nwarning: {message}"),
    })
}

fn print_summary(r: &BatchEnrollReport) {
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    for f in &r.failures {
        let code = f.error_code.map(|c| format!(" ({c})")).unwrap_or_default();
        eprintln!(
            "line {}: {}: not enrolled{code}: {}",
            f.line, f.registration_id, f.message
        );
    }
    if r.failed > r.failures.len() {
        eprintln!("... and {} more failed rows", r.failed - r.failures.len());
    }
    super::render::print_next(&r.next_actions);
    println!(
        "{} rows: {} created, {} updated, {} unchanged, {} skipped (enrolled by an earlier run), {} failed; {} requests",
        r.rows, r.created, r.updated, r.unchanged, r.skipped, r.failed, r.requests
    );
    println!("report: {}", r.report_csv.display());
    println!("journal: {}", r.journal.display());
}
