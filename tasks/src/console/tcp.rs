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
use std::time::Duration;

/// The scheme that marks a TCP "serial port".
pub const SCHEME: &str = "tcp://";

/// How long connecting may take (the virtual DevKit is local; a remote serial server is near).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
                    let mut port = TcpPort {
                        stream,
                        name: name.to_string(),
                        baud,
                        timeout: Duration::ZERO,
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
        match self.stream.read(buf) {
            // A socket read timeout is `WouldBlock` on Unix and `TimedOut` on Windows; a serial
            // port's is `TimedOut`, which is what the readers expect.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"))
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
}
