//! Atomic, identity-safe file writes.
//!
//! Every file this project writes goes through here so that nothing is ever half-written (we
//! write a temporary file in the same directory, fsync it and rename it over the target) and
//! secrets are never world-readable (private material is created with mode 0600 from the
//! start, not chmod-ed afterwards).

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

impl crate::error::DomainError for FsError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            FsError::Io { .. } => crate::error::ErrorKind::Failed,
            FsError::WouldOverwrite { .. } => crate::error::ErrorKind::WouldOverwrite,
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

#[cfg(unix)]
fn permissions(mode: Mode) -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(match mode {
        Mode::Public => 0o644,
        Mode::Private => 0o600,
    })
}

#[cfg(not(unix))]
fn permissions(_mode: Mode) -> std::fs::Permissions {
    std::fs::metadata(".").map(|m| m.permissions()).unwrap_or_else(|_| unreachable!())
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
        let mut tmp = tempfile::Builder::new()
            .prefix(".devkit-tmp-")
            .permissions(permissions(*mode))
            .tempfile_in(&dir)
            .map_err(io)?;
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
