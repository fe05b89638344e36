//! Atomic writes: a temporary sibling, fsync, rename (retried while Windows holds the target
//! briefly); several files as one unit; a file that must not exist yet never replaced.

use super::private::temp_in;
use super::stale::clean_stale_temps_once;
use super::{file_kind, FsError, Mode};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    // The file's own error: NamedTempFile's names the temporary path, gone once this fails.
    tmp.as_file_mut().write_all(contents).map_err(io)?;
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

/// Write `contents` to `path` atomically: temp file in the same directory, fsync, rename
/// (the one-file case of [`write_all_atomic`]). Parent directories are created. The file has
/// `mode` from the moment it exists.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<(), FsError> {
    write_all_atomic(&[(path.to_path_buf(), contents, mode)])
}

/// Write several files as one unit: every file is first written to a temporary sibling, the
/// staged files are made durable together, and only then are they renamed into place. A
/// failure before the renames leaves no new file behind.
///
/// Durability is one point for the whole set: every staged file's `fdatasync`, issued
/// concurrently so that they share journal commits ([`sync_staged`]; a factory batch of
/// thousands of certificates is otherwise bound by fsync latency), then, after the renames,
/// one `fsync` per parent directory.
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
        // The file's own error: NamedTempFile's names the temporary path, gone once this fails.
        tmp.as_file_mut().write_all(contents.as_ref()).map_err(io)?;
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

/// Make the staged files durable before they are renamed into place: each file's own
/// `fdatasync`, issued from several threads at once. Concurrent syncs share the journal commit
/// on journaling filesystems (ext4's and XFS's group commit), so a chunk of hundreds of files
/// costs about one commit, without `syncfs`, which flushed every other program's writes on the
/// filesystem too, and without depending on how a filesystem orders metadata (each file is
/// synced itself, so this holds on btrfs as on ext4).
fn sync_staged(staged: &[(tempfile::NamedTempFile, PathBuf)]) -> Result<(), FsError> {
    /// Enough syncs in flight to fill a commit; more threads only cost memory.
    const SYNC_THREADS: usize = 16;
    let sync = |part: &[(tempfile::NamedTempFile, PathBuf)]| -> Result<(), FsError> {
        for (tmp, path) in part {
            tmp.as_file().sync_data().map_err(|source| FsError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    };
    if staged.len() <= 1 {
        return sync(staged);
    }
    let per_thread = staged.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = staged
            .chunks(per_thread)
            .map(|part| scope.spawn(move || sync(part)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
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

    /// More files than sync threads: every file is complete, no temporary file is left.
    #[test]
    fn a_large_set_is_synced_concurrently_and_lands_whole() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..100)
            .map(|i| {
                let body = format!("file {i}\n").repeat(i + 1);
                (dir.path().join(format!("{i}.pem")), body, Mode::Public)
            })
            .collect();
        write_all_atomic(&files).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 100, "no temporary files left behind");
        for (path, body, _) in &files {
            assert_eq!(&std::fs::read_to_string(path).unwrap(), body);
        }
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
}
