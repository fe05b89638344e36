//! Control of a running virtual DevKit, through its state directory.
//!
//! CONTRACT: the state directory of a virtual DevKit holds `eeprom.json` (the secure-chip
//! zones), `firmware/image.bin` + `firmware/image.map` (the image it boots), optionally
//! `firmware/dps_config.json` (what the sketch's generated `dps_config.h` compiles in: see
//! [`SimDpsConfig`]), and while it runs a local control channel. The serial issue implements
//! this module; the upload (sim backend) and DPS (provision) issues call it.
//!
//! The control channel follows the console's transport ([`super::SimTransport`]):
//! - next to a pty, the Unix socket `<state-dir>/control.sock`, or a short path under `/tmp`
//!   derived from the state directory when that would be too long for a Unix socket
//!   ([`socket_path`]);
//! - next to a TCP console (always on Windows), a loopback TCP port whose address
//!   (`127.0.0.1:PORT`) is in `<state-dir>/control.tcp` ([`tcp_endpoint_path`]). Any local
//!   user can connect to a loopback port: the channel only resets the device and reports its
//!   port and mode, never a secret.
//!
//! Clients try the Unix socket (on Unix), then the TCP port. Protocol: one JSON request line
//! (at most [`MAX_LINE`] bytes), one JSON reply line:
//! `{"op":"reset","configMode":false}` / `{"op":"status"}` →
//! `{"ok":true,"port":"/dev/pts/3","configMode":false}` (`port` is the console's port name,
//! `tcp://127.0.0.1:PORT` for a TCP console) or `{"ok":false,"error":"..."}`; camelCase like
//! every JSON devkit writes.

use crate::fsutil::{self, Mode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// What our sketch compiles in from `dps_config.h`, as the virtual DevKit reads it
/// (`firmware/dps_config.json`: camelCase; files written before that are still read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimDpsConfig {
    /// Global device endpoint, `host` or `host:port` (the emulator's device endpoint).
    #[serde(alias = "global_endpoint")]
    pub global_endpoint: String,
    #[serde(alias = "id_scope")]
    pub id_scope: String,
    /// Registration ID compiled in; `None` = automatic `az-<mac>v<x>v<y>v<z>`.
    #[serde(default, alias = "registration_id")]
    pub registration_id: Option<String>,
    /// PEM of the CA the device trusts for the DPS server (the emulator's CA); `None` = public
    /// roots. Used only with `emulator`.
    #[serde(default, alias = "trusted_ca_pem")]
    pub trusted_ca_pem: Option<String>,
    /// The device talks to a local DPS emulator: it may dial `host:port` and trust
    /// `trusted_ca_pem`. Otherwise it behaves as a real DevKit: port 443 only (a `host:port`
    /// endpoint fails), Azure's public roots only.
    #[serde(default)]
    pub emulator: bool,
}

/// Errors controlling a virtual DevKit.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("virtual DevKit state directory {0}: {1}")]
    Io(std::path::PathBuf, #[source] std::io::Error),
    #[error("no virtual DevKit is running with state directory {0}")]
    NotRunning(std::path::PathBuf),
    #[error("virtual DevKit control: {0}")]
    Protocol(String),
}

impl crate::error::DomainError for ControlError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            ControlError::Io(_, source) => crate::error::io_kind(source),
            ControlError::NotRunning(_) => ErrorKind::NotFound,
            ControlError::Protocol(_) => ErrorKind::Device,
        }
    }
}

/// Files of the state directory.
pub fn image_bin_path(state_dir: &Path) -> PathBuf {
    state_dir.join("firmware").join("image.bin")
}
pub fn image_map_path(state_dir: &Path) -> PathBuf {
    state_dir.join("firmware").join("image.map")
}
pub fn dps_config_path(state_dir: &Path) -> PathBuf {
    state_dir.join("firmware").join("dps_config.json")
}
pub fn eeprom_path(state_dir: &Path) -> PathBuf {
    state_dir.join("eeprom.json")
}
/// The control socket of the virtual DevKit whose state directory is `state_dir`.
///
/// `<state-dir>/control.sock` when that path fits in a Unix socket address (108 bytes with its
/// NUL; we keep a margin); otherwise a short path under `/tmp` named after a hash of the
/// canonical state directory, so that the device and every client still agree on it however
/// deep the project lives.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    let dir = std::fs::canonicalize(state_dir)
        .or_else(|_| std::path::absolute(state_dir))
        .unwrap_or_else(|_| state_dir.to_path_buf());
    let in_dir = dir.join("control.sock");
    if in_dir.as_os_str().len() <= MAX_SOCKET_PATH {
        return in_dir;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes());
    PathBuf::from(format!(
        "/tmp/devkit-sim-{}.sock",
        hex::encode(&digest[..12])
    ))
}

/// Where a TCP control channel's address is kept.
pub fn tcp_endpoint_path(state_dir: &Path) -> PathBuf {
    state_dir.join("control.tcp")
}

/// The TCP control address in the state directory, if any (loopback only: the file cannot
/// send a client elsewhere).
fn tcp_endpoint(state_dir: &Path) -> Option<std::net::SocketAddr> {
    let text = crate::fsutil::read_internal(&tcp_endpoint_path(state_dir), 64).ok()??;
    let addr: std::net::SocketAddr = std::str::from_utf8(&text).ok()?.trim().parse().ok()?;
    addr.ip().is_loopback().then_some(addr)
}

/// Whether a virtual DevKit answers on the control channel of `state_dir` (blocking, quick).
pub fn is_running(state_dir: &Path) -> bool {
    #[cfg(unix)]
    if std::os::unix::net::UnixStream::connect(socket_path(state_dir)).is_ok() {
        return true;
    }
    tcp_endpoint(state_dir).is_some_and(|addr| {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
    })
}

/// Longest control request or reply line.
pub const MAX_LINE: u64 = 64 * 1024;

/// The state directory of the virtual DevKit whose port link is `port`: `devkit sim --link`
/// puts the link in its state directory by convention, so the link's folder when it holds a
/// virtual DevKit's `device.json` (written at its first start) or `eeprom.json`.
pub fn state_dir_of_port(port: &Path) -> Option<PathBuf> {
    let dir = port.parent()?;
    (dir.join("device.json").is_file() || eeprom_path(dir).is_file()).then(|| dir.to_path_buf())
}

/// Longest socket path we use in place (sun_path is 108 bytes including the NUL).
const MAX_SOCKET_PATH: usize = 100;

/// "Flash" the virtual DevKit: store the image (and the sketch's DPS settings) in its state
/// directory atomically, then reset it if it is running, so its next boot runs the new image.
pub async fn load_image(
    state_dir: &Path,
    bin: &[u8],
    map: &str,
    dps: Option<&SimDpsConfig>,
) -> Result<(), ControlError> {
    let io = |e: std::io::Error| ControlError::Io(state_dir.to_path_buf(), e);
    let mut files = vec![
        (image_bin_path(state_dir), bin.to_vec(), Mode::Public),
        (
            image_map_path(state_dir),
            map.as_bytes().to_vec(),
            Mode::Public,
        ),
    ];
    if let Some(dps) = dps {
        let json =
            serde_json::to_vec_pretty(dps).map_err(|e| ControlError::Protocol(e.to_string()))?;
        files.push((dps_config_path(state_dir), json, Mode::Public));
    }
    fsutil::write_all_atomic(&files).map_err(|e| match e {
        fsutil::FsError::Io { source, .. } => io(source),
        other => ControlError::Protocol(other.to_string()),
    })?;
    if dps.is_none() {
        match std::fs::remove_file(dps_config_path(state_dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    match reset(state_dir, false).await {
        Ok(()) | Err(ControlError::NotRunning(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reset a running virtual DevKit, into configuration mode or user mode.
pub async fn reset(state_dir: &Path, config_mode: bool) -> Result<(), ControlError> {
    request(state_dir, &Request::Reset { config_mode })
        .await
        .map(|_| ())
}

/// What a running virtual DevKit reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStatus {
    /// The port it speaks through: the pty, or `tcp://127.0.0.1:PORT` (`port` in JSON).
    #[serde(rename = "port")]
    pub pty: PathBuf,
    /// Whether the current (or pending) boot is into configuration mode.
    pub config_mode: bool,
}

/// A running virtual DevKit as a port list shows it (`kind: "virtual"`): its port is the link in
/// its state directory that points at its console (what `devkit sim --link` makes, and what
/// users configure), else the console itself. `None` when no virtual DevKit answers there.
pub async fn port_info(state_dir: &Path) -> Option<crate::monitor::ports::PortInfo> {
    let status = status(state_dir).await.ok()?;
    let dir = state_dir.to_path_buf();
    let pty = status.pty.clone();
    let link = tokio::task::spawn_blocking(move || link_to(&dir, &pty))
        .await
        .ok()
        .flatten();
    let port = link.unwrap_or(status.pty);
    Some(crate::monitor::ports::PortInfo::virtual_devkit(
        port.display().to_string(),
    ))
}

/// Most directory entries [`link_to`] looks at (a state directory holds a handful).
const MAX_LINK_SCAN: usize = 256;

/// The symlink directly in `dir` that resolves to `target`, if any.
fn link_to(dir: &Path, target: &Path) -> Option<PathBuf> {
    let target = std::fs::canonicalize(target).ok()?;
    std::fs::read_dir(dir)
        .ok()?
        .take(MAX_LINK_SCAN)
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
                && std::fs::canonicalize(p).ok().as_ref() == Some(&target)
        })
}

/// Ask a running virtual DevKit for its port and mode.
pub async fn status(state_dir: &Path) -> Result<SimStatus, ControlError> {
    let reply = request(state_dir, &Request::Status).await?;
    match (reply.pty, reply.config_mode) {
        (Some(pty), Some(config_mode)) => Ok(SimStatus { pty, config_mode }),
        _ => Err(ControlError::Protocol("status reply without port".into())),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub(crate) enum Request {
    Reset { config_mode: bool },
    Status,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The console's port name (`port` on the wire).
    #[serde(default, rename = "port", skip_serializing_if = "Option::is_none")]
    pub pty: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_mode: Option<bool>,
}

async fn request(state_dir: &Path, req: &Request) -> Result<Reply, ControlError> {
    let io = |e| ControlError::Io(state_dir.to_path_buf(), e);
    let not_running = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
        )
    };
    #[cfg(unix)]
    {
        let path = socket_path(state_dir);
        match tokio::net::UnixStream::connect(&path).await {
            Ok(stream) => {
                return exchange(stream, state_dir, req, &path.display().to_string()).await
            }
            Err(e) if not_running(&e) => {}
            Err(e) => return Err(io(e)),
        }
    }
    let Some(addr) = tcp_endpoint(state_dir) else {
        return Err(ControlError::NotRunning(state_dir.to_path_buf()));
    };
    match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => exchange(stream, state_dir, req, &addr.to_string()).await,
        Err(e) if not_running(&e) => Err(ControlError::NotRunning(state_dir.to_path_buf())),
        Err(e) => Err(io(e)),
    }
}

/// Send `req` over a connected control channel and read the reply (bounded in size and time).
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    state_dir: &Path,
    req: &Request,
    name: &str,
) -> Result<Reply, ControlError> {
    let io = |e| ControlError::Io(state_dir.to_path_buf(), e);
    let exchange = async {
        let mut line =
            serde_json::to_vec(req).map_err(|e| ControlError::Protocol(e.to_string()))?;
        line.push(b'\n');
        stream.write_all(&line).await.map_err(io)?;
        let mut reply = String::new();
        BufReader::new(&mut stream)
            .take(MAX_LINE)
            .read_line(&mut reply)
            .await
            .map_err(io)?;
        let reply: Reply = serde_json::from_str(&reply)
            .map_err(|e| ControlError::Protocol(format!("bad reply: {e}")))?;
        if reply.ok {
            Ok(reply)
        } else {
            Err(ControlError::Protocol(
                reply.error.unwrap_or_else(|| "request refused".into()),
            ))
        }
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| {
            ControlError::Protocol(format!(
                "no reply from the virtual DevKit at {name} within 60 s"
            ))
        })?
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// camelCase on the wire and on disk; a `dps_config.json` written before that still reads.
    #[test]
    fn control_messages_and_the_dps_file_are_camel_case() {
        let req = serde_json::to_value(Request::Reset { config_mode: true }).unwrap();
        assert_eq!(req, serde_json::json!({"op": "reset", "configMode": true}));
        let old: SimDpsConfig = serde_json::from_str(
            r#"{"global_endpoint":"h:1","id_scope":"0ne0001A2B3","registration_id":"r"}"#,
        )
        .unwrap();
        let new = serde_json::to_value(&old).unwrap();
        assert_eq!(new["globalEndpoint"], "h:1");
        assert_eq!(serde_json::from_value::<SimDpsConfig>(new).unwrap(), old);
    }

    #[test]
    fn socket_path_stays_short_and_deterministic_for_deep_state_dirs() {
        let short = tempfile::tempdir().unwrap();
        assert_eq!(
            socket_path(short.path()),
            std::fs::canonicalize(short.path())
                .unwrap()
                .join("control.sock")
        );
        let deep = short
            .path()
            .join("a-rather-long-directory-name-for-a-project".repeat(3))
            .join("state");
        std::fs::create_dir_all(&deep).unwrap();
        let sock = socket_path(&deep);
        assert!(
            sock.as_os_str().len() <= MAX_SOCKET_PATH,
            "{}",
            sock.display()
        );
        assert!(sock.starts_with("/tmp"));
        assert_eq!(
            sock,
            socket_path(&deep.join("..").join("state")),
            "every spelling of the dir agrees"
        );
        assert_ne!(sock, socket_path(&short.path().join("b".repeat(120))));
    }
}
