//! `devkit logs --events FILE`: log events from a captured serial log.

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
