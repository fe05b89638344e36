//! How a task report reaches the terminal: `--json` prints the report as the daemon returns it;
//! otherwise the commands render their own lines and these helpers print the shared parts.

use super::vocab::Hint;
use super::CliResult;
use tasks::error::NextStep;

/// The report as JSON on stdout: the same shape as the daemon's result.
pub fn print_json<T: serde::Serialize>(report: &T) -> CliResult {
    let text = serde_json::to_string_pretty(report).map_err(anyhow::Error::from)?;
    println!("{text}");
    Ok(())
}

/// A report's next actions, as the commands that do them (stderr: stdout holds results).
pub fn print_next(next: &[NextStep]) {
    if !next.is_empty() {
        let steps: Vec<String> = next.iter().map(|step| step.hint()).collect();
        eprintln!("next: {}", steps.join("; then "));
    }
}
