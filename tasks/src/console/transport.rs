//! The byte link to the DevKit: the [`Transport`] trait, an owned serial port (or its TCP
//! stand-in) and the cancellable wrapper a blocking console loop reads through.

use super::tcp;
use std::io;
use std::path::Path;
use std::time::Duration;

/// Something that moves bytes to and from the device.
pub trait Transport: Send {
    /// Read what arrives within `timeout`: `Ok(0)` when nothing did; an error when the port
    /// is gone.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        (**self).read_timeout(buf, timeout)
    }
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        (**self).write_all(data)
    }
}

/// A transport that stops at the next read or write once `cancel` is cancelled. Reads wait
/// at most [`CANCEL_POLL`] at a time, so a cancelled blocking loop (waiting for configuration
/// mode, say) lets go of its port within that, not at its own timeout.
pub struct Cancellable<T> {
    pub inner: T,
    pub cancel: crate::progress::CancellationToken,
}

/// The longest a [`Cancellable`] read waits before looking at its cancellation again.
pub const CANCEL_POLL: Duration = Duration::from_millis(100);

impl<T: Transport> Transport for Cancellable<T> {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        self.inner.read_timeout(buf, timeout.min(CANCEL_POLL))
    }
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        self.inner.write_all(data)
    }
}

/// A serial port opened by path.
pub struct SerialTransport(pub Box<dyn serialport::SerialPort>);

impl SerialTransport {
    /// Open `path` at `baud`, 8N1, no flow control, exclusively; a `tcp://HOST:PORT` name
    /// (the virtual DevKit on Windows, or `devkit sim --transport tcp`) is a [`tcp::TcpPort`].
    /// A port in use says which program holds it, where the OS tells ([`super::holder`]).
    pub fn open(path: &Path, baud: u32) -> Result<SerialTransport, serialport::Error> {
        Self::open_port(path, baud).map_err(|mut e| {
            if OpenFailure::of(&e) == OpenFailure::Busy {
                if let Some(holder) = super::holder::describe(path) {
                    e.description = format!("{} (held by {holder})", e.description);
                }
            }
            e
        })
    }

    fn open_port(path: &Path, baud: u32) -> Result<SerialTransport, serialport::Error> {
        let name = path.to_string_lossy();
        if let Some(address) = tcp::tcp_address(&name) {
            return Ok(SerialTransport(Box::new(tcp::TcpPort::open(
                address,
                &name,
                baud,
                Duration::from_millis(100),
            )?)));
        }
        let port = serialport::new(name, baud)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open()?;
        Ok(SerialTransport(port))
    }
}

/// Read from a serial port with a timeout, telling "nothing yet" (Ok(0)) from "gone" (Err).
pub fn read_port(
    port: &mut dyn serialport::SerialPort,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<usize> {
    port.set_timeout(timeout.max(Duration::from_millis(1)))
        .map_err(io::Error::from)?;
    match port.read(buf) {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the port was closed (end of file)",
        )),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::Interrupted => {
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

impl Transport for SerialTransport {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        read_port(&mut *self.0, buf, timeout)
    }
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.0, data)?;
        io::Write::flush(&mut self.0)
    }
}

/// Why a port would not open, as far as the OS tells. Both the console and the monitor
/// classify their open errors by it (kind, next actions), so the adapters never probe the
/// filesystem themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFailure {
    /// No such port (or no virtual DevKit listening at a `tcp://` address).
    Missing,
    /// Another program holds it (Unix: the exclusive lock).
    Busy,
    /// The user may not open it (Linux: not in `dialout`, no udev rule).
    Permission,
    /// Missing, busy or denied: Windows does not say which.
    Unavailable,
    Other,
}

impl OpenFailure {
    pub fn of(e: &serialport::Error) -> OpenFailure {
        use serialport::ErrorKind as K;
        match e.kind() {
            K::Io(io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
                OpenFailure::Missing
            }
            K::Io(io::ErrorKind::PermissionDenied) => OpenFailure::Permission,
            // A `tcp://` virtual DevKit another client holds (see `tcp::IN_USE`).
            K::Io(io::ErrorKind::ResourceBusy) => OpenFailure::Busy,
            K::NoDevice if cfg!(windows) => OpenFailure::Unavailable,
            K::NoDevice => OpenFailure::Busy,
            _ => OpenFailure::Other,
        }
    }

    /// The error kind: a missing port is not found, the rest is the device's side.
    pub fn kind(self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            OpenFailure::Missing | OpenFailure::Unavailable => ErrorKind::NotFound,
            OpenFailure::Busy | OpenFailure::Permission | OpenFailure::Other => ErrorKind::Device,
        }
    }

    /// The input to blame: the port, when it does not exist.
    pub fn input(self) -> Option<crate::error::Input> {
        (self == OpenFailure::Missing).then_some(crate::error::Input::Port)
    }

    pub fn next_actions(self) -> Vec<crate::error::NextStep> {
        use crate::error::{NextAction, NextStep};
        match self {
            OpenFailure::Permission => vec![NextStep::new(NextAction::InstallUdevRule)],
            // The right port, held by another program (the message names it where the OS
            // tells): close that one and retry; another port would not help.
            OpenFailure::Busy => vec![NextStep::new(NextAction::Retry)],
            OpenFailure::Unavailable => vec![
                NextStep::new(NextAction::SelectPort),
                NextStep::new(NextAction::Retry),
            ],
            OpenFailure::Missing | OpenFailure::Other => {
                vec![NextStep::new(NextAction::SelectPort)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Input, NextAction};

    #[test]
    fn open_failures_are_classified_from_the_os_error() {
        let e = |k| serialport::Error::new(k, "x");
        let missing = OpenFailure::of(&e(serialport::ErrorKind::Io(io::ErrorKind::NotFound)));
        assert_eq!(missing, OpenFailure::Missing);
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(missing.input(), Some(Input::Port));
        let denied = OpenFailure::of(&e(serialport::ErrorKind::Io(
            io::ErrorKind::PermissionDenied,
        )));
        assert_eq!(denied.kind(), ErrorKind::Device);
        assert_eq!(denied.input(), None);
        assert_eq!(denied.next_actions()[0].action, NextAction::InstallUdevRule);
        #[cfg(unix)]
        {
            let busy = OpenFailure::of(&e(serialport::ErrorKind::NoDevice));
            assert_eq!(busy, OpenFailure::Busy);
            assert_eq!(busy.kind(), ErrorKind::Device);
            let actions: Vec<_> = busy.next_actions().iter().map(|s| s.action).collect();
            assert_eq!(
                actions,
                [NextAction::Retry],
                "not another port: the holder is named"
            );
        }
        let tcp_busy = e(serialport::ErrorKind::Io(io::ErrorKind::ResourceBusy));
        assert_eq!(OpenFailure::of(&tcp_busy), OpenFailure::Busy);
    }

    #[cfg(unix)]
    #[test]
    fn a_port_that_does_not_exist_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let Err(e) = SerialTransport::open(&dir.path().join("ttyNONE"), 115_200) else {
            panic!("opened a port that does not exist")
        };
        assert_eq!(OpenFailure::of(&e), OpenFailure::Missing);
    }
}
