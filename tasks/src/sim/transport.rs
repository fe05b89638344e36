//! How the virtual DevKit's console is reached: one implementation per kind.
//!
//! - [`SimTransport::Pty`] (Unix, the default there): a pseudo-terminal that users open like
//!   the DevKit's serial port (`/dev/pts/N`, or a `--link` to it).
//! - [`SimTransport::Tcp`] (the only one on Windows, which has no ptys; available everywhere): a
//!   TCP port on the loopback interface, opened by every client as the port name
//!   `tcp://127.0.0.1:PORT` ([`crate::console::tcp`]). One client at a time, as a serial port
//!   opened exclusively: a second connection is told the port is in use ([`tcp::IN_USE`]) and
//!   closed while the first is alive; the one taken first gets [`tcp::ACCEPTED`], a byte its
//!   client consumes.
//!
//! The device sees either through [`Link`]: is a reader connected, read, write.

use crate::console::tcp;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long output waits for a reader that stopped reading before it is dropped (as a UART
/// with nobody listening would drop it).
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(10);

/// The transport of a virtual DevKit's console (and of its control channel: a Unix socket
/// next to a pty, a loopback TCP port next to a TCP console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimTransport {
    /// A pseudo-terminal (Unix only).
    Pty,
    /// A loopback TCP port; `port` 0 picks a free one.
    Tcp { port: u16 },
}

impl Default for SimTransport {
    /// A pty where there are ptys (users open it like a serial port), else TCP.
    fn default() -> Self {
        if cfg!(unix) {
            SimTransport::Pty
        } else {
            SimTransport::Tcp { port: 0 }
        }
    }
}

impl SimTransport {
    /// Parse a transport name: `pty` or `tcp` (`port` is the TCP port, 0 = any free one).
    pub fn parse(name: &str, port: u16) -> Result<SimTransport, String> {
        match name {
            "pty" if cfg!(unix) => Ok(SimTransport::Pty),
            "pty" => Err("`pty`: pseudo-terminals need Unix; use `tcp`".into()),
            "tcp" => Ok(SimTransport::Tcp { port }),
            other => Err(format!("`{other}`: expected `pty` or `tcp`")),
        }
    }
}

/// What the device side sees.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Nobody has the port open.
    NoReader,
    /// A reader is connected; nothing to read yet.
    Idle,
    /// Input is waiting.
    Readable,
}

/// The device's end of its console.
pub(crate) enum Link {
    #[cfg(unix)]
    Pty(super::pty::Pty),
    Tcp(TcpLink),
}

impl Link {
    /// Open the device end of `transport`.
    pub fn open(transport: SimTransport) -> io::Result<Link> {
        match transport {
            #[cfg(unix)]
            SimTransport::Pty => super::pty::Pty::open().map(Link::Pty),
            #[cfg(not(unix))]
            SimTransport::Pty => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "pseudo-terminals need Unix; use the tcp transport",
            )),
            SimTransport::Tcp { port } => TcpLink::bind(port).map(Link::Tcp),
        }
    }

    /// The port name clients open: `/dev/pts/N` or `tcp://127.0.0.1:PORT`.
    pub fn port_name(&self) -> PathBuf {
        match self {
            #[cfg(unix)]
            Link::Pty(p) => p.path().clone(),
            Link::Tcp(t) => PathBuf::from(tcp::port_name(t.addr)),
        }
    }

    /// Wait up to `timeout_ms` for input.
    pub fn poll(&self, timeout_ms: u16) -> io::Result<Readiness> {
        match self {
            #[cfg(unix)]
            Link::Pty(p) => p.poll(timeout_ms),
            Link::Tcp(t) => t.poll(timeout_ms),
        }
    }

    /// Read what is waiting (0 when nothing is).
    pub fn read(&self, buf: &mut [u8]) -> usize {
        match self {
            #[cfg(unix)]
            Link::Pty(p) => p.read(buf),
            Link::Tcp(t) => t.read(buf),
        }
    }

    /// Write everything, unless nobody is listening (then the bytes are lost, like a UART's).
    /// Returns whether the bytes were delivered.
    pub fn write_all(&self, data: &[u8]) -> bool {
        match self {
            #[cfg(unix)]
            Link::Pty(p) => p.write_all(data),
            Link::Tcp(t) => t.write_all(data),
        }
    }
}

/// The virtual DevKit's console on a loopback TCP port.
///
/// A thread of its own accepts connections as they come, so a second client hears at once
/// that the port is in use ([`tcp::IN_USE`], then the connection closes), however busy the
/// device is: the client reports it as a serial port opened exclusively reports `EBUSY`,
/// instead of taking the closed connection for a device that went away and reconnecting.
pub(crate) struct TcpLink {
    addr: SocketAddr,
    /// The connected reader, if any.
    conn: Arc<Mutex<Option<TcpStream>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpLink {
    fn bind(port: u16) -> io::Result<TcpLink> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let conn = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (conn, stop) = (conn.clone(), stop.clone());
            std::thread::Builder::new()
                .name("virtual-devkit-accept".into())
                .spawn(move || accept_loop(&listener, &conn, &stop))?
        };
        Ok(TcpLink {
            addr,
            conn,
            stop,
            acceptor: Some(acceptor),
        })
    }

    fn poll(&self, timeout_ms: u16) -> io::Result<Readiness> {
        let mut guard = self.conn.lock().map_err(|_| io::Error::other("poisoned"))?;
        let Some(stream) = guard.as_ref() else {
            return Ok(Readiness::NoReader);
        };
        stream.set_read_timeout(Some(Duration::from_millis(u64::from(timeout_ms).max(1))))?;
        match stream.peek(&mut [0u8; 1]) {
            Ok(0) => {
                *guard = None;
                Ok(Readiness::NoReader)
            }
            Ok(_) => Ok(Readiness::Readable),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(Readiness::Idle)
            }
            Err(_) => {
                *guard = None;
                Ok(Readiness::NoReader)
            }
        }
    }

    fn read(&self, buf: &mut [u8]) -> usize {
        let Ok(guard) = self.conn.lock() else {
            return 0;
        };
        let Some(mut stream) = guard.as_ref() else {
            return 0;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(1)));
        stream.read(buf).unwrap_or(0)
    }

    fn write_all(&self, data: &[u8]) -> bool {
        let Ok(mut guard) = self.conn.lock() else {
            return false;
        };
        let Some(mut stream) = guard.as_ref() else {
            return false;
        };
        let _ = stream.set_write_timeout(Some(WRITE_STALL));
        if stream.write_all(data).is_ok() {
            return true;
        }
        *guard = None;
        false
    }
}

impl Drop for TcpLink {
    /// Stop accepting: the port disappears, as a DevKit unplugged.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Take each waiting connection when nobody (alive) holds the port; tell it the port is in
/// use otherwise. Polls (as the control channel does) so that dropping the link ends it.
fn accept_loop(listener: &TcpListener, conn: &Mutex<Option<TcpStream>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Ok((stream, _)) = listener.accept() else {
            std::thread::sleep(ACCEPT_POLL);
            continue;
        };
        let Ok(mut guard) = conn.lock() else { return };
        if guard.as_ref().is_some_and(alive) {
            drop(guard);
            turn_away(stream);
        } else if stream.set_nonblocking(false).is_ok() {
            let _ = stream.set_nodelay(true);
            if (&stream).write_all(&[tcp::ACCEPTED]).is_ok() {
                *guard = Some(stream);
            }
        }
    }
}

/// How often the acceptor looks for new connections (and for the link being dropped).
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// Say the port is in use, then close. What the refused client may already have sent is
/// read and dropped first: closing a socket with unread input resets the connection, and the
/// reset could overtake the notice.
fn turn_away(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = stream.write_all(tcp::IN_USE.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let deadline = std::time::Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 512];
    while std::time::Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// Whether the peer of `stream` is still connected (without consuming input).
fn alive(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let r = stream.peek(&mut [0u8; 1]);
    let _ = stream.set_nonblocking(false);
    match r {
        Ok(n) => n > 0,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_names() {
        assert_eq!(
            SimTransport::parse("tcp", 7),
            Ok(SimTransport::Tcp { port: 7 })
        );
        assert!(SimTransport::parse("serial", 0)
            .unwrap_err()
            .contains("expected `pty` or `tcp`"));
        #[cfg(unix)]
        assert_eq!(SimTransport::parse("pty", 0), Ok(SimTransport::Pty));
    }

    #[test]
    fn tcp_link_has_one_reader_at_a_time_and_notices_it_leaving() {
        let link = Link::open(SimTransport::Tcp { port: 0 }).unwrap();
        let name = link.port_name().to_string_lossy().into_owned();
        let addr = tcp::tcp_address(&name).unwrap().to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{name}");
        assert_eq!(link.poll(5).unwrap(), Readiness::NoReader);
        assert!(
            !link.write_all(b"lost"),
            "nobody listening: bytes are dropped"
        );

        // Accepting is the acceptor thread's: wait until the device sees the reader.
        let connected = |link: &Link| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while link.poll(20).unwrap() == Readiness::NoReader {
                assert!(std::time::Instant::now() < deadline, "not accepted");
            }
        };
        let taken = |s: &mut TcpStream| {
            let mut ack = [1u8];
            s.read_exact(&mut ack).unwrap();
            assert_eq!(ack[0], tcp::ACCEPTED, "told it has the port");
        };
        let mut first = TcpStream::connect(&addr).unwrap();
        connected(&link);
        taken(&mut first);
        assert_eq!(link.poll(50).unwrap(), Readiness::Idle);
        first.write_all(b"hi").unwrap();
        assert_eq!(link.poll(1000).unwrap(), Readiness::Readable);
        let mut buf = [0u8; 8];
        assert_eq!(link.read(&mut buf), 2);
        assert!(link.write_all(b"ok"));
        let mut got = [0u8; 2];
        first.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ok");

        // A second client is told the port is in use and turned away while the first is
        // connected, without the device polling.
        let mut second = TcpStream::connect(&addr).unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut told = String::new();
        second.read_to_string(&mut told).unwrap();
        assert_eq!(told, tcp::IN_USE, "refused with the notice, then closed");
        assert!(link.write_all(b"ok"), "the first keeps the port");
        first.read_exact(&mut got).unwrap();

        // The first leaves: the device sees nobody, then a new client is welcome.
        drop(first);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while link.poll(20).unwrap() != Readiness::NoReader {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader's leaving was not noticed"
            );
        }
        let mut third = TcpStream::connect(&addr).unwrap();
        connected(&link);
        taken(&mut third);
        assert!(link.write_all(b"yo"));
        third.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"yo");
    }
}
