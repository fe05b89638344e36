//! The serial monitor: one owner per port, any number of subscribers, pause/resume for
//! exclusive users, reconnect when the port comes back.
//!
//! A [`Monitor`] owns a port on a dedicated thread (serial I/O is blocking). What it reads
//! goes through one pipeline: every chunk is broadcast as [`MonitorEvent::Data`], complete
//! lines (CR, LF and CRLF normalised; partial lines kept until their end arrives) as
//! [`MonitorEvent::Line`] with an optional timestamp, and lines are appended to the log file
//! when one is set. A log file that cannot be written (a full disk) is reported once, as
//! [`MonitorEvent::LogFileFailed`], and written no more; monitoring goes on. Subscribers are `tokio::sync::broadcast` receivers: a subscriber that
//! falls more than `capacity` events behind gets `Lagged` (the log file and other subscribers
//! never lose anything).
//!
//! Exclusive users (console commands now, uploads later) call [`Monitor::pause`] (or
//! [`PortRegistry::exclusive`]) and get an [`ExclusivePort`]: the monitor stops reading and
//! lends its open port; what the exclusive user reads is still fed to the pipeline, and what
//! nobody reads stays in the kernel buffer until the monitor resumes (when the
//! `ExclusivePort` is dropped). No byte is lost either way.
//!
//! When the port disappears (board reset, USB re-enumeration, the virtual DevKit restarting),
//! the monitor reports [`PortStatus::Disconnected`] and reopens the same path every 200 ms,
//! or the path now carrying the same USB serial number, reporting
//! [`PortStatus::Reconnected`].
//!
//! The daemon holds a [`PortRegistry`]: open/close/send/subscribe by path, and run exclusive
//! work on a port whether or not a monitor currently owns it.

pub mod framing;
pub mod ports;

use crate::console::{read_port, OpenFailure, SerialTransport, Transport};
use crate::progress::CancellationToken;
use bytes::Bytes;
use framing::LineFramer;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// The most one [`Monitor::send`] carries: the firmware's longest line
/// ([`crate::console::MAX_LINE`]) and a line ending. The DevKit reads a line into a buffer of
/// that size; anything longer only overflows it, and a send of tens of kilobytes to a device
/// echoing every byte could wedge the port.
pub const MAX_SEND: usize = crate::console::MAX_LINE + 2;

/// How long the device may take to accept one send: a send that has not gone out by then
/// fails, and the port is free for the next one.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How to monitor a port.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    pub baud: u32,
    /// Stamp lines with the local time (`HH:MM:SS.mmm`).
    pub timestamps: bool,
    /// Append lines to this file (created if needed).
    pub log_file: Option<PathBuf>,
    /// Reopen the port when it disappears.
    pub reconnect: bool,
    /// Events a subscriber may fall behind before it lags.
    pub capacity: usize,
    /// Broadcast [`MonitorEvent::Line`] events (a chatty device makes one per line; turn
    /// them off when only raw [`MonitorEvent::Data`] is consumed). The log file gets lines
    /// either way.
    pub line_events: bool,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            baud: crate::console::DEFAULT_BAUD,
            timestamps: false,
            log_file: None,
            reconnect: true,
            capacity: 4096,
            line_events: true,
        }
    }
}

/// One complete line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorLine {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// The port's state changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum PortStatus {
    Disconnected {
        reason: String,
    },
    Reconnected {
        path: String,
    },
    /// An exclusive user holds the port.
    Paused,
    Resumed,
    Closed,
}

/// What subscribers receive.
#[derive(Debug, Clone)]
pub enum MonitorEvent {
    /// Bytes as received.
    Data(Bytes),
    /// A complete line.
    Line(MonitorLine),
    Status(PortStatus),
    /// The log file could not be written (once per monitor): what it holds stays, nothing
    /// more is appended, the device's output still reaches subscribers.
    LogFileFailed(LogFileFailed),
}

/// A write to the monitor's log file failed (a full disk, a disk removed, a quota).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write the log file {}: {reason}; nothing more is written to it", path.display())]
pub struct LogFileFailed {
    pub path: PathBuf,
    /// The OS error.
    pub reason: String,
}

/// Errors of the monitor.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot open serial port {port}: {source}")]
    Open {
        port: String,
        #[source]
        source: serialport::Error,
    },
    #[error("cannot open log file {path}: {source}")]
    LogFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("serial port {0} is not connected right now (waiting for it to come back)")]
    NotConnected(String),
    #[error("the monitor of {0} is closed")]
    Closed(String),
    #[error("serial port {port}: {source}")]
    Io {
        port: String,
        #[source]
        source: io::Error,
    },
    /// What to send was refused before anything was written.
    #[error("{0} (nothing was sent)")]
    Refused(crate::error::InvalidInput),
    #[error("cancelled")]
    Cancelled,
}

impl crate::error::DomainError for MonitorError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            MonitorError::Open { source, .. } => OpenFailure::of(source).kind(),
            // The caller named a file the monitor cannot log to (CLI exit 2).
            MonitorError::LogFile { .. } => ErrorKind::InvalidInput,
            // No monitor on that port: nothing to send to or close.
            MonitorError::Closed(_) => ErrorKind::NotFound,
            MonitorError::NotConnected(_) | MonitorError::Io { .. } => ErrorKind::Device,
            MonitorError::Refused(_) => ErrorKind::InvalidInput,
            MonitorError::Cancelled => ErrorKind::Cancelled,
        }
    }
    fn invalid_input(&self) -> Option<&crate::error::InvalidInput> {
        match self {
            MonitorError::Refused(i) => Some(i),
            _ => None,
        }
    }
    fn input(&self) -> Option<crate::error::Input> {
        match self {
            MonitorError::Open { source, .. } => OpenFailure::of(source).input(),
            MonitorError::Refused(i) => Some(i.input),
            _ => None,
        }
    }
    fn next_actions(&self) -> Vec<crate::error::NextStep> {
        use crate::error::{NextAction, NextStep};
        match self {
            MonitorError::Open { source, .. } => OpenFailure::of(source).next_actions(),
            // The port comes back by itself (reset, re-enumeration): try again shortly.
            MonitorError::NotConnected(_) => vec![NextStep::new(NextAction::Retry)],
            MonitorError::Io { .. } => vec![
                NextStep::new(NextAction::SelectPort),
                NextStep::new(NextAction::Retry),
            ],
            MonitorError::LogFile { .. }
            | MonitorError::Closed(_)
            | MonitorError::Refused(_)
            | MonitorError::Cancelled => Vec::new(),
        }
    }
}

/// Where the log file's lines go.
type LogWriter = io::BufWriter<Box<dyn Write + Send>>;

/// The log file being written.
struct LogSink {
    path: PathBuf,
    out: LogWriter,
}

struct Pipeline {
    framer: LineFramer,
    timestamps: bool,
    line_events: bool,
    log: Option<LogSink>,
    tx: broadcast::Sender<MonitorEvent>,
}

impl Pipeline {
    fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let _ = self
            .tx
            .send(MonitorEvent::Data(Bytes::copy_from_slice(bytes)));
        for line in self.framer.push(bytes) {
            self.line(line);
        }
        self.write_log(|log| log.flush());
    }

    /// Write to the log file, if it is still written: the first failure is reported
    /// ([`MonitorEvent::LogFileFailed`]) and ends the logging. Retrying would fail on every
    /// line (a disk stays full) or leave a log with holes nobody knows of.
    fn write_log(&mut self, write: impl FnOnce(&mut LogWriter) -> io::Result<()>) {
        let Some(log) = &mut self.log else {
            return;
        };
        let Err(e) = write(&mut log.out) else {
            return;
        };
        if let Some(log) = self.log.take() {
            // What is still buffered is dropped, not written again on drop.
            let _ = log.out.into_parts();
            let _ = self.tx.send(MonitorEvent::LogFileFailed(LogFileFailed {
                path: log.path,
                reason: e.to_string(),
            }));
        }
    }

    fn line(&mut self, text: String) {
        let timestamp = self.timestamps.then(now_stamp);
        self.write_log(|log| match &timestamp {
            Some(t) => writeln!(log, "[{t}] {text}"),
            None => writeln!(log, "{text}"),
        });
        if self.line_events {
            let _ = self
                .tx
                .send(MonitorEvent::Line(MonitorLine { text, timestamp }));
        }
    }

    fn finish(&mut self) {
        if let Some(l) = self.framer.finish() {
            self.line(l);
        }
        self.write_log(|log| log.flush());
    }

    fn status(&self, s: PortStatus) {
        let _ = self.tx.send(MonitorEvent::Status(s));
    }
}

/// Write `data` to `port` piece by piece within `timeout`, stopping when `cancel` is
/// cancelled (an `Interrupted` error). Between pieces what the device sent (its echo) is read
/// and given to `received`: a device that echoes while the monitor writes never waits on a
/// monitor that waits on it.
fn write_within(
    port: &mut dyn serialport::SerialPort,
    data: &[u8],
    timeout: Duration,
    cancel: &CancellationToken,
    received: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    let mut rest = data;
    while !rest.is_empty() {
        if cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the device took {} of {} bytes within {:?}; the rest was not sent",
                    data.len() - rest.len(),
                    data.len(),
                    timeout
                ),
            ));
        }
        let piece = &rest[..rest.len().min(64)];
        let _ = port.set_timeout(Duration::from_millis(20));
        match port.write(piece) {
            Ok(n) => rest = &rest[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
        let n = read_port(port, &mut buf, Duration::from_millis(1))?;
        received(&buf[..n]);
    }
    port.flush()
}

/// Local wall-clock time `HH:MM:SS.mmm` (UTC when the local offset is unknown).
pub fn now_stamp() -> String {
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let fmt = time::macros::format_description!("[hour]:[minute]:[second].[subsecond digits:3]");
    now.format(&fmt).unwrap_or_default()
}

type Port = Box<dyn serialport::SerialPort>;

enum Cmd {
    Send(
        Vec<u8>,
        CancellationToken,
        mpsc::Sender<Result<(), MonitorError>>,
    ),
    Pause(mpsc::Sender<Result<ExclusivePort, MonitorError>>),
    Close,
}

/// The port lent to an exclusive user. Reads are also fed to the monitor's subscribers and
/// log; dropping it gives the port back and the monitor resumes.
pub struct ExclusivePort {
    port: Option<Port>,
    name: String,
    tee: Option<Arc<Mutex<Pipeline>>>,
    give_back: Option<mpsc::Sender<Option<Port>>>,
    broken: bool,
}

impl ExclusivePort {
    /// A port opened for exclusive use without a monitor.
    fn standalone(port: Port, name: String) -> Self {
        ExclusivePort {
            port: Some(port),
            name,
            tee: None,
            give_back: None,
            broken: false,
        }
    }

    /// The port's path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The underlying serial port (for uploads that need modem lines or raw access).
    pub fn port_mut(&mut self) -> Option<&mut Port> {
        self.port.as_mut()
    }
}

impl Transport for ExclusivePort {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let port = self
            .port
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "port closed"))?;
        match read_port(&mut **port, buf, timeout) {
            Ok(n) => {
                if let Some(tee) = &self.tee {
                    if let Ok(mut p) = tee.lock() {
                        p.feed(&buf[..n]);
                    }
                }
                Ok(n)
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let port = self
            .port
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "port closed"))?;
        let r = port.write_all(data).and_then(|_| port.flush());
        if r.is_err() {
            self.broken = true;
        }
        r
    }
}

impl Drop for ExclusivePort {
    fn drop(&mut self) {
        if let Some(tx) = self.give_back.take() {
            let port = if self.broken { None } else { self.port.take() };
            let _ = tx.send(port);
        }
    }
}

/// The owner of one serial port.
pub struct Monitor {
    path: PathBuf,
    tx: broadcast::Sender<MonitorEvent>,
    cmds: Mutex<mpsc::Sender<Cmd>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn open_port(path: &Path, baud: u32) -> Result<Port, MonitorError> {
    SerialTransport::open(path, baud)
        .map(|t| t.0)
        .map_err(|source| MonitorError::Open {
            port: path.display().to_string(),
            source,
        })
}

impl Monitor {
    /// Open `path` and start monitoring it. Fails when the port cannot be opened now.
    /// Subscribers added later miss what arrived before: use [`Monitor::open_subscribed`] to
    /// see everything from the first byte (a virtual DevKit boots as soon as it is opened).
    pub fn open(path: &Path, opts: MonitorOptions) -> Result<Monitor, MonitorError> {
        Self::open_subscribed(path, opts).map(|(m, _)| m)
    }

    /// Open `path` with a first subscriber that sees everything from the first byte.
    ///
    /// The log file (`opts.log_file`) is appended to; a new one is created mode 0600 (device
    /// output can hold connection strings a sketch prints); a FIFO or device is refused.
    pub fn open_subscribed(
        path: &Path,
        opts: MonitorOptions,
    ) -> Result<(Monitor, broadcast::Receiver<MonitorEvent>), MonitorError> {
        let log = match &opts.log_file {
            Some(p) => Some(LogSink {
                path: p.clone(),
                out: io::BufWriter::new(Box::new(open_log_file(p)?)),
            }),
            None => None,
        };
        let port = open_port(path, opts.baud)?;
        let usb_serial = ports::usb_serial_of(path);
        let (tx, first) = broadcast::channel(opts.capacity.max(16));
        let pipeline = Arc::new(Mutex::new(Pipeline {
            framer: LineFramer::new(),
            timestamps: opts.timestamps,
            line_events: opts.line_events,
            log,
            tx: tx.clone(),
        }));
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let reader = Reader {
            path: path.to_path_buf(),
            opts,
            usb_serial,
            port: Some(port),
            pipeline,
            cmds: cmd_rx,
        };
        let thread = std::thread::Builder::new()
            .name(format!("monitor {}", path.display()))
            .spawn(move || reader.run())
            .map_err(|source| MonitorError::Io {
                port: path.display().to_string(),
                source,
            })?;
        Ok((
            Monitor {
                path: path.to_path_buf(),
                tx,
                cmds: Mutex::new(cmd_tx),
                thread: Mutex::new(Some(thread)),
            },
            first,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new subscriber: it receives what arrives from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MonitorEvent> {
        self.tx.subscribe()
    }

    fn cmd(&self, c: Cmd) -> Result<(), MonitorError> {
        self.cmds
            .lock()
            .map_err(|_| MonitorError::Closed(self.name()))?
            .send(c)
            .map_err(|_| MonitorError::Closed(self.name()))
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Write bytes to the device (blocking until written): at most [`MAX_SEND`] bytes, written
    /// within [`SEND_TIMEOUT`].
    pub fn send(&self, data: &[u8]) -> Result<(), MonitorError> {
        self.send_cancellable(data, &CancellationToken::new())
    }

    /// [`send`](Self::send) that `cancel` stops: this returns at once, and the monitor stops
    /// writing before its next piece (what went out is not taken back).
    pub fn send_cancellable(
        &self,
        data: &[u8],
        cancel: &CancellationToken,
    ) -> Result<(), MonitorError> {
        if data.len() > MAX_SEND {
            return Err(MonitorError::Refused(crate::error::InvalidInput::new(
                crate::error::Input::Command,
                format!(
                    "is {} bytes with its line ending; the DevKit reads lines of at most {} bytes",
                    data.len(),
                    crate::console::MAX_LINE
                ),
            )));
        }
        let (tx, rx) = mpsc::channel();
        self.cmd(Cmd::Send(data.to_vec(), cancel.clone(), tx))?;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(r) => return r,
                Err(mpsc::RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                    return Err(MonitorError::Cancelled)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(MonitorError::Closed(self.name()))
                }
            }
        }
    }

    /// Stop reading and lend the port to an exclusive user (blocking, typically < 20 ms).
    /// The monitor resumes when the [`ExclusivePort`] is dropped.
    pub fn pause(&self) -> Result<ExclusivePort, MonitorError> {
        let (tx, rx) = mpsc::channel();
        self.cmd(Cmd::Pause(tx))?;
        rx.recv().map_err(|_| MonitorError::Closed(self.name()))?
    }

    /// Stop monitoring and close the port (the partial line is flushed to subscribers/log).
    pub fn close(&self) {
        let _ = self.cmd(Cmd::Close);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.close();
    }
}

struct Reader {
    path: PathBuf,
    opts: MonitorOptions,
    usb_serial: Option<String>,
    port: Option<Port>,
    pipeline: Arc<Mutex<Pipeline>>,
    cmds: mpsc::Receiver<Cmd>,
}

impl Reader {
    fn status(&self, s: PortStatus) {
        if let Ok(p) = self.pipeline.lock() {
            p.status(s);
        }
    }

    fn run(mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            loop {
                match self.cmds.try_recv() {
                    Ok(Cmd::Close) | Err(mpsc::TryRecvError::Disconnected) => return self.finish(),
                    Ok(Cmd::Send(data, cancel, reply)) => {
                        let r = match self.port.as_mut() {
                            Some(p) => {
                                let pipeline = &self.pipeline;
                                write_within(&mut **p, &data, SEND_TIMEOUT, &cancel, &mut |read| {
                                    if let Ok(mut pl) = pipeline.lock() {
                                        pl.feed(read);
                                    }
                                })
                                .map_err(|source| {
                                    match source.kind() {
                                        io::ErrorKind::Interrupted => MonitorError::Cancelled,
                                        _ => MonitorError::Io {
                                            port: self.path.display().to_string(),
                                            source,
                                        },
                                    }
                                })
                            }
                            None => {
                                Err(MonitorError::NotConnected(self.path.display().to_string()))
                            }
                        };
                        let _ = reply.send(r);
                    }
                    Ok(Cmd::Pause(reply)) => self.lend(reply),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            let Some(port) = self.port.as_mut() else {
                if !self.opts.reconnect {
                    return self.finish();
                }
                std::thread::sleep(Duration::from_millis(200));
                self.reconnect();
                continue;
            };
            match read_port(&mut **port, &mut buf, Duration::from_millis(20)) {
                Ok(n) => {
                    if let Ok(mut p) = self.pipeline.lock() {
                        p.feed(&buf[..n]);
                    }
                }
                Err(e) => {
                    self.port = None;
                    if let Ok(mut p) = self.pipeline.lock() {
                        p.finish();
                    }
                    self.status(PortStatus::Disconnected {
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    fn lend(&mut self, reply: mpsc::Sender<Result<ExclusivePort, MonitorError>>) {
        let Some(port) = self.port.take() else {
            let _ = reply.send(Err(MonitorError::NotConnected(
                self.path.display().to_string(),
            )));
            return;
        };
        let (give_back, returned) = mpsc::channel();
        let lent = ExclusivePort {
            port: Some(port),
            name: self.path.display().to_string(),
            tee: Some(self.pipeline.clone()),
            give_back: Some(give_back),
            broken: false,
        };
        self.status(PortStatus::Paused);
        if reply.send(Ok(lent)).is_err() {
            // The requester went away: the ExclusivePort was dropped and sent the port back.
        }
        self.port = returned.recv().ok().flatten();
        self.status(PortStatus::Resumed);
        if self.port.is_none() {
            self.status(PortStatus::Disconnected {
                reason: "the port failed while lent out".into(),
            });
        }
    }

    fn reconnect(&mut self) {
        let mut candidate = self.path.clone();
        if let Some(sn) = &self.usb_serial {
            if !self.path.exists() {
                match ports::find_by_usb_serial(sn) {
                    Some(p) => candidate = PathBuf::from(p),
                    None => return,
                }
            } else if ports::usb_serial_of(&self.path)
                .as_deref()
                .is_some_and(|now| now != sn)
            {
                return; // another device took this path
            }
        }
        if let Ok(port) = open_port(&candidate, self.opts.baud) {
            self.port = Some(port);
            self.status(PortStatus::Reconnected {
                path: candidate.display().to_string(),
            });
        }
    }

    fn finish(&mut self) {
        self.port = None;
        if let Ok(mut p) = self.pipeline.lock() {
            p.finish();
            p.status(PortStatus::Closed);
        }
    }
}

/// The ports the daemon monitors, by path (as given). One monitor per port.
#[derive(Default)]
pub struct PortRegistry {
    monitors: Mutex<HashMap<PathBuf, Arc<Monitor>>>,
}

impl PortRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start monitoring `path`, or return the monitor that already owns it.
    pub fn open(&self, path: &Path, opts: MonitorOptions) -> Result<Arc<Monitor>, MonitorError> {
        self.open_subscribed(path, opts).map(|(m, _)| m)
    }

    /// Like [`open`](Self::open), with a subscriber that misses nothing the new monitor reads.
    pub fn open_subscribed(
        &self,
        path: &Path,
        opts: MonitorOptions,
    ) -> Result<(Arc<Monitor>, broadcast::Receiver<MonitorEvent>), MonitorError> {
        let mut map = self
            .monitors
            .lock()
            .map_err(|_| MonitorError::Closed(path.display().to_string()))?;
        if let Some(m) = map.get(path) {
            return Ok((m.clone(), m.subscribe()));
        }
        let (m, rx) = Monitor::open_subscribed(path, opts)?;
        let m = Arc::new(m);
        map.insert(path.to_path_buf(), m.clone());
        Ok((m, rx))
    }

    pub fn get(&self, path: &Path) -> Option<Arc<Monitor>> {
        self.monitors.lock().ok()?.get(path).cloned()
    }

    /// Stop monitoring `path`; false when it was not monitored.
    pub fn close(&self, path: &Path) -> bool {
        let m = self
            .monitors
            .lock()
            .ok()
            .and_then(|mut map| map.remove(path));
        match m {
            Some(m) => {
                m.close();
                true
            }
            None => false,
        }
    }

    /// Paths currently monitored.
    pub fn open_ports(&self) -> Vec<PathBuf> {
        self.monitors
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn subscribe(&self, path: &Path) -> Option<broadcast::Receiver<MonitorEvent>> {
        self.get(path).map(|m| m.subscribe())
    }

    /// Write to a monitored port.
    pub fn send(&self, path: &Path, data: &[u8]) -> Result<(), MonitorError> {
        self.get(path)
            .ok_or_else(|| MonitorError::Closed(path.display().to_string()))?
            .send(data)
    }

    /// Run `f` with exclusive use of the port: the monitor (if any) is paused and resumes
    /// afterwards; an unmonitored port is opened for the duration. Runs on a blocking thread.
    pub async fn exclusive<R, F>(&self, path: &Path, baud: u32, f: F) -> Result<R, MonitorError>
    where
        R: Send + 'static,
        F: FnOnce(&mut ExclusivePort) -> R + Send + 'static,
    {
        let monitor = self.get(path);
        let path = path.to_path_buf();
        let name = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let mut port = match monitor {
                Some(m) => m.pause()?,
                None => {
                    ExclusivePort::standalone(open_port(&path, baud)?, path.display().to_string())
                }
            };
            Ok(f(&mut port))
        })
        .await
        .map_err(|e| MonitorError::Io {
            port: name,
            source: io::Error::other(e.to_string()),
        })?
    }
}

/// Open (append) or create (owner-only: mode 0600, a protected DACL on Windows) the monitor's
/// log file: device output can hold what a sketch prints (connection strings, tokens). Only a
/// regular file: a FIFO would block here.
fn open_log_file(p: &Path) -> Result<std::fs::File, MonitorError> {
    let err = |source| MonitorError::LogFile {
        path: p.to_path_buf(),
        source,
    };
    crate::fsutil::check_output(p).map_err(|e| err(io::Error::other(e.to_string())))?;
    crate::fsutil::open_private_append(p).map_err(err)
}

#[cfg(test)]
mod error_tests {
    use super::MonitorError;
    use crate::error::{DomainError, ErrorKind, Input, NextAction};

    #[test]
    fn monitor_errors_say_their_kind_and_what_to_do() {
        let open = |k| MonitorError::Open {
            port: "/dev/ttyACM0".into(),
            source: serialport::Error::new(k, "x"),
        };
        let missing = open(serialport::ErrorKind::Io(std::io::ErrorKind::NotFound));
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(missing.input(), Some(Input::Port));
        assert_eq!(missing.exit_code(), 2);
        let denied = open(serialport::ErrorKind::Io(
            std::io::ErrorKind::PermissionDenied,
        ));
        assert_eq!(denied.kind(), ErrorKind::Device);
        assert_eq!(denied.next_actions()[0].action, NextAction::InstallUdevRule);
        let log = MonitorError::LogFile {
            path: "/x".into(),
            source: std::io::Error::other("denied"),
        };
        assert_eq!(log.exit_code(), 2);
        assert_eq!(MonitorError::Closed("p".into()).kind(), ErrorKind::NotFound);
    }
}

#[cfg(all(test, unix))]
mod log_file_tests {
    #[test]
    fn a_new_log_file_is_private_and_a_fifo_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("monitor.log");
        super::open_log_file(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(super::open_log_file(&fifo).is_err());
    }
}

#[cfg(test)]
mod send_tests {
    use super::*;

    /// A device that takes no more input: the write gives up at its deadline (and what the
    /// device says meanwhile is read), or at once when cancelled.
    #[test]
    fn a_write_the_device_does_not_take_times_out_or_is_cancelled() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let opening = std::thread::spawn(move || {
            crate::console::tcp::TcpPort::open(&addr, "tcp://stuck", 115_200, Duration::ZERO)
        });
        let (mut peer, _) = listener.accept().unwrap();
        peer.write_all(b"\0echo").unwrap(); // taken, then some output; it never reads
        let mut port = opening.join().unwrap().unwrap();
        let mut seen = Vec::new();
        let started = Instant::now();
        let e = write_within(
            &mut port,
            &vec![b'a'; 64 << 20],
            Duration::from_millis(300),
            &CancellationToken::new(),
            &mut |b| seen.extend_from_slice(b),
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("the rest was not sent"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(seen, b"echo");

        let cancel = CancellationToken::new();
        cancel.cancel();
        let e = write_within(&mut port, b"x", SEND_TIMEOUT, &cancel, &mut |_| {}).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
        drop(peer);
    }
}

#[cfg(test)]
mod log_failure_tests {
    use super::*;

    /// A log file on a full disk: every write fails, and the attempts are counted.
    struct Full(Arc<Mutex<usize>>);

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            *self.0.lock().unwrap() += 1;
            Err(io::Error::other("No space left on device"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_file_that_cannot_be_written_is_reported_once_and_the_output_still_flows() {
        let attempts = Arc::new(Mutex::new(0));
        let (tx, mut rx) = broadcast::channel(1024);
        let mut p = Pipeline {
            framer: LineFramer::new(),
            timestamps: false,
            line_events: true,
            log: Some(LogSink {
                path: "/mnt/full/serial.log".into(),
                out: io::BufWriter::new(Box::new(Full(attempts.clone()))),
            }),
            tx,
        };
        for _ in 0..100 {
            p.feed(b"Info: a line\r\n");
        }
        p.finish();
        let (mut failures, mut lines) = (Vec::new(), 0);
        while let Ok(e) = rx.try_recv() {
            match e {
                MonitorEvent::LogFileFailed(f) => failures.push(f),
                MonitorEvent::Line(_) => lines += 1,
                _ => {}
            }
        }
        assert_eq!(lines, 100, "the device's output still flows");
        assert_eq!(
            failures,
            [LogFileFailed {
                path: "/mnt/full/serial.log".into(),
                reason: "No space left on device".into()
            }],
            "reported once"
        );
        assert_eq!(*attempts.lock().unwrap(), 1, "not retried on every line");
        let shown = failures[0].to_string();
        assert!(
            shown.contains("/mnt/full/serial.log") && shown.contains("No space left"),
            "{shown}"
        );
    }
}
