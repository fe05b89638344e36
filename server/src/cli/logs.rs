//! `devkit logs --events FILE`: log events from a captured serial log. With a DPS service
//! connection string, a 401002 verdict is explained: the enrollment is fetched and compared
//! with the project's certificates ([`tasks::dps::mismatch`]).

use super::vocab::Hint;
use super::{CliError, CliResult};
use std::io::Write;
use std::path::PathBuf;
use tasks::fsutil::limits;
use tasks::logs::{EventParser, LogEvent};

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

/// How much of the log is read at a time: the log is streamed, never held whole.
const READ_CHUNK: usize = 64 * 1024;

pub fn run(args: Args) -> CliResult {
    let stdin = args.file.as_os_str() == "-";
    let mut input: Box<dyn std::io::Read> = if stdin {
        Box::new(std::io::Read::take(
            std::io::stdin().lock(),
            limits::LOG_FILE + 1,
        ))
    } else {
        let input = format!("log file {:?}", args.file.display().to_string());
        Box::new(
            tasks::fsutil::open_bounded(&args.file, &input, limits::LOG_FILE)
                .map_err(|e| CliError::Invalid(e.into()))?,
        )
    };
    let explain = args.connection_string_file.is_some();
    let mut parser = EventParser::new();
    let mut framer = tasks::monitor::framing::LineFramer::new();
    let mut watch = tasks::dps::mismatch::RejectionWatch::default();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let events = args.events;
    let mut on_event = |e: LogEvent, out: &mut std::io::BufWriter<std::io::StdoutLock<'_>>| {
        watch.push(&e);
        if events {
            let written = serde_json::to_writer(&mut *out, &e)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            written.unwrap_or_else(|e| super::stdout_failed(&e));
        }
    };
    let on_line = |l: String, out: &mut std::io::BufWriter<std::io::StdoutLock<'_>>| {
        let printable: String = l
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect();
        writeln!(out, "{printable}").unwrap_or_else(|e| super::stdout_failed(&e));
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let what = if stdin { "from stdin" } else { "file" };
                return Err(CliError::invalid(format!(
                    "cannot read the log {what}: {e}"
                )));
            }
        };
        total += n as u64;
        if total > limits::LOG_FILE {
            return Err(CliError::invalid(
                "invalid standard input: the log is larger than 256 MiB; split it",
            ));
        }
        let chunk = &buf[..n];
        if events || explain {
            parser.push_bytes_each(chunk, |e| on_event(e, &mut out));
        }
        if !events {
            framer.push_each(chunk, |l| on_line(l, &mut out));
        }
    }
    if events || explain {
        for e in parser.finish() {
            on_event(e, &mut out);
        }
    }
    if !events {
        if let Some(l) = framer.finish() {
            on_line(l, &mut out);
        }
    }
    out.flush().unwrap_or_else(|e| super::stdout_failed(&e));
    drop(out);
    if let Some(cs_file) = &args.connection_string_file {
        explain_rejection(
            watch.verdict(),
            cs_file,
            args.ca_file.as_deref(),
            &args.project,
        )?;
    }
    Ok(())
}

/// On a 401002 verdict, fetch the enrollment and print which input differs and what fixes it
/// (stderr, after the log: stdout keeps the log or its events as they were).
fn explain_rejection(
    verdict: Option<Option<String>>,
    cs_file: &std::path::Path,
    ca_file: Option<&std::path::Path>,
    project: &std::path::Path,
) -> CliResult {
    use tasks::dps::mismatch;
    let Some(registration_id) = verdict else {
        return Ok(());
    };
    let state = tasks::project::ProjectState::load(project).map_err(anyhow::Error::from)?;
    let Some(registration_id) = mismatch::rejected_id(registration_id.as_deref(), &state) else {
        eprintln!("explanation: the log does not show the registration ID and the project has no generated certificate");
        return Ok(());
    };
    let (text, _) =
        super::enroll::read_connection_string_text(Some(cs_file), false, "connection-string")?
            .ok_or_else(|| CliError::invalid("no connection string"))?;
    let explanation = super::provision::run_cancellable(|_, cancel| async move {
        let plan = mismatch::ExplainRequest {
            connection_string: text,
            ca_file: ca_file.map(std::path::Path::to_path_buf),
            project_dir: project.to_path_buf(),
            cancel,
            timeout: tasks::dps::ClientOptions::default().timeout,
        }
        .plan()?;
        plan.explain_against(Some(&registration_id), &state).await
    })?
    .expect("a registration ID is given");
    eprintln!("explanation: {}", explanation.message);
    let next: Vec<String> = explanation
        .next_actions
        .iter()
        .map(|step| step.hint())
        .collect();
    eprintln!("next: {}", next.join("; or "));
    Ok(())
}
