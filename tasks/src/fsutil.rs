//! Atomic, identity-safe file writes.
//!
//! Every file this project writes goes through here so that nothing is ever half-written (we
//! write a temporary file in the same directory, fsync it and rename it over the target) and
//! secrets are never readable by others (private material is created owner-only from the
//! start, not chmod-ed afterwards: mode 0600 on Unix, an owner-only protected DACL on Windows).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors from writing files.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to overwrite {path}: it holds {existing}, not {new}; move it away or choose another --out-dir")]
    WouldOverwrite {
        path: PathBuf,
        existing: String,
        new: String,
    },
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

/// Create the staging file for `mode` in `dir`: private files are readable by their owner only
/// from the moment they exist (mode 0600 on Unix; on Windows a protected DACL granting the
/// current user alone, see [`private_windows`]).
fn staging_file(dir: &Path, mode: Mode) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".devkit-tmp-");
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
        return Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "private files need Unix or Windows file permissions"));
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
    use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Security::Authorization::{ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1};
    use windows_sys::Win32::Security::{GetTokenInformation, TokenUser, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER};
    use windows_sys::Win32::Storage::FileSystem::{CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE};
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    /// Create `path` (it must not exist) readable and writable by the current user only.
    pub fn create_new(path: &Path) -> io::Result<std::fs::File> {
        let sddl: Vec<u16> = format!("D:P(A;;FA;;;{})", current_user_sid()?).encode_utf16().chain([0]).collect();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated UTF-16; on success `sd` is a LocalAlloc'ed
        // descriptor we free below.
        if unsafe { ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.as_ptr(), SDDL_REVISION_1, &mut sd, std::ptr::null_mut()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let attrs = SECURITY_ATTRIBUTES { nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32, lpSecurityDescriptor: sd, bInheritHandle: 0 };
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

    /// The current process user's SID as a string (`S-1-5-21-...`).
    fn current_user_sid() -> io::Result<String> {
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
        if unsafe { GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) } == 0 {
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
        let io = |source| FsError::Io { path: path.clone(), source };
        let dir = parent_dir(path);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut tmp = staging_file(&dir, *mode).map_err(io)?;
        tmp.write_all(contents.as_ref()).map_err(io)?;
        staged.push((tmp, path.clone()));
    }
    sync_staged(&staged)?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (tmp, path) in staged {
        tmp.persist(&path).map_err(|e| FsError::Io { path: path.clone(), source: e.error })?;
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
            return tmp.as_file().sync_all().map_err(|source| FsError::Io { path: path.clone(), source });
        }
        // Staged files may sit on several filesystems (out-dir and per-device dirs normally
        // share one); sync each distinct filesystem once.
        let mut devices = Vec::new();
        for (tmp, path) in staged {
            use std::os::unix::fs::MetadataExt;
            let io = |source| FsError::Io { path: path.clone(), source };
            let dev = tmp.as_file().metadata().map_err(io)?.dev();
            if !devices.contains(&dev) {
                devices.push(dev);
                nix::unistd::syncfs(tmp.as_file().as_raw_fd()).map_err(|e| io(std::io::Error::from(e)))?;
            }
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn sync_staged(staged: &[(tempfile::NamedTempFile, PathBuf)]) -> Result<(), FsError> {
    for (tmp, path) in staged {
        tmp.as_file().sync_all().map_err(|source| FsError::Io { path: path.clone(), source })?;
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
            (dir.path().join("dev/key.pem"), b"key".to_vec(), Mode::Private),
        ];
        write_all_atomic(&files).unwrap();
        assert_eq!(std::fs::read(dir.path().join("cert.pem")).unwrap(), b"cert");
        assert_eq!(std::fs::read(dir.path().join("dev/key.pem")).unwrap(), b"key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!((mode("cert.pem"), mode("dev/key.pem")), (0o644, 0o600));
        }
    }
}
