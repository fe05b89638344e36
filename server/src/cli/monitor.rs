//! `devkit monitor`: watch a DevKit's serial output, as raw text or log events.

use super::{CliError, CliResult};
use std::io::Write;
use std::path::PathBuf;
use tasks::logs::EventParser;
use tasks::monitor::{Monitor, MonitorEvent, MonitorOptions, PortStatus};
use tokio::sync::broadcast::error::RecvError;

#[derive(clap::Args)]
pub struct Args {
    /// Serial port (see `devkit ports`).
    #[arg(long)]
    pub port: PathBuf,
    /// Serial speed (the JSON name is `baudRate`).
    #[arg(long, default_value_t = tasks::console::DEFAULT_BAUD)]
    pub baud: u32,
    /// Prefix every line with the local time.
    #[arg(long)]
    pub timestamps: bool,
    /// Also append every line to this file.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Print log events as JSON lines instead of the raw text.
    #[arg(long)]
    pub events: bool,
}

pub fn run(args: Args) -> CliResult {
    let opts = MonitorOptions {
        baud: args.baud,
        timestamps: args.timestamps,
        log_file: args.log_file.clone(),
        reconnect: true,
        line_events: args.timestamps && !args.events,
        ..Default::default()
    };
    // Exit code, flag and next actions from the error's `DomainError` (as the daemon's).
    let (monitor, mut rx) = Monitor::open_subscribed(&args.port, opts).map_err(CliError::from)?;
    eprintln!(
        "monitoring {} at {} baud (Ctrl-C to stop)",
        args.port.display(),
        args.baud
    );
    // Standard output failing (a closed pipe, a full disk) ends the monitor as it ends any
    // command (`super::stdout_failed`), once the port is closed.
    let failed = super::runtime().block_on(async move {
        let mut parser = EventParser::new();
        let mut out = std::io::stdout();
        // Whether the log file is (still) written: it has what the display skips.
        let mut logging = args.log_file.is_some();
        let shutdown = super::wait_for_shutdown();
        tokio::pin!(shutdown);
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                _ = &mut shutdown => break,
            };
            let written = match ev {
                Ok(MonitorEvent::Data(bytes)) => {
                    if args.events {
                        parser.push_bytes(&bytes).iter().try_for_each(|e| {
                            writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default())
                        })
                    } else if !args.timestamps {
                        out.write_all(&bytes)
                    } else {
                        Ok(())
                    }
                }
                Ok(MonitorEvent::Line(l)) if !args.events && args.timestamps => {
                    writeln!(out, "[{}] {}", l.timestamp.unwrap_or_default(), l.text)
                }
                Ok(MonitorEvent::Line(_)) => Ok(()),
                Ok(MonitorEvent::Status(s)) => {
                    let msg = match &s {
                        PortStatus::Disconnected { reason } => {
                            format!("port disconnected ({reason}); waiting for it to come back")
                        }
                        PortStatus::Reconnected { path } => format!("reconnected to {path}"),
                        PortStatus::Paused => "paused (another task is using the port)".into(),
                        PortStatus::Resumed => "resumed".into(),
                        PortStatus::Closed => break,
                    };
                    eprintln!("-- {msg}");
                    Ok(())
                }
                Ok(MonitorEvent::LogFileFailed(failed)) => {
                    logging = false;
                    eprintln!("-- warning: {failed} (device output is still shown)");
                    Ok(())
                }
                Err(RecvError::Lagged(n)) => {
                    let whole = if logging {
                        " (the log file has everything)"
                    } else {
                        ""
                    };
                    eprintln!("-- display fell behind: {n} chunks skipped{whole}");
                    Ok(())
                }
                Err(RecvError::Closed) => break,
            };
            if let Err(e) = written.and_then(|()| out.flush()) {
                return Some(e);
            }
        }
        if args.events {
            for e in parser.finish() {
                if let Err(e) = writeln!(out, "{}", serde_json::to_string(&e).unwrap_or_default()) {
                    return Some(e);
                }
            }
        }
        None
    });
    monitor.close();
    if let Some(e) = failed {
        super::stdout_failed(&e);
    }
    Ok(())
}
