//! Running the builder: its compile command with every output line streamed as progress,
//! gcc diagnostics and known platform failures recognised, cancellation honoured.

use super::{diagnostics, BuildError, Diagnostic, KnownFailure};
use crate::progress::{CancellationToken, Progress};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Run the builder's compile command, streaming every output line as progress and
/// recognising known platform failures (answered with fixes exact for `platform_dir`).
pub(super) async fn compile(
    mut command: tokio::process::Command,
    platform_dir: Option<&Path>,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Vec<Diagnostic>, BuildError> {
    let program = PathBuf::from(command.as_std().get_program());
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| BuildError::Io {
            context: format!("cannot run {}", program.display()),
            source,
        })?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for reader in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut diagnostics = Vec::new();
    let mut known: Vec<KnownFailure> = Vec::new();
    let mut tail: std::collections::VecDeque<String> = Default::default();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = child.kill().await;
                return Err(BuildError::Cancelled);
            }
            line = rx.recv() => match line {
                Some(line) => {
                    if let Some(d) = diagnostics::parse_line(&line) {
                        diagnostics.push(d);
                    }
                    if let Some(k) = KnownFailure::detect(&line) {
                        if !known.contains(&k) { known.push(k); }
                    }
                    progress.report(line.clone(), None);
                    tail.push_back(line);
                    if tail.len() > 20 { tail.pop_front(); }
                }
                None => break,
            }
        }
    }
    let status = tokio::select! {
        _ = cancel.cancelled() => {
            let _ = child.kill().await;
            return Err(BuildError::Cancelled);
        }
        s = child.wait() => s.map_err(|source| BuildError::Io { context: format!("waiting for {}", program.display()), source })?,
    };
    if !status.success() {
        let output_tail = tail.into_iter().collect::<Vec<_>>().join("\n");
        let known = known
            .into_iter()
            .map(|k| (k, k.explain(platform_dir)))
            .collect();
        return Err(BuildError::Compile {
            diagnostics,
            output_tail,
            known,
        });
    }
    Ok(diagnostics)
}
