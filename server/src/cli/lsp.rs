//! `devkit lsp`: the daemon the VS Code extension talks to over stdio.
//!
//! Logs go to stderr (stdout carries the protocol), at `info` unless `RUST_LOG` says
//! otherwise. tower-lsp-server traces every message in and out at `trace` level, params
//! included, and params carry secrets (UDS, Wi-Fi password, connection strings): those events
//! are dropped whatever `RUST_LOG` says.

use super::CliResult;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

#[derive(clap::Args)]
pub struct Args {
    /// Accepted for compatibility with vscode-languageclient (stdio is the only transport).
    #[arg(long, hide = true)]
    stdio: bool,
}

/// Whether an event may be logged: never tower-lsp-server's message dumps.
fn safe_to_log(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    if !target.starts_with("tower_lsp_server") {
        return true;
    }
    // codec: "<- {message}" / "-> {message}"; client: "supressing message: {message}".
    !(target.starts_with("tower_lsp_server::codec") || *meta.level() >= tracing::Level::DEBUG)
}

fn init_tracing() {
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true)
        .with_filter(env)
        .with_filter(filter_fn(safe_to_log));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

pub fn run(_args: Args) -> CliResult {
    init_tracing();
    let runtime = super::runtime();
    let clean = runtime.block_on(crate::lsp::serve_stdio());
    tracing::info!("exit");
    // Do not wait for blocking work (a stuck serial read) to finish: the client asked us to go.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    if clean {
        Ok(())
    } else {
        Err(super::CliError::Failed(anyhow::anyhow!(
            "exit without shutdown"
        )))
    }
}
