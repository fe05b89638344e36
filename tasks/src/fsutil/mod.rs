//! Atomic, identity-safe file writes, and bounded reads of every input file.
//!
//! Every file this project writes goes through here so that nothing is ever half-written (we
//! write a temporary file in the same directory, fsync it and rename it over the target) and
//! secrets are never readable by others (private material is created owner-only from the
//! start, not chmod-ed afterwards: mode 0600 on Unix, an owner-only protected DACL on Windows).
//! Temporary files left behind by a killed run are removed on the next write into the same
//! directory ([`clean_stale_temps`]).
//!
//! Every input file (and stdin) is read through [`read_bounded`] /
//! [`read_secret_text`]: a FIFO, a device or a directory where a regular file is expected is
//! refused before it is read, and nothing grows past what the input can legitimately be
//! ([`limits`]), so `/dev/zero` as an image is an error, not gigabytes of memory.

//!
//! The parts, one module each: bounded reads and secret text (`bounded`), owner-only files
//! (`private`, with the Windows DACL in `private_windows`), atomic writes (`atomic`) and the
//! cleanup of temporary files a killed run left behind (`stale`).

mod atomic;
mod bounded;
mod private;
#[cfg(windows)]
mod private_windows;
mod stale;

pub use atomic::{check_output, write_all_atomic, write_atomic, write_new_atomic};
pub use bounded::{
    limits, open_bounded, read_bounded, read_internal, read_secret_text, read_stdin_line,
    read_text_bounded, InputError, SecretSource,
};
pub use private::{open_private_append, Mode};
pub use stale::clean_stale_temps;

use std::path::PathBuf;

/// Errors from writing files.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The output path exists and is not a regular file (a FIFO, a device, a directory).
    #[error(
        "cannot write {path}: it is {kind}; an output must be a regular file or not exist yet"
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    /// [`write_new_atomic`]: the file appeared (or existed) and is kept.
    #[error("refusing to overwrite {path}: the file exists")]
    Exists { path: PathBuf },
}

impl crate::error::DomainError for FsError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            FsError::Io { .. } => crate::error::ErrorKind::Failed,
            FsError::Exists { .. } => crate::error::ErrorKind::WouldOverwrite,
            FsError::NotRegular { .. } => crate::error::ErrorKind::Failed,
        }
    }
}

/// What a path that is not a regular file is, in words (a FIFO, a device, a directory): for
/// refused inputs and outputs alike.
fn file_kind(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}
