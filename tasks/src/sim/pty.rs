//! The pseudo-terminal the virtual DevKit speaks through.
//!
//! We keep only the master side: the slave is opened by whoever reads the "serial port"
//! (the monitor, the console client, a terminal program). While no slave descriptor is open
//! the kernel reports `POLLHUP` on the master, which is how the virtual DevKit knows whether
//! anyone is listening (and waits for a reader before it boots, so no boot output is lost).

use super::transport::{Readiness, WRITE_STALL};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::termios;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

pub struct Pty {
    master: OwnedFd,
    path: PathBuf,
}

impl Pty {
    /// Open a pty pair in raw mode (no echo, no CR/LF translation: the DevKit's bytes exactly),
    /// then close the slave.
    pub fn open() -> io::Result<Pty> {
        let pair = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        let mut t = termios::tcgetattr(&pair.slave).map_err(io::Error::from)?;
        termios::cfmakeraw(&mut t);
        termios::cfsetspeed(&mut t, termios::BaudRate::B115200).map_err(io::Error::from)?;
        termios::tcsetattr(&pair.slave, termios::SetArg::TCSANOW, &t).map_err(io::Error::from)?;
        let path = nix::unistd::ttyname(&pair.slave).map_err(io::Error::from)?;
        let flags = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&pair.master),
            nix::fcntl::FcntlArg::F_GETFL,
        )
        .map_err(io::Error::from)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags)
            | nix::fcntl::OFlag::O_NONBLOCK
            | nix::fcntl::OFlag::O_CLOEXEC;
        nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&pair.master),
            nix::fcntl::FcntlArg::F_SETFL(flags),
        )
        .map_err(io::Error::from)?;
        drop(pair.slave);
        Ok(Pty {
            master: pair.master,
            path,
        })
    }

    /// The slave device path (`/dev/pts/N`).
    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// Wait up to `timeout_ms` for input.
    pub fn poll(&self, timeout_ms: u16) -> io::Result<Readiness> {
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(timeout_ms)) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(Readiness::Idle),
            Err(e) => return Err(e.into()),
        }
        let r = fds[0].revents().unwrap_or(PollFlags::empty());
        Ok(
            if r.contains(PollFlags::POLLIN) && !r.contains(PollFlags::POLLHUP) {
                Readiness::Readable
            } else if r.contains(PollFlags::POLLHUP) {
                Readiness::NoReader
            } else {
                Readiness::Idle
            },
        )
    }

    /// Read what is waiting (0 when nothing is).
    pub fn read(&self, buf: &mut [u8]) -> usize {
        nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.master), buf).unwrap_or(0)
    }

    /// Write everything, unless nobody is listening (then the bytes are lost, like a UART's).
    /// Returns whether the bytes were delivered.
    pub fn write_all(&self, mut data: &[u8]) -> bool {
        let start = Instant::now();
        while !data.is_empty() {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLOUT)];
            match nix::poll::poll(&mut fds, PollTimeout::from(50u16)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return false,
            }
            let r = fds[0].revents().unwrap_or(PollFlags::empty());
            if r.contains(PollFlags::POLLHUP) || r.contains(PollFlags::POLLERR) {
                return false;
            }
            if r.contains(PollFlags::POLLOUT) {
                match nix::unistd::write(&self.master, data) {
                    Ok(n) => data = &data[n..],
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            if start.elapsed() > WRITE_STALL {
                return false;
            }
        }
        true
    }
}
