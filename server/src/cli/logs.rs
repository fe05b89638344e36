//! `devkit logs --events FILE`: registration events from a captured serial log.

use super::{CliError, CliResult};
use std::io::Write;
use std::path::PathBuf;
use tasks::logs::EventParser;

#[derive(clap::Args)]
pub struct Args {
    /// Print registration events as JSON lines (otherwise: the log's lines, CR/LF normalised).
    #[arg(long)]
    pub events: bool,
    /// The captured log (`-` for standard input).
    pub file: PathBuf,
}

pub fn run(args: Args) -> CliResult {
    let bytes = if args.file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(|e| CliError::invalid(format!("cannot read the log from stdin: {e}")))?;
        b
    } else {
        std::fs::read(&args.file).map_err(|e| CliError::invalid(format!("cannot read log file {}: {e}", args.file.display())))?
    };
    let mut out = std::io::stdout().lock();
    if args.events {
        for e in EventParser::parse_all(&bytes) {
            let _ = writeln!(out, "{}", serde_json::to_string(&e).map_err(anyhow::Error::from)?);
        }
    } else {
        let mut framer = tasks::monitor::framing::LineFramer::new();
        let mut lines = framer.push(&bytes);
        lines.extend(framer.finish());
        for l in lines {
            let _ = writeln!(out, "{}", l.chars().filter(|c| !c.is_control() || *c == '\t').collect::<String>());
        }
    }
    Ok(())
}
