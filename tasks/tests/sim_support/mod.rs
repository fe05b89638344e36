//! Helpers shared by the serial tests: a virtual DevKit in a temp dir and bounded reads.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tasks::sim::{SimEvent, SimOptions, VirtualDevKit};

pub const UDS: &str = "4b8e2f0c9a7d61e3b5c4a29f8d7e6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b";

pub fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dice-vectors")
        .join(case)
        .join(file)
}

pub struct Sim {
    pub dir: tempfile::TempDir,
    pub sim: Option<VirtualDevKit>,
    pub events: std::sync::mpsc::Receiver<SimEvent>,
}

impl Sim {
    pub fn start(config_mode: bool) -> Sim {
        Self::start_with(config_mode, |_| {})
    }

    pub fn start_with(config_mode: bool, tweak: impl FnOnce(&mut SimOptions)) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let (sim, events) = start_in(dir.path(), config_mode, tweak);
        Sim {
            dir,
            sim: Some(sim),
            events,
        }
    }

    pub fn port(&self) -> PathBuf {
        self.sim.as_ref().unwrap().port_path().to_path_buf()
    }

    pub fn eeprom(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("eeprom.json")).unwrap())
            .unwrap()
    }

    /// Wait for a sim event matching `pred`.
    pub fn wait_event(&self, pred: impl Fn(&SimEvent) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(e) = self.events.recv_timeout(Duration::from_millis(100)) {
                if pred(&e) {
                    return;
                }
            }
        }
        panic!("sim event not seen within 10 s");
    }
}

pub fn start_in(
    dir: &Path,
    config_mode: bool,
    tweak: impl FnOnce(&mut SimOptions),
) -> (VirtualDevKit, std::sync::mpsc::Receiver<SimEvent>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let mut opts = SimOptions::new(dir);
    opts.config_mode = config_mode;
    opts.mac = Some("c0bdd1a2b3c4".into());
    opts.on_event = Some(std::sync::Arc::new(move |e: &SimEvent| {
        let _ = tx.lock().unwrap().send(e.clone());
    }));
    tweak(&mut opts);
    (VirtualDevKit::start(opts).unwrap(), rx)
}

/// A non-blocking byte stream to the device.
pub trait Stream: Read + Write + Send {}
impl<S: Read + Write + Send> Stream for S {}

/// A raw reader/writer on the port, like a terminal program: the pty, or the
/// `tcp://127.0.0.1:PORT` of a virtual DevKit on the TCP transport.
pub struct Term {
    pub file: Box<dyn Stream>,
    pub seen: Vec<u8>,
}

impl Term {
    pub fn open(path: &Path) -> Term {
        let name = path.to_string_lossy();
        let file: Box<dyn Stream> = match name.strip_prefix("tcp://") {
            Some(addr) => {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                // The virtual DevKit's first byte says the connection is its client's (a
                // serial port opened through `TcpPort` consumes it; this raw reader must too).
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut first = [0u8; 1];
                s.read_exact(&mut first).unwrap();
                assert_eq!(first[0], tasks::console::tcp::ACCEPTED, "the port was taken");
                s.set_nonblocking(true).unwrap();
                Box::new(s)
            }
            None => Box::new(open_tty(path)),
        };
        Term {
            file,
            seen: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.file.write_all(bytes).unwrap();
    }

    /// Read until `needle` appears after `from`; returns the text from `from` to its end.
    pub fn until(&mut self, needle: &[u8]) -> String {
        let start = self.seen.len();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = self.seen[start..]
                .windows(needle.len())
                .position(|w| w == needle)
            {
                let end = start + i + needle.len();
                let text = String::from_utf8_lossy(&self.seen[start..end]).into_owned();
                self.seen.drain(..end);
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "did not see {:?} within 10 s; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.seen[start..])
            );
            match self.file.read(&mut buf) {
                Ok(n) if n > 0 => self.seen.extend_from_slice(&buf[..n]),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

#[cfg(unix)]
fn open_tty(path: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)
        .unwrap()
}

#[cfg(not(unix))]
fn open_tty(path: &Path) -> std::fs::File {
    panic!(
        "{}: only tcp:// ports can be opened by tests here",
        path.display()
    )
}

/// A bare pty pair in raw mode: the test plays the device on the master.
#[cfg(unix)]
pub fn raw_pty() -> (std::fs::File, PathBuf) {
    let pair = nix::pty::openpty(None, None).unwrap();
    let mut t = nix::sys::termios::tcgetattr(&pair.slave).unwrap();
    nix::sys::termios::cfmakeraw(&mut t);
    nix::sys::termios::tcsetattr(&pair.slave, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
    let path = nix::unistd::ttyname(&pair.slave).unwrap();
    (std::fs::File::from(pair.master), path)
}

/// A bare device end where there are no ptys (Windows): a loopback TCP listener whose port
/// name is `tcp://127.0.0.1:PORT`; the first write accepts the client (which connected when it
/// opened the port) and writes to it.
#[cfg(not(unix))]
pub struct TcpDevice {
    listener: std::net::TcpListener,
    conn: Option<std::net::TcpStream>,
}

#[cfg(not(unix))]
impl Write for TcpDevice {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.conn.is_none() {
            self.conn = Some(self.listener.accept()?.0);
        }
        self.conn.as_mut().map_or(Ok(0), |c| c.write(buf))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.conn.as_mut().map_or(Ok(()), |c| c.flush())
    }
}

/// A bare device end and the port name clients open: the test plays the device by writing
/// to it (a raw pty on Unix, [`TcpDevice`] elsewhere).
#[cfg(unix)]
pub fn raw_device() -> (impl Write, PathBuf) {
    raw_pty()
}

/// A bare device end and the port name clients open: the test plays the device by writing
/// to it (a raw pty on Unix, [`TcpDevice`] elsewhere).
#[cfg(not(unix))]
pub fn raw_device() -> (impl Write, PathBuf) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let path = PathBuf::from(format!("tcp://{}", listener.local_addr().unwrap()));
    (
        TcpDevice {
            listener,
            conn: None,
        },
        path,
    )
}

/// Make a virtual DevKit reachable at the same port name across restarts: a `--link` symlink
/// to its pty on Unix (`at` is the link), a fixed loopback TCP port elsewhere (picked now;
/// `at` is unused). Returns the port name clients open.
pub fn stable_port(opts: &mut SimOptions, at: &Path, tcp_port: u16) -> PathBuf {
    if cfg!(unix) {
        opts.link = Some(at.to_path_buf());
        at.to_path_buf()
    } else {
        opts.transport = tasks::sim::SimTransport::Tcp { port: tcp_port };
        PathBuf::from(format!("tcp://127.0.0.1:{tcp_port}"))
    }
}

/// A loopback TCP port free right now.
pub fn free_tcp_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Collect monitor events until `pred` says stop (bounded).
pub fn collect_until(
    rx: &mut tokio::sync::broadcast::Receiver<tasks::monitor::MonitorEvent>,
    mut pred: impl FnMut(&tasks::monitor::MonitorEvent) -> bool,
) -> Vec<tasks::monitor::MonitorEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(ev) => {
                let stop = pred(&ev);
                seen.push(ev);
                if stop {
                    return seen;
                }
            }
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                assert!(
                    Instant::now() < deadline,
                    "condition not met within 10 s; saw {seen:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("subscriber: {e}; saw {seen:?}"),
        }
    }
}
