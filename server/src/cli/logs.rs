//! `devkit logs --events FILE`: log events from a captured serial log. With a DPS service
//! connection string, a 401002 verdict is explained: the enrollment is fetched and compared
//! with the project's certificates ([`tasks::dps::mismatch`]).

use super::vocab::Hint;
use super::{CliError, CliResult};
use std::io::Write;
use std::path::PathBuf;
use tasks::fsutil::limits;
use tasks::logs::EventParser;

#[derive(clap::Args)]
pub struct Args {
    /// Print log events as JSON lines (otherwise: the log's lines, CR/LF normalised).
    #[arg(long)]
    pub events: bool,
    /// The captured log (`-` for standard input).
    pub file: PathBuf,
    /// DPS service connection string file: explain a 401002 by fetching the enrollment and
    /// naming the input that differs from the project's generated certificate.
    #[arg(long, value_name = "FILE")]
    pub connection_string_file: Option<PathBuf>,
    /// CA certificate to trust for the DPS service (e.g. the emulator's ca.pem).
    #[arg(long, value_name = "FILE", requires = "connection_string_file")]
    pub ca_file: Option<PathBuf>,
    /// Project whose generated and enrolled certificates the enrollment is compared with.
    #[arg(long = "project-dir", value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
}

pub fn run(args: Args) -> CliResult {
    let bytes = if args.file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin(), limits::LOG_FILE + 1),
            &mut b,
        )
        .map_err(|e| CliError::invalid(format!("cannot read the log from stdin: {e}")))?;
        if b.len() as u64 > limits::LOG_FILE {
            return Err(CliError::invalid(
                "invalid standard input: the log is larger than 256 MiB; split it",
            ));
        }
        b
    } else {
        let input = format!("log file {:?}", args.file.display().to_string());
        tasks::fsutil::read_bounded(&args.file, &input, limits::LOG_FILE)
            .map_err(|e| CliError::Invalid(e.into()))?
    };
    if let Some(cs_file) = &args.connection_string_file {
        explain_rejection(&bytes, cs_file, args.ca_file.as_deref(), &args.project)?;
    }
    let mut out = std::io::stdout().lock();
    if args.events {
        for e in EventParser::parse_all(&bytes) {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string(&e).map_err(anyhow::Error::from)?
            );
        }
    } else {
        let mut framer = tasks::monitor::framing::LineFramer::new();
        let mut lines = framer.push(&bytes);
        lines.extend(framer.finish());
        for l in lines {
            let _ = writeln!(
                out,
                "{}",
                l.chars()
                    .filter(|c| !c.is_control() || *c == '\t')
                    .collect::<String>()
            );
        }
    }
    Ok(())
}

/// On a 401002 verdict, fetch the enrollment and print which input differs and what fixes it
/// (stderr: stdout keeps the log or its events as they were).
fn explain_rejection(
    bytes: &[u8],
    cs_file: &std::path::Path,
    ca_file: Option<&std::path::Path>,
    project: &std::path::Path,
) -> CliResult {
    use tasks::dps::mismatch;
    let events = EventParser::parse_all(bytes);
    let Some(registration_id) = mismatch::rejected_registration(&events) else {
        return Ok(());
    };
    let state = tasks::project::ProjectState::load(project).map_err(anyhow::Error::from)?;
    let Some(registration_id) = registration_id.or_else(|| {
        state
            .last_generated
            .as_ref()
            .map(|g| g.registration_id.clone())
    }) else {
        eprintln!("explanation: the log does not show the registration ID and the project has no generated certificate");
        return Ok(());
    };
    let (text, _) =
        super::enroll::read_connection_string_text(Some(cs_file), false, "connection-string")?
            .ok_or_else(|| CliError::invalid("no connection string"))?;
    let cs = tasks::dps::ConnectionString::parse_file_text(&text)
        .map_err(|e| CliError::invalid(format!("--connection-string-file: {e}")))?;
    let ca_pem = ca_file
        .map(|p| {
            tasks::fsutil::read_text_bounded(p, "CA file", limits::CERT_FILE)
                .map_err(|e| CliError::Invalid(e.into()))
        })
        .transpose()?;
    let explanation = super::provision::run_cancellable(|_, cancel| async move {
        let options = tasks::dps::ClientOptions {
            ca_pem,
            cancel,
            ..Default::default()
        };
        let client = tasks::dps::ServiceClient::new(cs, options)?;
        mismatch::explain_rejection(&client, &registration_id, &state).await
    })?;
    eprintln!("explanation: {}", explanation.message);
    let next: Vec<String> = explanation
        .next_actions
        .iter()
        .map(|step| step.hint())
        .collect();
    eprintln!("next: {}", next.join("; or "));
    Ok(())
}
