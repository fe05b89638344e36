//! The virtual DevKit on a pseudo-terminal or a loopback TCP port: a test peer for everything
//! that talks to the serial port, and a product feature (learn and demo without hardware).
//!
//! [`VirtualDevKit::start`] opens its console ([`SimTransport`]: a pty on Unix by default, a
//! `tcp://127.0.0.1:PORT` port on Windows or on request) and runs the device on a dedicated
//! thread:
//! - it waits until a reader opens the port, then boots (after start and after every reset),
//!   so no boot output is lost;
//! - in configuration mode it speaks the console exactly as the firmware does
//!   (devkit-facts.md §2: echo, `*` masking after `set_wifipwd ` / `set_dps_uds `, quotes,
//!   backslash escapes, BS/DEL, TAB, the 1024-byte overflow, at most 4 words,
//!   `Error:Syntax error`, `Error:Invalid command: NAME`, and the firmware's quirk of storing
//!   a wrong-length UDS after printing `Invalid UDS.`);
//! - the secure-chip zones live in `<state-dir>/eeprom.json` (keys `wifi_ssid`, `wifi_pwd`,
//!   `az_iothub`, `dps_uds`, `az_iotdps`), written atomically, mode 0600;
//! - in user mode it prints the boot banner, `Info: DevKit MAC Address: <mac>`,
//!   `Info: DevKit Firmware Version: <X.Y.Z>`, then runs "the sketch" when an image is loaded
//!   (`<state-dir>/firmware/image.bin|image.map`): computes its DICE/RIoT identity with
//!   [`crate::identity`] from that image and the stored UDS, prints
//!   `DevKit alias certificate SHA-256: <HEX>`, needs a Wi-Fi SSID in its EEPROM (else it
//!   logs a Wi-Fi failure), and registers with DPS through
//!   [`crate::dps::device::register_like_device`] when `firmware/dps_config.json`
//!   ([`control::SimDpsConfig`]) exists, otherwise logs a realistic registration failure.
//!   The registration ID is `SimDpsConfig::registration_id`, else `az-<mac>v<x>v<y>v<z>`.
//!   Control requests wait while a registration runs.
//! - a control channel takes [`control::reset`] and [`control::load_image`] from other
//!   processes: a Unix socket `<state-dir>/control.sock` next to a pty, a loopback TCP port
//!   named in `<state-dir>/control.tcp` next to a TCP console (see [`control`]).
//!
//! The MAC address is kept in `<state-dir>/device.json` so a restarted virtual DevKit is the
//! same device (same registration ID, same identity).

pub mod console;
pub mod control;
mod device;
pub mod eeprom;
#[cfg(unix)]
mod pty;
pub mod transport;

pub use eeprom::EepromFault;
pub use transport::SimTransport;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The firmware (DevKit SDK) version a virtual DevKit reports unless told otherwise.
pub const DEFAULT_FIRMWARE_VERSION: &str = "1.6.2";

/// Errors starting a virtual DevKit.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Invalid option (the CLI exits 2).
    #[error(transparent)]
    Invalid(#[from] crate::error::InvalidInput),
    #[error("another virtual DevKit is already running with state directory {0}")]
    AlreadyRunning(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::DomainError for SimError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            SimError::Invalid(_) => crate::error::ErrorKind::InvalidInput,
            _ => crate::error::ErrorKind::Failed,
        }
    }
    fn invalid_input(&self) -> Option<&crate::error::InvalidInput> {
        match self {
            SimError::Invalid(i) => Some(i),
            _ => None,
        }
    }
}

/// Something the virtual DevKit did (for a log on stderr; never carries a secret: commands
/// are named, their arguments never shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEvent {
    WaitingForReader,
    ReaderConnected,
    Booted {
        config_mode: bool,
    },
    /// A console command started (name only).
    Command {
        name: String,
    },
    Reset {
        config_mode: bool,
    },
}

impl std::fmt::Display for SimEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimEvent::WaitingForReader => write!(f, "waiting for a reader to open the port"),
            SimEvent::ReaderConnected => write!(f, "reader connected"),
            SimEvent::Booted { config_mode: true } => write!(f, "booted into configuration mode"),
            SimEvent::Booted { config_mode: false } => write!(f, "booted into user mode"),
            SimEvent::Command { name } => write!(f, "running command {name}"),
            SimEvent::Reset { config_mode } => write!(
                f,
                "reset ({} mode)",
                if *config_mode {
                    "configuration"
                } else {
                    "user"
                }
            ),
        }
    }
}

/// How to run a virtual DevKit.
#[derive(Clone)]
pub struct SimOptions {
    pub state_dir: PathBuf,
    /// Boot into configuration mode (as if button A were held during reset).
    pub config_mode: bool,
    /// MAC address (12 hex digits, separators allowed); default: the one stored in the state
    /// directory, else a new random one (stored).
    pub mac: Option<String>,
    /// DevKit SDK version reported (`version`, boot log, automatic registration ID).
    pub firmware_version: String,
    /// How clients reach the console (pty or loopback TCP).
    pub transport: SimTransport,
    /// A symlink to create (atomically replaced) pointing at the pty (Unix, pty transport).
    pub link: Option<PathBuf>,
    /// Time every console command takes before it answers (a slow EEPROM; tests use it).
    pub command_delay: Duration,
    /// Make every EEPROM write fail.
    pub eeprom_fault: Option<EepromFault>,
    /// Called for every [`SimEvent`].
    pub on_event: Option<SimEventSink>,
}

/// Where [`SimEvent`]s go.
pub type SimEventSink = Arc<dyn Fn(&SimEvent) + Send + Sync>;

impl SimOptions {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        SimOptions {
            state_dir: state_dir.into(),
            config_mode: false,
            mac: None,
            firmware_version: DEFAULT_FIRMWARE_VERSION.into(),
            transport: SimTransport::default(),
            link: None,
            command_delay: Duration::ZERO,
            eeprom_fault: None,
            on_event: None,
        }
    }
}

/// A running virtual DevKit. Dropping it (or [`stop`](Self::stop)) turns it off: the pty or
/// TCP port disappears, as a DevKit unplugged.
pub struct VirtualDevKit {
    port: PathBuf,
    transport: SimTransport,
    link: Option<PathBuf>,
    state_dir: PathBuf,
    mac: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DeviceFile {
    mac: String,
}

impl VirtualDevKit {
    /// Start a virtual DevKit: open the pty, bind the control socket, run the device.
    pub fn start(opts: SimOptions) -> Result<VirtualDevKit, SimError> {
        let dir = opts.state_dir.clone();
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| SimError::Io { what, path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io("cannot create state directory", &dir))?;
        if let Err(e) = semver_like(&opts.firmware_version) {
            return Err(SimError::Invalid(crate::error::InvalidInput::new(
                crate::error::Input::FirmwareVersion,
                e,
            )));
        }
        let mac = resolve_mac(&dir, opts.mac.as_deref())?;

        // One virtual DevKit per state directory.
        if control::is_running(&dir) {
            return Err(SimError::AlreadyRunning(dir));
        }
        if opts.link.is_some() && (opts.transport != SimTransport::Pty || cfg!(not(unix))) {
            return Err(SimError::Invalid(crate::error::InvalidInput::new(
                crate::error::Input::Link,
                "points at a pty: it needs Unix and the pty transport",
            )));
        }
        let link =
            transport::Link::open(opts.transport).map_err(|source| match opts.transport {
                SimTransport::Pty if source.kind() == std::io::ErrorKind::Unsupported => {
                    SimError::Invalid(crate::error::InvalidInput::new(
                        crate::error::Input::Transport,
                        source.to_string(),
                    ))
                }
                SimTransport::Pty => SimError::Io {
                    what: "cannot open a pseudo-terminal",
                    path: "/dev/ptmx".into(),
                    source,
                },
                SimTransport::Tcp { port } => SimError::Io {
                    what: "cannot listen on",
                    path: format!("127.0.0.1:{port}").into(),
                    source,
                },
            })?;
        let listener = ControlListener::bind(&dir, opts.transport)?;
        let port_name = link.port_name();
        if let Some(link) = &opts.link {
            make_link(link, &port_name)?;
        }

        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(device::Shared {
            config_mode: opts.config_mode,
        }));
        let (tx, rx) = mpsc::channel();
        let dev = device::Device {
            link,
            config_mode: opts.config_mode,
            opts: opts.clone(),
            mac: mac.clone(),
            control: rx,
            stop: stop.clone(),
            shared: shared.clone(),
        };
        let device_thread = std::thread::Builder::new()
            .name("virtual-devkit".into())
            .spawn(move || dev.run())
            .map_err(io("cannot start thread", &dir))?;
        let control_thread = {
            let stop = stop.clone();
            let port_name = port_name.clone();
            std::thread::Builder::new()
                .name("virtual-devkit-control".into())
                .spawn(move || serve_control(listener, tx, stop, shared, port_name))
                .map_err(io("cannot start thread", &dir))?
        };
        Ok(VirtualDevKit {
            port: port_name,
            transport: opts.transport,
            link: opts.link.clone(),
            state_dir: dir,
            mac,
            stop,
            threads: vec![device_thread, control_thread],
        })
    }

    /// The device's own port: the pty (`/dev/pts/N`) or `tcp://127.0.0.1:PORT`.
    pub fn device_port(&self) -> &Path {
        &self.port
    }

    /// The path to give a serial client: the link when one was asked for, else
    /// [`device_port`](Self::device_port).
    pub fn port_path(&self) -> &Path {
        self.link.as_deref().unwrap_or(&self.port)
    }

    pub fn transport(&self) -> SimTransport {
        self.transport
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The MAC address, 12 lower-case hex digits.
    pub fn mac(&self) -> &str {
        &self.mac
    }

    /// Turn the virtual DevKit off (same as dropping it).
    pub fn stop(self) {}
}

impl Drop for VirtualDevKit {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        ControlListener::remove(&self.state_dir, self.transport);
        if let Some(link) = &self.link {
            if std::fs::read_link(link).ok().as_deref() == Some(self.port.as_path()) {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

fn semver_like(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
    {
        Ok(())
    } else {
        Err(format!(
            "`{v}`: expected X.Y.Z with decimal numbers, e.g. {DEFAULT_FIRMWARE_VERSION}"
        ))
    }
}

/// The MAC: given (validated and stored), else stored, else random (an MXChip-like OUI).
fn resolve_mac(dir: &Path, given: Option<&str>) -> Result<String, SimError> {
    let file = dir.join("device.json");
    let stored: Option<DeviceFile> =
        crate::fsutil::read_internal(&file, crate::fsutil::limits::STATE_FILE)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok());
    let mac = match given {
        Some(m) => crate::identity::normalize_mac(m).map_err(|e| {
            SimError::Invalid(crate::error::InvalidInput::new(
                crate::error::Input::Mac,
                e.to_string(),
            ))
        })?,
        None => match stored {
            Some(d) => return Ok(d.mac),
            None => {
                let tail: [u8; 3] = rand::random();
                format!("c0bdd1{}", hex::encode(tail))
            }
        },
    };
    let json = serde_json::to_vec_pretty(&DeviceFile { mac: mac.clone() }).unwrap_or_default();
    crate::fsutil::write_atomic(&file, &json, crate::fsutil::Mode::Public).map_err(|e| {
        SimError::Io {
            what: "cannot write",
            path: file.clone(),
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    Ok(mac)
}

/// Point `link` at `target`, replacing an older link atomically (never a regular file).
#[cfg(not(unix))]
fn make_link(_link: &Path, _target: &Path) -> Result<(), SimError> {
    Err(SimError::Invalid(crate::error::InvalidInput::new(
        crate::error::Input::Link,
        "links to the port need Unix",
    )))
}

/// Point `link` at `target`, replacing an older link atomically (never a regular file).
#[cfg(unix)]
fn make_link(link: &Path, target: &Path) -> Result<(), SimError> {
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        if !meta.file_type().is_symlink() {
            return Err(SimError::Invalid(crate::error::InvalidInput::new(
                crate::error::Input::Link,
                format!(
                    "{} exists and is not a symlink; choose another path",
                    link.display()
                ),
            )));
        }
    }
    let tmp = link.with_file_name(format!(
        ".{}.devkit-tmp-{}",
        link.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let err = |source| SimError::Io {
        what: "cannot create link",
        path: link.to_path_buf(),
        source,
    };
    std::os::unix::fs::symlink(target, &tmp).map_err(err)?;
    std::fs::rename(&tmp, link).map_err(err)
}

/// The listening end of the control channel.
enum ControlListener {
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

/// A connected control client.
trait ControlStream: Read + Write {}
impl<S: Read + Write> ControlStream for S {}

impl ControlListener {
    /// Listen next to `transport`: a Unix socket for a pty, a loopback TCP port (named in
    /// `control.tcp`) for a TCP console.
    fn bind(dir: &Path, transport: SimTransport) -> Result<ControlListener, SimError> {
        let io = |what, path: PathBuf| move |source| SimError::Io { what, path, source };
        match transport {
            #[cfg(unix)]
            SimTransport::Pty => {
                let sock = control::socket_path(dir);
                let _ = std::fs::remove_file(&sock); // stale: is_running said nobody answers
                let listener = std::os::unix::net::UnixListener::bind(&sock)
                    .map_err(io("cannot create control socket", sock.clone()))?;
                listener
                    .set_nonblocking(true)
                    .map_err(io("control socket", sock))?;
                Ok(ControlListener::Unix(listener))
            }
            #[cfg(not(unix))]
            SimTransport::Pty => Err(SimError::Invalid(crate::error::InvalidInput::new(
                crate::error::Input::Transport,
                "pseudo-terminals need Unix; use tcp",
            ))),
            SimTransport::Tcp { .. } => {
                let file = control::tcp_endpoint_path(dir);
                let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
                    .map_err(io("cannot listen for control on", "127.0.0.1:0".into()))?;
                listener
                    .set_nonblocking(true)
                    .map_err(io("control port", file.clone()))?;
                let addr = listener
                    .local_addr()
                    .map_err(io("control port", file.clone()))?;
                crate::fsutil::write_atomic(
                    &file,
                    format!("{addr}\n").as_bytes(),
                    crate::fsutil::Mode::Public,
                )
                .map_err(|e| SimError::Io {
                    what: "cannot write",
                    path: file.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                Ok(ControlListener::Tcp(listener))
            }
        }
    }

    /// Remove what [`bind`](Self::bind) left in the file system.
    fn remove(dir: &Path, transport: SimTransport) {
        let _ = std::fs::remove_file(match transport {
            SimTransport::Pty => control::socket_path(dir),
            SimTransport::Tcp { .. } => control::tcp_endpoint_path(dir),
        });
    }

    /// The next client, blocking with a timeout (the listener itself does not block).
    fn accept(&self) -> std::io::Result<Box<dyn ControlStream>> {
        let timeout = Some(Duration::from_secs(5));
        match self {
            #[cfg(unix)]
            ControlListener::Unix(l) => {
                let (s, _) = l.accept()?;
                s.set_nonblocking(false)?;
                s.set_read_timeout(timeout)?;
                Ok(Box::new(s))
            }
            ControlListener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nonblocking(false)?;
                s.set_read_timeout(timeout)?;
                Ok(Box::new(s))
            }
        }
    }
}

fn serve_control(
    listener: ControlListener,
    tx: mpsc::Sender<device::ControlMsg>,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<device::Shared>>,
    port: PathBuf,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok(stream) => {
                let _ = handle_control(stream, &tx, &shared, &port);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One request line (at most [`control::MAX_LINE`] bytes), one reply line.
fn handle_control(
    stream: Box<dyn ControlStream>,
    tx: &mpsc::Sender<device::ControlMsg>,
    shared: &Mutex<device::Shared>,
    pty: &Path,
) -> std::io::Result<()> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    (&mut reader).take(control::MAX_LINE).read_line(&mut line)?;
    let reply = match serde_json::from_str::<control::Request>(&line) {
        Err(e) => control::Reply {
            ok: false,
            error: Some(format!("bad request: {e}")),
            ..Default::default()
        },
        Ok(control::Request::Status) => control::Reply {
            ok: true,
            pty: Some(pty.to_path_buf()),
            config_mode: shared.lock().ok().map(|s| s.config_mode),
            ..Default::default()
        },
        Ok(request) => {
            let (rtx, rrx) = mpsc::channel();
            let _ = tx.send(device::ControlMsg {
                request,
                reply: rtx,
            });
            rrx.recv_timeout(Duration::from_secs(55))
                .unwrap_or(control::Reply {
                    ok: false,
                    error: Some("the virtual DevKit did not answer".into()),
                    ..Default::default()
                })
        }
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    reader.get_mut().write_all(&out)
}
