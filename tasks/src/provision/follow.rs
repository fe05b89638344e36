//! Following a DevKit's output during provisioning: a [`crate::monitor::Monitor`] on the port
//! (one owner, reconnects when the port comes back after a reset) whose lines go through
//! [`crate::logs::EventParser`].

use crate::logs::{EventParser, LogEvent};
use crate::monitor::{Monitor, MonitorEvent, MonitorOptions, PortStatus};
use std::collections::VecDeque;
use std::path::Path;
use tokio::sync::broadcast;

/// What following the port yields.
pub(crate) enum Followed {
    Event(LogEvent),
    /// The port went away and is being reopened (a reset, USB re-enumeration).
    Reconnecting(String),
    /// The monitor stopped.
    Gone(String),
}

pub(crate) struct Follower {
    /// The monitor this follower opened (`None` when it follows one it borrowed).
    monitor: Option<Monitor>,
    port: String,
    rx: broadcast::Receiver<MonitorEvent>,
    parser: EventParser,
    pending: VecDeque<LogEvent>,
}

impl Follower {
    /// Open the port now: output from this moment on is seen.
    pub fn open(port: &Path) -> Result<Follower, String> {
        let (monitor, rx) =
            Monitor::open_subscribed(port, MonitorOptions::default()).map_err(|e| {
                format!("{e} (is another program, such as a serial monitor, holding the port?)")
            })?;
        Ok(Follower {
            port: port.display().to_string(),
            monitor: Some(monitor),
            rx,
            parser: EventParser::new(),
            pending: VecDeque::new(),
        })
    }

    /// Follow a monitor someone else owns (the daemon's), from this moment on.
    pub fn subscribed(port: &Path, rx: broadcast::Receiver<MonitorEvent>) -> Follower {
        Follower {
            port: port.display().to_string(),
            monitor: None,
            rx,
            parser: EventParser::new(),
            pending: VecDeque::new(),
        }
    }

    /// The next event (cancel-safe: nothing is lost when the future is dropped).
    pub async fn next(&mut self) -> Followed {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Followed::Event(e);
            }
            match self.rx.recv().await {
                // An owned monitor sends lines; a borrowed one (the daemon's) may send only bytes.
                Ok(MonitorEvent::Line(line)) if self.monitor.is_some() => {
                    self.pending.extend(self.parser.push_line(&line.text))
                }
                Ok(MonitorEvent::Data(bytes)) if self.monitor.is_none() => {
                    self.pending.extend(self.parser.push_bytes(&bytes))
                }
                Ok(MonitorEvent::Status(PortStatus::Disconnected { reason })) => {
                    return Followed::Reconnecting(reason)
                }
                Ok(MonitorEvent::Status(PortStatus::Closed)) => {
                    return Followed::Gone(format!("{} was closed", self.port))
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Followed::Gone(format!("the monitor of {} stopped", self.port))
                }
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some(m) = &self.monitor {
            m.close();
        }
    }
}
