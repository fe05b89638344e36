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

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

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

/// Refuse an output path that exists and is not a regular file: renaming over a FIFO or a
/// device would work, but reading it first (to compare identities) would hang or never end.
pub fn check_output(path: &Path) -> Result<(), FsError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.file_type().is_file() => Err(FsError::NotRegular {
            path: path.to_path_buf(),
            kind: file_kind(&m.file_type()),
        }),
        _ => Ok(()),
    }
}

/// Write `contents` to `path` atomically only when `path` does not exist: a UDS file is never
/// replaced (it may be another device's root secret). The check and the rename are one
/// operation (no window in which a concurrent writer's file would be overwritten).
pub fn write_new_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<(), FsError> {
    let io = |source| FsError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        return Err(FsError::Exists {
            path: path.to_path_buf(),
        });
    }
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(io)?;
    clean_stale_temps_once(&dir);
    let mut tmp = temp_in(&dir, mode).map_err(io)?;
    tmp.write_all(contents).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    retry_while_shared(tmp, |t| t.persist_noclobber(path)).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            FsError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            io(e.error)
        }
    })?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The prefix of our temporary files: `.devkit-tmp-<pid>-<random>`.
const TEMP_PREFIX: &str = ".devkit-tmp-";
/// A temporary file of a process that no longer exists is removed once it is this old (so a
/// writer in another PID namespace sharing the directory is given time).
const STALE_DEAD_PID: std::time::Duration = std::time::Duration::from_secs(60);
/// A temporary file whose owner cannot be told (no PID in its name, or no way to ask) is
/// removed once it is this old: no write of ours takes that long.
const STALE_UNKNOWN: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Remove our temporary files that a killed run (SIGKILL, power loss) left in `dir`: only
/// regular files named `.devkit-tmp-*`, and only when stale: their process (the PID in the
/// name) is gone and they are over a minute old, or (no PID) over a day old. A live writer's
/// file is never touched. Returns how many were removed. Best effort: errors are ignored.
pub fn clean_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if !meta.file_type().is_file() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let pid = rest
            .split_once('-')
            .and_then(|(p, _)| p.parse::<u32>().ok());
        let stale = match pid.map(process_alive) {
            Some(Some(false)) => age >= STALE_DEAD_PID,
            Some(Some(true)) => false,
            _ => age >= STALE_UNKNOWN,
        };
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether process `pid` exists (`None`: cannot tell).
#[cfg(unix)]
fn process_alive(pid: u32) -> Option<bool> {
    if pid == std::process::id() {
        return Some(true);
    }
    let pid = i32::try_from(pid).ok().filter(|p| *p > 0)?;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => Some(true),
        Err(nix::errno::Errno::ESRCH) => Some(false),
        Err(_) => None,
    }
}

/// Whether process `pid` exists (`None`: cannot tell): a handle to it says whether it is still
/// running; no such PID (`ERROR_INVALID_PARAMETER`) means gone, another user's (access denied)
/// means alive.
#[cfg(windows)]
fn process_alive(pid: u32) -> Option<bool> {
    use windows_sys::Win32::Foundation::{
        CloseHandle, GetLastError, ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER, STILL_ACTIVE,
    };
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    if pid == std::process::id() {
        return Some(true);
    }
    // SAFETY: plain Win32 calls; the handle, when opened, is closed below.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            return match GetLastError() {
                ERROR_INVALID_PARAMETER => Some(false),
                ERROR_ACCESS_DENIED => Some(true),
                _ => None,
            };
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(handle, &mut code);
        CloseHandle(handle);
        (ok != 0).then_some(code == STILL_ACTIVE as u32)
    }
}

#[cfg(not(any(unix, windows)))]
fn process_alive(pid: u32) -> Option<bool> {
    (pid == std::process::id()).then_some(true)
}

/// [`clean_stale_temps`] once per directory per process (a batch writes many chunks into
/// the same directory; one scan is enough).
fn clean_stale_temps_once(dir: &Path) {
    static CLEANED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let Ok(mut cleaned) = CLEANED.lock() else {
        return;
    };
    if cleaned.iter().any(|d| d == dir) {
        return;
    }
    cleaned.push(dir.to_path_buf());
    drop(cleaned);
    clean_stale_temps(dir);
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

/// Who may read a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0644: certificates, public keys, state.
    Public,
    /// 0600: private keys, UDS files, connection strings.
    Private,
}

/// Write `contents` to `path` atomically: temp file in the same directory, fsync, rename
/// (the one-file case of [`write_all_atomic`]). Parent directories are created. The file has
/// `mode` from the moment it exists.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<(), FsError> {
    write_all_atomic(&[(path.to_path_buf(), contents, mode)])
}

/// Open `path` for appending, creating it private (owner-only, as [`Mode::Private`]) when it
/// does not exist: a log that may hold secrets. An existing file keeps its permissions.
pub fn open_private_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(windows)]
    match private_windows::create_new(path) {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    opts.open(path)
}

/// Create the staging file for `mode` in `dir`: private files are readable by their owner only
/// from the moment they exist (mode 0600 on Unix; on Windows a protected DACL granting the
/// current user alone, see [`private_windows`]).
fn temp_in(dir: &Path, mode: Mode) -> std::io::Result<tempfile::NamedTempFile> {
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(match mode {
            Mode::Public => 0o644,
            Mode::Private => 0o600,
        }));
    }
    #[cfg(windows)]
    if mode == Mode::Private {
        return builder.make_in(dir, private_windows::create_new);
    }
    #[cfg(not(any(unix, windows)))]
    if mode == Mode::Private {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "private files need Unix or Windows file permissions",
        ));
    }
    builder.tempfile_in(dir)
}

/// Private files on Windows: created with a security descriptor whose DACL is protected (no
/// inherited entries from the directory) and grants full access to the current user's SID
/// only: `D:P(A;;FA;;;<user SID>)`. Administrators and other users get no entry, the Windows
/// counterpart of mode 0600. The descriptor is given to `CreateFileW`, so there is no moment
/// when the file exists with the directory's inherited (often wider) permissions.
#[cfg(windows)]
mod private_windows {
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::os::windows::io::FromRawHandle;
    use std::path::Path;
    use windows_sys::Win32::Foundation::{
        CloseHandle, LocalFree, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
    };
    use windows_sys::Win32::Security::Authorization::{
        ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
        SDDL_REVISION_1,
    };
    use windows_sys::Win32::Security::{
        GetTokenInformation, TokenUser, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY,
        TOKEN_USER,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_DELETE, FILE_SHARE_READ,
        FILE_SHARE_WRITE,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    /// Create `path` (it must not exist) readable and writable by the current user only.
    pub fn create_new(path: &Path) -> io::Result<std::fs::File> {
        let sddl: Vec<u16> = format!("D:P(A;;FA;;;{})", current_user_sid()?)
            .encode_utf16()
            .chain([0])
            .collect();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated UTF-16; on success `sd` is a LocalAlloc'ed
        // descriptor we free below.
        if unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        let attrs = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: sd,
            bInheritHandle: 0,
        };
        let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
        // SAFETY: `wide` is a NUL-terminated path, `attrs` points at a valid descriptor; the
        // share mode is std's (so the file can be renamed into place while open).
        let handle = unsafe {
            CreateFileW(
                wide.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                &attrs,
                CREATE_NEW,
                FILE_ATTRIBUTE_NORMAL,
                std::ptr::null_mut(),
            )
        };
        let err = io::Error::last_os_error();
        // SAFETY: `sd` came from ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(sd) };
        if handle == INVALID_HANDLE_VALUE {
            return Err(err);
        }
        // SAFETY: a fresh handle we own.
        Ok(unsafe { std::fs::File::from_raw_handle(handle) })
    }

    /// The DACL of the file at `path` in SDDL (`D:P(A;;FA;;;S-1-5-21-...)`): what the tests
    /// compare with the owner-only descriptor [`create_new`] gives.
    #[cfg(test)]
    pub(super) fn dacl_sddl(path: &Path) -> io::Result<String> {
        use windows_sys::Win32::Security::Authorization::{
            ConvertSecurityDescriptorToStringSecurityDescriptorW, GetNamedSecurityInfoW,
            SE_FILE_OBJECT,
        };
        use windows_sys::Win32::Security::DACL_SECURITY_INFORMATION;
        let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `wide` is a NUL-terminated path; on success `sd` is LocalAlloc'ed (freed below).
        let rc = unsafe {
            GetNamedSecurityInfoW(
                wide.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut sd,
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc as i32));
        }
        let mut text: *mut u16 = std::ptr::null_mut();
        // SAFETY: `sd` is the descriptor read above; `text` is LocalAlloc'ed on success.
        let ok = unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                sd,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut text,
                std::ptr::null_mut(),
            )
        };
        let err = io::Error::last_os_error();
        // SAFETY: allocated by GetNamedSecurityInfoW.
        unsafe { LocalFree(sd) };
        if ok == 0 {
            return Err(err);
        }
        // SAFETY: `text` is a NUL-terminated UTF-16 string, freed right after.
        let s = unsafe {
            let n = (0..).take_while(|&i| *text.add(i) != 0).count();
            let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, n));
            LocalFree(text.cast());
            s
        };
        Ok(s)
    }

    /// Whether this process runs under Wine (which exports `wine_get_version` from ntdll).
    #[cfg(test)]
    pub(super) fn under_wine() -> bool {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
        // SAFETY: NUL-terminated names; ntdll is loaded in every process.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
            !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }

    /// The current process user's SID as a string (`S-1-5-21-...`).
    pub(super) fn current_user_sid() -> io::Result<String> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: plain Win32 calls with valid out-pointers; the token handle is closed below.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let sid = token_user_sid(token);
        // SAFETY: `token` is the handle opened above.
        unsafe { CloseHandle(token) };
        sid
    }

    fn token_user_sid(token: HANDLE) -> io::Result<String> {
        let mut len = 0u32;
        // SAFETY: asks for the needed size only (the call fails with ERROR_INSUFFICIENT_BUFFER).
        unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut len) };
        if len == 0 || len > 64 * 1024 {
            return Err(io::Error::last_os_error());
        }
        // u64 storage keeps TOKEN_USER's pointer field aligned.
        let mut buf = vec![0u64; (len as usize).div_ceil(8)];
        // SAFETY: `buf` holds `len` bytes.
        if unsafe { GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) }
            == 0
        {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: on success the buffer starts with a TOKEN_USER whose SID points into it.
        let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
        let mut text: *mut u16 = std::ptr::null_mut();
        // SAFETY: `sid` is valid while `buf` lives; `text` is LocalAlloc'ed on success.
        if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `text` is a NUL-terminated UTF-16 string.
        let s = unsafe {
            let n = (0..).take_while(|&i| *text.add(i) != 0).count();
            String::from_utf16_lossy(std::slice::from_raw_parts(text, n))
        };
        // SAFETY: allocated by ConvertSidToStringSidW.
        unsafe { LocalFree(text.cast()) };
        Ok(s)
    }
}

/// Write several files as one unit: every file is first written to a temporary sibling, the
/// staged files are made durable together, and only then are they renamed into place. A
/// failure before the renames leaves no new file behind.
///
/// Durability is one `syncfs` for the whole set on Linux (one journal commit instead of one per
/// file: a factory batch of thousands of certificates is otherwise bound by fsync latency), a
/// per-file `fsync` elsewhere; the parent directories are synced after the renames.
pub fn write_all_atomic<B: AsRef<[u8]>>(files: &[(PathBuf, B, Mode)]) -> Result<(), FsError> {
    let mut staged = Vec::with_capacity(files.len());
    for (path, contents, mode) in files {
        let io = |source| FsError::Io {
            path: path.clone(),
            source,
        };
        check_output(path)?;
        let dir = parent_dir(path);
        std::fs::create_dir_all(&dir).map_err(io)?;
        clean_stale_temps_once(&dir);
        let mut tmp = temp_in(&dir, *mode).map_err(io)?;
        tmp.write_all(contents.as_ref()).map_err(io)?;
        staged.push((tmp, path.clone()));
    }
    sync_staged(&staged)?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (tmp, path) in staged {
        retry_while_shared(tmp, |t| t.persist(&path)).map_err(|e| FsError::Io {
            path: path.clone(),
            source: e.error,
        })?;
        let dir = parent_dir(&path);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        // Best effort: some filesystems refuse fsync on a directory; the data itself is synced.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Rename a staged file into place. On Windows a rename fails with "access denied" while
/// another program has the target (or the staged file) open without delete sharing: a virus
/// scanner or the search indexer looking at a file just written, an editor showing it. Those
/// opens are brief, so the rename is retried for up to about 2 s before the error is given.
fn retry_while_shared(
    mut tmp: tempfile::NamedTempFile,
    mut rename: impl FnMut(tempfile::NamedTempFile) -> Result<std::fs::File, tempfile::PersistError>,
) -> Result<std::fs::File, tempfile::PersistError> {
    let mut wait = std::time::Duration::from_millis(5);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match rename(tmp) {
            Err(e)
                if cfg!(windows)
                    && e.error.kind() == std::io::ErrorKind::PermissionDenied
                    && std::time::Instant::now() < deadline =>
            {
                tmp = e.file;
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(target_os = "linux")]
fn sync_staged(staged: &[(tempfile::NamedTempFile, PathBuf)]) -> Result<(), FsError> {
    use std::os::fd::AsRawFd;
    if let [(tmp, path), ..] = staged {
        if staged.len() == 1 {
            return tmp.as_file().sync_all().map_err(|source| FsError::Io {
                path: path.clone(),
                source,
            });
        }
        // Staged files may sit on several filesystems (out-dir and per-device dirs normally
        // share one); sync each distinct filesystem once.
        let mut devices = Vec::new();
        for (tmp, path) in staged {
            use std::os::unix::fs::MetadataExt;
            let io = |source| FsError::Io {
                path: path.clone(),
                source,
            };
            let dev = tmp.as_file().metadata().map_err(io)?.dev();
            if !devices.contains(&dev) {
                devices.push(dev);
                nix::unistd::syncfs(tmp.as_file().as_raw_fd())
                    .map_err(|e| io(std::io::Error::from(e)))?;
            }
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn sync_staged(staged: &[(tempfile::NamedTempFile, PathBuf)]) -> Result<(), FsError> {
    for (tmp, path) in staged {
        tmp.as_file().sync_all().map_err(|source| FsError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/key.pem");
        write_atomic(&p, b"one", Mode::Private).unwrap();
        write_atomic(&p, b"two", Mode::Private).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }

    #[test]
    fn write_all_leaves_nothing_when_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, b"file, not a dir").unwrap();
        let files = vec![
            (dir.path().join("a.pem"), b"a".to_vec(), Mode::Public),
            (blocker.join("b.pem"), b"b".to_vec(), Mode::Public),
        ];
        assert!(write_all_atomic(&files).is_err());
        assert!(!dir.path().join("a.pem").exists());
    }

    #[test]
    fn write_all_writes_every_file_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            (dir.path().join("cert.pem"), b"cert".to_vec(), Mode::Public),
            (
                dir.path().join("dev/key.pem"),
                b"key".to_vec(),
                Mode::Private,
            ),
        ];
        write_all_atomic(&files).unwrap();
        assert_eq!(std::fs::read(dir.path().join("cert.pem")).unwrap(), b"cert");
        assert_eq!(
            std::fs::read(dir.path().join("dev/key.pem")).unwrap(),
            b"key"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| {
                std::fs::metadata(dir.path().join(p))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!((mode("cert.pem"), mode("dev/key.pem")), (0o644, 0o600));
        }
    }

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

    #[test]
    fn write_new_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("devkit.uds");
        write_new_atomic(&p, b"first", Mode::Private).unwrap();
        assert!(matches!(
            write_new_atomic(&p, b"second", Mode::Private),
            Err(FsError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[cfg(any(unix, windows))]
    #[test]
    fn stale_temps_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        let touch = |name: &str, when: std::time::SystemTime| {
            let p = dir.path().join(name);
            let f = std::fs::File::create(&p).unwrap();
            f.set_modified(when).unwrap();
            p
        };
        // A PID that cannot exist: above Linux's pid_max limit of 2^22; on Windows (PIDs are
        // multiples of 4, from a handle table) one near 2^32.
        let dead = if cfg!(windows) {
            4_294_967_292u32
        } else {
            4_194_999
        };
        let dead_old = touch(&format!(".devkit-tmp-{dead}-abc"), old);
        let dead_new = touch(
            &format!(".devkit-tmp-{dead}-def"),
            std::time::SystemTime::now(),
        );
        let live = touch(&format!(".devkit-tmp-{}-ghi", std::process::id()), old);
        let legacy_recent = touch(".devkit-tmp-XyZ123", old);
        let legacy_ancient = touch(
            ".devkit-tmp-AbC456",
            std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600),
        );
        let other = touch("devkit.uds", old);
        assert_eq!(clean_stale_temps(dir.path()), 2);
        assert!(!dead_old.exists() && !legacy_ancient.exists());
        assert!(dead_new.exists() && live.exists() && legacy_recent.exists() && other.exists());
    }

    /// A file another program holds open without delete sharing (a virus scanner, an editor)
    /// is replaced once it lets go, not refused.
    #[cfg(windows)]
    #[test]
    fn a_briefly_locked_target_is_replaced_once_released() {
        use std::os::windows::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"old", Mode::Public).unwrap();
        // FILE_SHARE_READ only: renaming over it fails while it is open.
        let held = std::fs::OpenOptions::new()
            .read(true)
            .share_mode(1)
            .open(&p)
            .unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        write_atomic(&p, b"new", Mode::Public).unwrap();
        release.join().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    /// The Windows counterpart of mode 0600: a private file (and its staging file) carries a
    /// protected DACL granting the current user alone; a public one inherits the directory's.
    #[cfg(windows)]
    #[test]
    fn private_files_have_an_owner_only_protected_dacl() {
        let dir = tempfile::tempdir().unwrap();
        let owner_only = format!(
            "D:P(A;;FA;;;{})",
            private_windows::current_user_sid().unwrap()
        );
        // Wine 8 keeps no security descriptor on files: it turns the DACL into Unix mode bits
        // and reports one made from them (`D:(A;;FA;;;SY)(A;;FA;;;<user>)` for ours). There
        // the check is what those bits can say: the owner has full access, nobody else any.
        let wine = private_windows::under_wine();
        let is_owner_only = |path: &Path| {
            let dacl = private_windows::dacl_sddl(path).unwrap();
            if wine {
                let user_ace = owner_only.trim_start_matches("D:P");
                dacl.contains(user_ace)
                    && !["WD)", "BU)", "AU)", "BA)"]
                        .iter()
                        .any(|who| dacl.contains(who))
            } else {
                dacl == owner_only
            }
        };
        let tmp = temp_in(dir.path(), Mode::Private).unwrap();
        assert!(is_owner_only(tmp.path()));
        drop(tmp);
        let key = dir.path().join("sub/alias-key.pem");
        write_atomic(&key, b"one", Mode::Private).unwrap();
        write_atomic(&key, b"two", Mode::Private).unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), b"two");
        assert!(is_owner_only(&key));
        let uds = dir.path().join("devkit.uds");
        write_new_atomic(&uds, b"uds", Mode::Private).unwrap();
        assert!(is_owner_only(&uds));
        let log = dir.path().join("monitor.log");
        std::io::Write::write_all(&mut open_private_append(&log).unwrap(), b"one\n").unwrap();
        std::io::Write::write_all(&mut open_private_append(&log).unwrap(), b"two\n").unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"one\ntwo\n");
        assert!(is_owner_only(&log));
        let cert = dir.path().join("cert.pem");
        write_atomic(&cert, b"cert", Mode::Public).unwrap();
        assert!(!is_owner_only(&cert));
    }

    #[cfg(unix)]
    #[test]
    fn private_temp_files_are_0600_while_they_exist() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tmp = temp_in(dir.path(), Mode::Private).unwrap();
        assert_eq!(
            tmp.as_file().metadata().unwrap().permissions().mode() & 0o777,
            0o600
        );
        let name = tmp
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            name.starts_with(&format!(".devkit-tmp-{}-", std::process::id())),
            "{name}"
        );
    }
}
