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

/// Who may read a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0644: certificates, public keys, state.
    Public,
    /// 0600: private keys, UDS files, connection strings.
    Private,
}

/// Write `contents` to `path` atomically: temp file in the same directory, fsync, rename.
/// Parent directories are created. The file has `mode` from the moment it exists.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<(), FsError> {
    let io = |source| FsError::Io { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".devkit-tmp-")
        .permissions(permissions(mode))
        .tempfile_in(&dir)
        .map_err(io)?;
    tmp.write_all(contents).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
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

/// Write several files as one unit: every file is first written to a temporary sibling, and
/// only when all succeeded are they renamed into place. A failure leaves no new file behind.
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>, Mode)]) -> Result<(), FsError> {
    let mut staged = Vec::with_capacity(files.len());
    for (path, contents, mode) in files {
        let io = |source| FsError::Io { path: path.clone(), source };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".devkit-tmp-")
            .permissions(permissions(*mode))
            .tempfile_in(&dir)
            .map_err(io)?;
        tmp.write_all(contents).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        staged.push((tmp, path.clone()));
    }
    for (tmp, path) in staged {
        tmp.persist(&path).map_err(|e| FsError::Io { path: path.clone(), source: e.error })?;
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
}
