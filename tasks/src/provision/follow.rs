//! Following a DevKit's serial output during provisioning: a blocking reader thread that feeds
//! [`crate::logs::EventParser`] and forwards its events.

use crate::console::{SerialTransport, Transport, DEFAULT_BAUD};
use crate::logs::{EventParser, LogEvent};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the reader thread reports.
pub(crate) enum Followed {
    /// The port is open: output from now on is seen.
    Opened,
    Event(LogEvent),
    /// The port could not be opened or went away.
    Gone(String),
}

/// A running follower; stops (and closes the port) when dropped.
pub(crate) struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub rx: mpsc::UnboundedReceiver<Followed>,
}

impl Follower {
    pub fn start(port: PathBuf) -> Follower {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("provision-follow".into())
            .spawn(move || run(port, tx, flag))
            .ok();
        Follower { stop, thread, rx }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(port: PathBuf, tx: mpsc::UnboundedSender<Followed>, stop: Arc<AtomicBool>) {
    let mut transport = match SerialTransport::open(&port, DEFAULT_BAUD) {
        Ok(t) => t,
        Err(e) => {
            let _ = tx.send(Followed::Gone(format!("cannot open {}: {e} (is another program, such as a serial monitor, holding the port?)", port.display())));
            return;
        }
    };
    let _ = tx.send(Followed::Opened);
    let mut parser = EventParser::new();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match transport.read_timeout(&mut buf, Duration::from_millis(100)) {
            Ok(0) => {}
            Ok(n) => {
                for e in parser.push_bytes(&buf[..n]) {
                    if tx.send(Followed::Event(e)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Followed::Gone(format!("{} went away: {e}", port.display())));
                return;
            }
        }
    }
}
