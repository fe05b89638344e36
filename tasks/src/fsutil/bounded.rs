//! Bounded reads of every input file (and stdin): a FIFO, a device or a directory where a
//! regular file is expected is refused before it is read, and nothing grows past what the
//! input can legitimately be ([`limits`]). Secret texts (a Wi-Fi password, a connection
//! string) are read here too, zeroized and never quoted in errors.

use super::file_kind;
use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

/// What each kind of input can legitimately be, in bytes. Reads stop (with an error naming
/// the input and the limit) past these.
pub mod limits {
    /// A firmware image: the STM32F412's flash is 1 MiB.
    pub const FIRMWARE_BIN: u64 = 1024 * 1024;
    /// A linker map file (a DevKit sketch's is about 1-2 MiB).
    pub const MAP_FILE: u64 = 16 * 1024 * 1024;
    /// A UDS file: 64 hex digits and a line ending, with room for whitespace.
    pub const UDS_FILE: u64 = 1024;
    /// A Wi-Fi password or connection-string file (or stdin).
    pub const SECRET_TEXT: u64 = 4 * 1024;
    /// A certificate (PEM or DER) or a CA bundle.
    pub const CERT_FILE: u64 = 1024 * 1024;
    /// A factory batch manifest (a 100,000-device manifest is about 10 MiB).
    pub const MANIFEST: u64 = 64 * 1024 * 1024;
    /// A captured serial log given to `devkit logs`.
    pub const LOG_FILE: u64 = 256 * 1024 * 1024;
    /// A small file devkit writes and reads back (`.devkit/state.json`, a build stamp, the
    /// build's `dps_config.json`, the virtual DevKit's EEPROM, MAC and DPS settings): a few KiB.
    pub const STATE_FILE: u64 = 16 * 1024 * 1024;
    /// The DPS emulator's state (enrollments with their certificates, registrations): room for
    /// a factory's bulk enrollments.
    pub const EMULATOR_STATE: u64 = 256 * 1024 * 1024;
    /// A file of a third-party tool read for one line (the AZ3166 platform's `platform.txt`).
    pub const TOOL_FILE: u64 = 4 * 1024 * 1024;
}

/// An input file (or stdin) that cannot be used: missing, unreadable, not a regular file,
/// too large or not text. Names the input and the rule, never the content.
#[derive(Debug, thiserror::Error)]
#[error("invalid {input}: {reason}")]
pub struct InputError {
    /// How the input is named to the user (`--bin "x.bin"`, `uds`).
    pub input: String,
    pub reason: String,
    /// The underlying I/O error kind, when reading failed (e.g. `NotFound`).
    pub io_kind: Option<std::io::ErrorKind>,
}

impl InputError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        InputError {
            input: input.to_string(),
            reason: reason.into(),
            io_kind: None,
        }
    }
    fn io(input: &str, e: std::io::Error) -> Self {
        InputError {
            input: input.to_string(),
            reason: format!("cannot be read: {e}"),
            io_kind: Some(e.kind()),
        }
    }
    /// The same refusal in the one error model: `input` is what was refused, the message
    /// still naming it as this error did (`--bin "x.bin"`).
    pub fn into_invalid(self, input: crate::error::Input) -> crate::error::InvalidInput {
        crate::error::InvalidInput::new(input, self.reason).named(self.input)
    }
    /// True when the input does not exist.
    pub fn is_not_found(&self) -> bool {
        self.io_kind == Some(std::io::ErrorKind::NotFound)
    }
}

fn human_size(n: u64) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// Open `path` for reading only if it is a regular file. On Unix the open does not block
/// (a FIFO without a writer would otherwise hang here) and the check is made on the opened
/// file, so it cannot be swapped between check and read.
fn open_regular(path: &Path, input: &str) -> Result<(std::fs::File, u64), InputError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
    }
    let file = opts.open(path).map_err(|e| match std::fs::metadata(path) {
        // Windows refuses to open a directory as a file ("Access is denied"): say what it is.
        Ok(m) if !m.file_type().is_file() => not_regular(input, &m.file_type()),
        _ => InputError::io(input, e),
    })?;
    let meta = file.metadata().map_err(|e| InputError::io(input, e))?;
    if !meta.file_type().is_file() {
        return Err(not_regular(input, &meta.file_type()));
    }
    Ok((file, meta.len()))
}

fn not_regular(input: &str, ft: &std::fs::FileType) -> InputError {
    InputError::new(
        input,
        format!("is {}; expected a regular file", file_kind(ft)),
    )
}

fn too_large(input: &str, limit: u64) -> InputError {
    InputError::new(
        input,
        format!(
            "is larger than {} (the most this input can legitimately be)",
            human_size(limit)
        ),
    )
}

/// Read the whole regular file at `path`, refusing FIFOs, devices and directories and
/// anything over `limit` bytes. `input` names it in errors (`--bin "build/x.bin"`).
pub fn read_bounded(path: &Path, input: &str, limit: u64) -> Result<Vec<u8>, InputError> {
    let (file, len) = open_regular(path, input)?;
    if len > limit {
        return Err(too_large(input, limit));
    }
    read_limited(file, input, limit, len)
}

/// An input file to be read as a stream (a factory manifest, a captured log): the checks of
/// [`read_bounded`] (a regular file, at most `limit` bytes) before anything is read, then a
/// reader that stops at `limit` whatever the file grows to meanwhile.
pub fn open_bounded(
    path: &Path,
    input: &str,
    limit: u64,
) -> Result<std::io::Take<std::fs::File>, InputError> {
    let (file, len) = open_regular(path, input)?;
    if len > limit {
        return Err(too_large(input, limit));
    }
    Ok(file.take(limit))
}

/// A small text input file (a certificate, a CA bundle, a manifest) through [`read_bounded`],
/// refused when it is not UTF-8 text: the one rule for both adapters.
pub fn read_text_bounded(path: &Path, input: &str, limit: u64) -> Result<String, InputError> {
    let bytes = read_bounded(path, input, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        let mut bytes = e.into_bytes();
        bytes.fill(0);
        InputError::new(input, "is not UTF-8 text")
    })
}

/// Read a file devkit wrote itself (project state, build stamps, the emulator's and the virtual
/// DevKit's state) through [`read_bounded`]: `Ok(None)` when it does not exist; a FIFO, a
/// device or a file over `limit` is an error naming its path, never an unbounded read.
pub fn read_internal(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, InputError> {
    match read_bounded(path, &path.display().to_string(), limit) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// For callers whose errors hold an `io::Error`: the same kind (`InvalidData` for a refused
/// file), the message naming the file and the rule.
impl From<InputError> for std::io::Error {
    fn from(e: InputError) -> Self {
        std::io::Error::new(
            e.io_kind.unwrap_or(std::io::ErrorKind::InvalidData),
            e.to_string(),
        )
    }
}

fn read_limited(r: impl Read, input: &str, limit: u64, hint: u64) -> Result<Vec<u8>, InputError> {
    // Sized up front: a secret is not left behind in a reallocated buffer.
    let mut buf = Vec::with_capacity(hint.min(limit) as usize + 1);
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| InputError::io(input, e))?;
    if buf.len() as u64 > limit {
        buf.fill(0);
        return Err(too_large(input, limit));
    }
    Ok(buf)
}

/// Read the first line of standard input (line ending included), at most `limit` bytes: a
/// secret typed at a prompt or piped in is one line (a UDS, a password, a connection string
/// never holds a line break). Zeroized: it may be a secret.
pub fn read_stdin_line(input: &str, limit: u64) -> Result<Zeroizing<Vec<u8>>, InputError> {
    let mut line = Zeroizing::new(Vec::with_capacity(limit as usize + 1));
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let mut byte = [0u8; 1];
    loop {
        match lock.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
                if line.len() as u64 > limit {
                    return Err(too_large(input, limit));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(InputError::io(input, e)),
        }
    }
    Ok(line)
}

/// Where a secret text (a Wi-Fi password, a connection string) comes from.
#[derive(Debug, Clone, Copy)]
pub enum SecretSource<'a> {
    File(&'a Path),
    Stdin,
}

/// Read a secret text: the whole file (or the first line of stdin), at most
/// [`limits::SECRET_TEXT`] bytes, UTF-8. The one rule for every secret text: exactly one
/// trailing line ending (LF or CRLF) is removed, nothing else (a password may begin or end
/// with spaces; parsers that ignore whitespace trim it themselves). Errors never quote it.
pub fn read_secret_text(
    source: SecretSource<'_>,
    input: &str,
) -> Result<Zeroizing<String>, InputError> {
    let bytes = match source {
        SecretSource::File(path) => Zeroizing::new(read_bounded(path, input, limits::SECRET_TEXT)?),
        SecretSource::Stdin => read_stdin_line(input, limits::SECRET_TEXT)?,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        InputError::new(
            input,
            format!(
                "is not UTF-8 text (byte {} is invalid)",
                e.valid_up_to() + 1
            ),
        )
    })?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    Ok(Zeroizing::new(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use crate::fsutil::{write_atomic, FsError, Mode};

    #[test]
    fn bounded_reads_refuse_devices_fifos_directories_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello").unwrap();
        assert_eq!(read_bounded(&small, "--x", 5).unwrap(), b"hello");
        // Files devkit wrote itself: missing is `None`, too large an error naming the path.
        assert_eq!(
            read_internal(&small, 5).unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert!(read_internal(&dir.path().join("none.json"), 5)
            .unwrap()
            .is_none());
        let e = read_internal(&small, 4).unwrap_err();
        assert!(
            e.to_string().contains(&small.display().to_string())
                && e.to_string().contains("4 bytes"),
            "{e}"
        );
        assert_eq!(
            std::io::Error::from(e).kind(),
            std::io::ErrorKind::InvalidData
        );
        let e = read_bounded(&small, "--x \"small\"", 4)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--x \"small\"") && e.contains("4 bytes") && !e.contains("hello"),
            "{e}"
        );
        let e = read_bounded(dir.path(), "--dir-as-file", 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("directory"), "{e}");
        assert!(read_bounded(&dir.path().join("missing"), "--m", 4)
            .unwrap_err()
            .is_not_found());
        #[cfg(unix)]
        {
            let e = read_bounded(Path::new("/dev/zero"), "--bin", limits::FIRMWARE_BIN)
                .unwrap_err()
                .to_string();
            assert!(e.contains("--bin") && e.contains("device"), "{e}");
            let fifo = dir.path().join("fifo");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
            // Must return at once (no writer would ever come).
            let e = read_bounded(&fifo, "--map", limits::MAP_FILE)
                .unwrap_err()
                .to_string();
            assert!(e.contains("FIFO"), "{e}");
            assert!(matches!(
                write_atomic(&fifo, b"x", Mode::Public),
                Err(FsError::NotRegular { .. })
            ));
        }
    }

    #[test]
    fn secret_text_drops_one_line_ending_and_never_quotes_itself() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        for (raw, want) in [
            (&b" canary pw \r\n"[..], " canary pw "),
            (b"canary\n\n", "canary\n"),
            (b"", ""),
        ] {
            std::fs::write(&f, raw).unwrap();
            assert_eq!(
                read_secret_text(SecretSource::File(&f), "--password-file")
                    .unwrap()
                    .as_str(),
                want
            );
        }
        std::fs::write(&f, b"canary\xff").unwrap();
        let e = read_secret_text(SecretSource::File(&f), "--password-file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("UTF-8") && !e.contains("canary"), "{e}");
        std::fs::write(&f, "canary".repeat(1000)).unwrap();
        let e = read_secret_text(SecretSource::File(&f), "--password-file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 KiB") && !e.contains("canary"), "{e}");
    }
}
