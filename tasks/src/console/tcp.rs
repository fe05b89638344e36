//! "Serial ports" reached over TCP: `tcp://HOST:PORT`.
//!
//! The virtual DevKit speaks through a pseudo-terminal on Unix, but Windows has no ptys: there
//! its console is a TCP port on the loopback interface (`devkit sim --transport tcp`, also
//! available on Unix). Every client that opens a port by name (console, monitor, provisioning,
//! uploads) goes through [`super::SerialTransport::open`], which opens such a name as a
//! [`TcpPort`]: a TCP stream behind the [`serialport::SerialPort`] trait, so the rest of the code
//! keeps one port type. Line settings (baud, parity, modem lines) mean nothing on a socket and
//! are accepted and ignored, as a USB CDC-ACM device ignores the baud rate.

use serialport::{ClearBuffer, DataBits, FlowControl, Parity, SerialPort, StopBits};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The scheme that marks a TCP "serial port".
pub const SCHEME: &str = "tcp://";

/// How long connecting may take (the virtual DevKit is local; a remote serial server is near).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the virtual DevKit writes to a client it turns away because another one holds the
/// port (then it closes the connection): TCP accepts every connection, so this notice is how
/// a client learns what a serial port says with `EBUSY` when it is opened a second time.
pub const IN_USE: &str = "devkit: this port is in use by another client\r\n";

/// The byte the virtual DevKit sends first to a client it takes: opening knows at once that
/// the port is its own (and consumes the byte), however slow a loaded machine is to answer.
pub const ACCEPTED: u8 = 0;

/// How long opening waits for [`ACCEPTED`] or [`IN_USE`] after connecting. Only a server that
/// says neither (a serial server other than the virtual DevKit) waits this long.
const IN_USE_WAIT: Duration = Duration::from_secs(2);

fn in_use(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!("{name} is in use by another client (a monitor, console or upload); it takes one client at a time, like a serial port: close the other one first"),
    )
}

/// After connecting: fail when the device says the port is in use, or closes the connection
/// at once (a virtual DevKit older than [`IN_USE`] did that to a second client); consume
/// [`ACCEPTED`]. Device output that arrives first (another server) is left for the reader.
fn refused(mut stream: &TcpStream, name: &str) -> io::Result<()> {
    let deadline = Instant::now() + IN_USE_WAIT;
    let mut buf = [0u8; IN_USE.len()];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.peek(&mut buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("{name} closed the connection at once (in use by another client?)"),
                ))
            }
            Ok(_) if buf[0] == ACCEPTED => return stream.read_exact(&mut [0u8; 1]),
            Ok(n) if n == buf.len() && buf == *IN_USE.as_bytes() => return Err(in_use(name)),
            // Part of the notice so far: wait for the rest.
            Ok(n) if IN_USE.as_bytes().starts_with(&buf[..n]) => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `Some(address)` when `name` is a `tcp://HOST:PORT` port name; `None` for a serial device.
pub fn tcp_address(name: &str) -> Option<&str> {
    name.strip_prefix(SCHEME)
}

/// The port name of a TCP address, as the virtual DevKit prints it.
pub fn port_name(addr: SocketAddr) -> String {
    format!("{SCHEME}{addr}")
}

/// A TCP connection used as a serial port.
pub struct TcpPort {
    stream: TcpStream,
    name: String,
    baud: u32,
    timeout: Duration,
    /// Nothing read yet: a late [`IN_USE`] notice is still recognized.
    fresh: bool,
}

impl TcpPort {
    /// Connect to `address` (`HOST:PORT`, e.g. `127.0.0.1:5555`); `name` is the full port name.
    pub fn open(
        address: &str,
        name: &str,
        baud: u32,
        timeout: Duration,
    ) -> Result<TcpPort, serialport::Error> {
        let invalid = |why: String| {
            serialport::Error::new(
                serialport::ErrorKind::InvalidInput,
                format!("{name}: {why}; expected {SCHEME}HOST:PORT, e.g. {SCHEME}127.0.0.1:5555"),
            )
        };
        if address.is_empty() || address.len() > 255 || address.contains('/') {
            return Err(invalid("not a host and port".into()));
        }
        let addrs: Vec<SocketAddr> = address
            .to_socket_addrs()
            .map_err(|e| invalid(e.to_string()))?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    refused(&stream, name).map_err(|e| {
                        serialport::Error::new(serialport::ErrorKind::Io(e.kind()), e.to_string())
                    })?;
                    let mut port = TcpPort {
                        stream,
                        name: name.to_string(),
                        baud,
                        timeout: Duration::ZERO,
                        fresh: true,
                    };
                    port.set_timeout(timeout)?;
                    return Ok(port);
                }
                Err(e) => last = e,
            }
        }
        Err(serialport::Error::new(
            serialport::ErrorKind::Io(last.kind()),
            format!("{name}: {last}"),
        ))
    }
}

impl Read for TcpPort {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A signal during the wait (EINTR) is not the device's doing: wait on, as a serial
        // port's read does; a test run under load saw it as a spurious error.
        let read = loop {
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        match read {
            // A socket read timeout is `WouldBlock` on Unix and `TimedOut` on Windows; a serial
            // port's is `TimedOut`, which is what the readers expect.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"))
            }
            Ok(n) if std::mem::take(&mut self.fresh) && buf[..n].starts_with(IN_USE.as_bytes()) => {
                Err(in_use(&self.name))
            }
            r => r,
        }
    }
}

impl Write for TcpPort {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl SerialPort for TcpPort {
    fn name(&self) -> Option<String> {
        Some(self.name.clone())
    }
    fn baud_rate(&self) -> serialport::Result<u32> {
        Ok(self.baud)
    }
    fn data_bits(&self) -> serialport::Result<DataBits> {
        Ok(DataBits::Eight)
    }
    fn flow_control(&self) -> serialport::Result<FlowControl> {
        Ok(FlowControl::None)
    }
    fn parity(&self) -> serialport::Result<Parity> {
        Ok(Parity::None)
    }
    fn stop_bits(&self) -> serialport::Result<StopBits> {
        Ok(StopBits::One)
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn set_baud_rate(&mut self, baud_rate: u32) -> serialport::Result<()> {
        self.baud = baud_rate;
        Ok(())
    }
    fn set_data_bits(&mut self, _: DataBits) -> serialport::Result<()> {
        Ok(())
    }
    fn set_flow_control(&mut self, _: FlowControl) -> serialport::Result<()> {
        Ok(())
    }
    fn set_parity(&mut self, _: Parity) -> serialport::Result<()> {
        Ok(())
    }
    fn set_stop_bits(&mut self, _: StopBits) -> serialport::Result<()> {
        Ok(())
    }
    fn set_timeout(&mut self, timeout: Duration) -> serialport::Result<()> {
        // A zero socket timeout means "block forever"; a serial port's means "return now".
        let t = timeout.max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(t))?;
        self.stream
            .set_write_timeout(Some(t.max(Duration::from_secs(1))))?;
        self.timeout = timeout;
        Ok(())
    }
    fn write_request_to_send(&mut self, _: bool) -> serialport::Result<()> {
        Ok(())
    }
    fn write_data_terminal_ready(&mut self, _: bool) -> serialport::Result<()> {
        Ok(())
    }
    fn read_clear_to_send(&mut self) -> serialport::Result<bool> {
        Ok(true)
    }
    fn read_data_set_ready(&mut self) -> serialport::Result<bool> {
        Ok(true)
    }
    fn read_ring_indicator(&mut self) -> serialport::Result<bool> {
        Ok(false)
    }
    fn read_carrier_detect(&mut self) -> serialport::Result<bool> {
        Ok(true)
    }
    fn bytes_to_read(&self) -> serialport::Result<u32> {
        Ok(0)
    }
    fn bytes_to_write(&self) -> serialport::Result<u32> {
        Ok(0)
    }
    fn clear(&self, _: ClearBuffer) -> serialport::Result<()> {
        Ok(())
    }
    fn try_clone(&self) -> serialport::Result<Box<dyn SerialPort>> {
        Ok(Box::new(TcpPort {
            stream: self.stream.try_clone()?,
            name: self.name.clone(),
            baud: self.baud,
            timeout: self.timeout,
            fresh: self.fresh,
        }))
    }
    fn set_break(&self) -> serialport::Result<()> {
        Ok(())
    }
    fn clear_break(&self) -> serialport::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bad_addresses() {
        assert_eq!(tcp_address("tcp://127.0.0.1:5555"), Some("127.0.0.1:5555"));
        assert_eq!(tcp_address("/dev/ttyACM0"), None);
        assert_eq!(tcp_address("COM3"), None);
        assert_eq!(
            port_name(SocketAddr::from(([127, 0, 0, 1], 7))),
            "tcp://127.0.0.1:7"
        );
        for bad in ["", "no-port", "127.0.0.1:5555/x"] {
            let e = TcpPort::open(
                bad,
                &format!("tcp://{bad}"),
                115_200,
                Duration::from_millis(10),
            )
            .err()
            .expect(bad);
            assert_eq!(e.kind(), serialport::ErrorKind::InvalidInput, "{bad}: {e}");
            assert!(e.to_string().contains("expected tcp://HOST:PORT"), "{e}");
        }
    }

    #[test]
    fn reads_time_out_like_a_serial_port_and_eof_is_zero() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut port = TcpPort::open(&addr, "t", 115_200, Duration::from_millis(20)).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            port.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        peer.write_all(b"hi").unwrap();
        port.write_all(b"yo").unwrap();
        let mut got = [0u8; 2];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"yo");
        assert_eq!(port.read(&mut buf).unwrap(), 2);
        drop(peer);
        assert_eq!(
            port.read(&mut buf).unwrap(),
            0,
            "the peer closing is end of file"
        );
    }

    #[test]
    fn a_port_in_use_is_refused_at_open_and_a_late_notice_on_the_first_read() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let serve = |notice: &'static str, delay: Duration| {
            let (mut peer, _) = listener.accept().unwrap();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                peer.write_all(notice.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            })
        };
        let t = Duration::from_millis(20);

        let opening = std::thread::spawn({
            let addr = addr.clone();
            move || TcpPort::open(&addr, "tcp://busy", 115_200, t).err()
        });
        let server = serve(IN_USE, Duration::ZERO);
        let e = opening.join().unwrap().expect("refused");
        assert_eq!(
            e.kind(),
            serialport::ErrorKind::Io(io::ErrorKind::ResourceBusy)
        );
        assert!(
            e.to_string()
                .contains("tcp://busy is in use by another client"),
            "{e}"
        );
        server.join().unwrap();

        // The notice arrives after opening gave up waiting: the first read says it.
        let opening = std::thread::spawn({
            let addr = addr.clone();
            move || TcpPort::open(&addr, "tcp://late", 115_200, Duration::from_secs(2))
        });
        let server = serve(IN_USE, IN_USE_WAIT + Duration::from_millis(300));
        let mut port = opening.join().unwrap().expect("opened before the notice");
        let e = port.read(&mut [0u8; 256]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ResourceBusy);
        assert!(e.to_string().contains("in use by another client"), "{e}");
        server.join().unwrap();

        // The virtual DevKit's acceptance is consumed; what follows is the reader's.
        let opening = std::thread::spawn({
            let addr = addr.clone();
            move || TcpPort::open(&addr, "tcp://taken", 115_200, Duration::from_secs(2))
        });
        let server = serve("\0Info: booted\r\n", Duration::ZERO);
        let mut port = opening.join().unwrap().expect("opened");
        let mut got = String::new();
        let _ = port.read_to_string(&mut got);
        assert_eq!(got, "Info: booted\r\n");
        server.join().unwrap();

        // Device output that is not the notice is left for the reader.
        let opening = std::thread::spawn({
            let addr = addr.clone();
            move || TcpPort::open(&addr, "tcp://ok", 115_200, Duration::from_secs(2))
        });
        let server = serve("Info: booted\r\n", Duration::ZERO);
        let mut port = opening.join().unwrap().expect("opened");
        let mut got = String::new();
        let _ = port.read_to_string(&mut got);
        assert_eq!(got, "Info: booted\r\n");
        server.join().unwrap();
    }
}
