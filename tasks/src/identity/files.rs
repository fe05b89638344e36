//! Writing an identity's files safely, shared by the CLI, the daemon and provisioning.
//!
//! All files of one identity are written as one unit through [`crate::fsutil`] (atomic, the
//! key created 0600). A file that already holds exactly the new content is left untouched; a
//! file with different content (another identity, or the same ID after a firmware change) is
//! never silently overwritten: it is first kept as `<name>.<UTC timestamp>.bak` (a hard link,
//! so the original name never disappears), and the result says so.
//!
//! Deciding (and backing up) and writing are one step per file: a [`PlannedWrite`] holds its
//! files' locks until it is dropped, so two concurrent writes of the same files run one after
//! the other, and the second backs up what the first wrote instead of losing it. Within a
//! process (two generateCert requests for one registration ID in the daemon) per file; across
//! processes (several `devkit generate-cert` at once) with an advisory lock on each output
//! directory ([`DirLocks`]), held from the plan to the end of the commit, so an identity's
//! files are always one identity's. A plan dropped without a successful commit removes the
//! backups it made (the originals were not replaced).

use super::DeviceIdentity;
use crate::fsutil::{self, FsError, Mode};
use crate::project::{IdentityRecord, IdentitySource, ProjectError, ProjectState};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use zeroize::Zeroizing;

/// The identity files being planned or written in this process: the thread holding each
/// (re-entrant: a batch plans several identities on one thread before committing) and how
/// many times it holds it.
static HELD: Mutex<Option<HashMap<PathBuf, (ThreadId, usize)>>> = Mutex::new(None);
static RELEASED: Condvar = Condvar::new();

fn held() -> MutexGuard<'static, Option<HashMap<PathBuf, (ThreadId, usize)>>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// Exclusive use of some files by the current thread, until dropped.
struct FileLocks(Vec<PathBuf>);

impl FileLocks {
    /// Wait until no other thread holds any of `paths`, then hold them all (all at once, so
    /// two single-identity writes cannot deadlock).
    fn acquire(paths: Vec<PathBuf>) -> FileLocks {
        let me = std::thread::current().id();
        let mut guard = held();
        loop {
            let map = guard.get_or_insert_with(HashMap::new);
            if paths
                .iter()
                .all(|p| map.get(p).is_none_or(|(t, _)| *t == me))
            {
                for p in &paths {
                    map.entry(p.clone()).or_insert((me, 0)).1 += 1;
                }
                return FileLocks(paths);
            }
            guard = RELEASED.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for FileLocks {
    fn drop(&mut self) {
        let mut guard = held();
        if let Some(map) = guard.as_mut() {
            for p in &self.0 {
                if let Some((_, n)) = map.get_mut(p) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(p);
                    }
                }
            }
        }
        drop(guard);
        RELEASED.notify_all();
    }
}

/// This process's advisory locks on output directories, shared by its threads: the lock and
/// how many plans hold it. (An advisory lock belongs to the open file: a second one from the
/// same process would wait for the first.)
static DIR_LOCKS: Mutex<Option<HashMap<PathBuf, (std::fs::File, usize)>>> = Mutex::new(None);

/// Exclusive use of output directories against other processes, until dropped: an advisory
/// lock (`flock` on Unix, `LockFileEx` on Windows, through `std::fs::File::lock`) on the
/// directory itself on Unix, on a `.devkit.lock` file in it on Windows (which cannot lock a
/// directory). The file is left in place: removing a lock file races with its next user.
struct DirLocks(Vec<PathBuf>);

impl DirLocks {
    /// Lock every directory of `paths` (created when missing), in one order for everyone.
    fn acquire(paths: &[PathBuf]) -> std::io::Result<DirLocks> {
        let mut dirs: Vec<PathBuf> = paths.iter().map(|p| parent(p)).collect();
        dirs.sort();
        dirs.dedup();
        let mut held = DirLocks(Vec::new());
        for dir in dirs {
            let mut guard = DIR_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
            let map = guard.get_or_insert_with(HashMap::new);
            if let Some((_, n)) = map.get_mut(&dir) {
                *n += 1;
            } else {
                std::fs::create_dir_all(&dir)?;
                let file = if cfg!(windows) {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(dir.join(".devkit.lock"))?
                } else {
                    std::fs::File::open(&dir)?
                };
                file.lock()?;
                map.insert(dir.clone(), (file, 1));
            }
            held.0.push(dir);
        }
        Ok(held)
    }
}

/// The directory of an identity file (their paths are absolute: see [`contents`]).
fn parent(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

impl Drop for DirLocks {
    fn drop(&mut self) {
        let mut guard = DIR_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = guard.as_mut() {
            for dir in &self.0 {
                if let Some((_, n)) = map.get_mut(dir) {
                    *n -= 1;
                    if *n == 0 {
                        // Closing the file releases the lock.
                        map.remove(dir);
                    }
                }
            }
        }
    }
}

/// Which files to write besides the alias certificate `<registration-id>.pem`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileOptions {
    /// `device-cert.pem` and `device-id-pub.pem`.
    pub device_cert: bool,
    /// `alias-key.pem` (mode 0600).
    pub alias_key: bool,
    /// Put the optional files in `<out-dir>/<registration-id>/` (batches: one set per device).
    pub per_device_dir: bool,
}

/// What a file is (`kind` in `generate-cert --json`: camelCase like every JSON output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FileKind {
    AliasCert,
    DeviceCert,
    DeviceIdPublicKey,
    AliasKey,
}

impl FileKind {
    /// Human label.
    pub fn label(self) -> &'static str {
        match self {
            FileKind::AliasCert => "Alias certificate",
            FileKind::DeviceCert => "DeviceID cert",
            FileKind::DeviceIdPublicKey => "DeviceID key",
            FileKind::AliasKey => "Alias key",
        }
    }
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FileAction {
    /// The file did not exist.
    Written,
    /// The file already held exactly this content; not touched.
    Unchanged,
    /// The file held something else; it was kept as the backup, then replaced.
    Replaced,
}

/// One written (or untouched) file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrittenFile {
    pub kind: FileKind,
    /// Absolute path.
    pub path: PathBuf,
    pub action: FileAction,
    /// Where the previous content was kept (for [`FileAction::Replaced`]).
    pub backup: Option<PathBuf>,
}

impl WrittenFile {
    /// A warning sentence when a previous file was backed up.
    pub fn warning(&self) -> Option<String> {
        self.backup.as_ref().map(|b| {
            format!(
                "{} held a different identity; it was kept as {} and replaced",
                self.path.display(),
                b.display()
            )
        })
    }
}

/// The files of one identity and their bytes: alias certificate first, then device
/// certificate, DeviceID public key, alias key (each when requested).
fn contents(
    d: &DeviceIdentity,
    out_dir: &Path,
    opts: FileOptions,
) -> Vec<(FileKind, PathBuf, Zeroizing<Vec<u8>>, Mode)> {
    let dir = std::path::absolute(out_dir).unwrap_or_else(|_| out_dir.to_path_buf());
    let extras = if opts.per_device_dir {
        dir.join(d.registration_id.as_str())
    } else {
        dir.clone()
    };
    let mut files = vec![(
        FileKind::AliasCert,
        dir.join(format!("{}.pem", d.registration_id)),
        Zeroizing::new(d.alias_cert_pem().into_bytes()),
        Mode::Public,
    )];
    if opts.device_cert {
        files.push((
            FileKind::DeviceCert,
            extras.join("device-cert.pem"),
            Zeroizing::new(d.device_cert_pem().into_bytes()),
            Mode::Public,
        ));
        files.push((
            FileKind::DeviceIdPublicKey,
            extras.join("device-id-pub.pem"),
            Zeroizing::new(d.device_id_public_pem().into_bytes()),
            Mode::Public,
        ));
    }
    if opts.alias_key {
        let pem = d.alias_key_pem();
        files.push((
            FileKind::AliasKey,
            extras.join("alias-key.pem"),
            Zeroizing::new(pem.as_bytes().to_vec()),
            Mode::Private,
        ));
    }
    files
}

/// Files of one identity to be written: what will happen to each, and the bytes to write
/// (only those that change). Zeroized on drop: the alias key may be among them. Holds its
/// files (see the module documentation) until dropped.
pub struct PlannedWrite {
    pub files: Vec<WrittenFile>,
    pub to_write: Vec<(PathBuf, Zeroizing<Vec<u8>>, Mode)>,
    /// Set by a successful [`commit`]; until then the backups are this plan's to remove.
    committed: std::sync::atomic::AtomicBool,
    // Field order is drop order: the backups are removed (Drop) while the locks are held.
    _dir_locks: DirLocks,
    _locks: FileLocks,
}

impl Drop for PlannedWrite {
    /// Not committed (or the commit failed): the originals are still in place, so the backups
    /// made of them are redundant (hard links, or copies); remove each one whose original
    /// still holds the same bytes. A backup of a file that was replaced after all is kept.
    fn drop(&mut self) {
        if self.committed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let read = |p: &Path| {
            fsutil::read_bounded(p, "backup", fsutil::limits::CERT_FILE).map(Zeroizing::new)
        };
        for f in &self.files {
            if let Some(bak) = &f.backup {
                if matches!((read(&f.path), read(bak)), (Ok(a), Ok(b)) if a == b) {
                    let _ = std::fs::remove_file(bak);
                }
            }
        }
    }
}

/// Where certificates go when no output directory is given: the project's `.devkit/certs`
/// (next to its `state.json`), else the working directory. (The CLI's `--out-dir` defaults to
/// `.`, the tutorial's contract, and always names its directory.)
pub fn default_out_dir(project: Option<&Path>) -> PathBuf {
    match project {
        Some(p) => p.join(".devkit").join("certs"),
        None => std::env::current_dir().unwrap_or_default(),
    }
}

/// Decide what writing the identity's files under `out_dir` means (see the module
/// documentation): existing files with other content are backed up now; nothing is written
/// yet. Commit one or several plans with [`commit`].
pub fn plan_identity(
    d: &DeviceIdentity,
    out_dir: &Path,
    opts: FileOptions,
) -> Result<PlannedWrite, FsError> {
    let contents = contents(d, out_dir, opts);
    let paths: Vec<PathBuf> = contents.iter().map(|(_, p, _, _)| p.clone()).collect();
    let locks = FileLocks::acquire(paths.clone());
    let dir_locks = DirLocks::acquire(&paths).map_err(|source| FsError::Io {
        path: parent(&paths[0]),
        source,
    })?;
    // The backup name's timestamp, only when a file is backed up (a batch's rows rarely are).
    let mut stamp: Option<String> = None;
    let mut files = Vec::new();
    let mut to_write = Vec::new();
    for (kind, path, bytes, mode) in contents {
        let io = |source| FsError::Io {
            path: path.clone(),
            source,
        };
        // A FIFO or device named as an output would hang (or never end) the comparison read.
        fsutil::check_output(&path)?;
        // Zeroizing: the existing file may be a private key. Bounded: an identity file is
        // small; anything larger is some other file, kept as a backup.
        let (action, backup) =
            match fsutil::read_bounded(&path, "existing file", fsutil::limits::CERT_FILE)
                .map(Zeroizing::new)
            {
                Ok(existing) if *existing == *bytes => (FileAction::Unchanged, None),
                Err(e) if e.is_not_found() => (FileAction::Written, None),
                Err(e) if e.io_kind.is_some() => {
                    return Err(io(std::io::Error::new(
                        e.io_kind.unwrap_or(std::io::ErrorKind::Other),
                        e.reason,
                    )))
                }
                // Different content, or too large to be one of ours: kept as a backup.
                _ => (
                    FileAction::Replaced,
                    Some(backup_file(&path, stamp.get_or_insert_with(utc_stamp)).map_err(io)?),
                ),
            };
        if action != FileAction::Unchanged {
            to_write.push((path.clone(), bytes, mode));
        }
        files.push(WrittenFile {
            kind,
            path,
            action,
            backup,
        });
    }
    Ok(PlannedWrite {
        files,
        to_write,
        committed: std::sync::atomic::AtomicBool::new(false),
        _dir_locks: dir_locks,
        _locks: locks,
    })
}

/// Write the files of several planned identities as one atomic, durable unit (one sync for
/// all: see [`fsutil::write_all_atomic`]).
pub fn commit(plans: &[PlannedWrite]) -> Result<(), FsError> {
    let all: Vec<&(PathBuf, Zeroizing<Vec<u8>>, Mode)> =
        plans.iter().flat_map(|p| p.to_write.iter()).collect();
    let refs: Vec<(PathBuf, &[u8], Mode)> = all
        .iter()
        .map(|(p, b, m)| (p.clone(), b.as_slice(), *m))
        .collect();
    fsutil::write_all_atomic(&refs)?;
    for p in plans {
        p.committed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// Write the identity's files under `out_dir` (see the module documentation). Returns them
/// in the order alias certificate, device certificate, DeviceID public key, alias key.
pub fn write_identity(
    d: &DeviceIdentity,
    out_dir: &Path,
    opts: FileOptions,
) -> Result<Vec<WrittenFile>, FsError> {
    let plan = plan_identity(d, out_dir, opts)?;
    commit(std::slice::from_ref(&plan))?;
    Ok(plan.files.clone())
}

/// Keep `path` as `<name>.<stamp>.bak` (a fresh name; permissions preserved) and return it.
fn backup_file(path: &Path, stamp: &str) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 0..100 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let bak = path.with_file_name(format!("{name}.{stamp}{suffix}.bak"));
        if bak.exists() {
            continue;
        }
        return match std::fs::hard_link(path, &bak) {
            Ok(()) => Ok(bak),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // No hard links on this filesystem: copy (std copies the permissions too).
            Err(_) => std::fs::copy(path, &bak).map(|_| bak),
        };
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "too many backups with the same timestamp",
    ))
}

fn utc_stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    now.format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// The project-state record of a generated identity (public data only; FWID lower-case hex).
pub fn generated_record(d: &DeviceIdentity, alias_cert: &Path) -> IdentityRecord {
    IdentityRecord {
        registration_id: d.registration_id.to_string(),
        fwid: d.fwid_hex(),
        sha256_thumbprint: d.sha256_thumbprint(),
        alias_cert: alias_cert.to_path_buf(),
        source: IdentitySource::Generated,
        core_digest: Some(hex::encode(d.core_digest)),
        device_id_public_key: Some(hex::encode_upper(d.device_id_public)),
    }
}

/// Record `d` as the project's `last_generated` identity (nothing is written when it already is).
pub fn record_generated(
    project: &Path,
    d: &DeviceIdentity,
    alias_cert: &Path,
) -> Result<(), ProjectError> {
    let record = generated_record(d, alias_cert);
    ProjectState::update(project, |s| s.last_generated = Some(record)).map(|_| ())
}

/// Record `d` as the project's `last_enrolled` identity.
pub fn record_enrolled(
    project: &Path,
    d: &DeviceIdentity,
    alias_cert: &Path,
) -> Result<(), ProjectError> {
    let record = IdentityRecord {
        source: IdentitySource::Enrolled,
        ..generated_record(d, alias_cert)
    };
    ProjectState::update(project, |s| s.last_enrolled = Some(record)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{derive, FirmwareImage, RegistrationId, Uds};

    fn identity(uds: &str) -> DeviceIdentity {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dice-vectors/auto-id-small");
        let image = FirmwareImage::load(
            &dir.join("DevKitDPS.ino.bin"),
            &dir.join("DevKitDPS.ino.map"),
        )
        .unwrap();
        derive(
            &Uds::parse(uds).unwrap(),
            &image,
            &RegistrationId::parse("dev-1").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn written_unchanged_then_replaced_with_a_backup() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = FileOptions {
            device_cert: true,
            alias_key: true,
            per_device_dir: true,
        };
        let a = identity(&"1".repeat(64));
        let first = write_identity(&a, tmp.path(), opts).unwrap();
        let kinds: Vec<_> = first.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FileKind::AliasCert,
                FileKind::DeviceCert,
                FileKind::DeviceIdPublicKey,
                FileKind::AliasKey
            ]
        );
        assert!(first.iter().all(|f| f.action == FileAction::Written));
        assert_eq!(first[0].path, tmp.path().join("dev-1.pem"));
        assert_eq!(first[3].path, tmp.path().join("dev-1/alias-key.pem"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&first[3].path)
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600
            );
        }
        let again = write_identity(&a, tmp.path(), opts).unwrap();
        assert!(again
            .iter()
            .all(|f| f.action == FileAction::Unchanged && f.warning().is_none()));

        let b = identity(&"2".repeat(64));
        let third = write_identity(&b, tmp.path(), opts).unwrap();
        assert!(third.iter().all(|f| f.action == FileAction::Replaced));
        let backup = third[0].backup.as_ref().unwrap();
        assert_eq!(std::fs::read_to_string(backup).unwrap(), a.alias_cert_pem());
        assert_eq!(
            std::fs::read_to_string(&third[0].path).unwrap(),
            b.alias_cert_pem()
        );
        assert!(third[0].warning().unwrap().contains(".bak"));
    }

    #[test]
    fn concurrent_writes_of_one_registration_id_lose_no_identity() {
        let ids: Vec<DeviceIdentity> = (1..=6)
            .map(|i| identity(&i.to_string().repeat(64)))
            .collect();
        for _round in 0..10 {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let start = std::sync::Barrier::new(ids.len());
            std::thread::scope(|s| {
                for d in &ids {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        write_identity(d, dir, FileOptions::default()).unwrap();
                    });
                }
            });
            // Every identity written is still somewhere: the current file or a backup.
            let kept: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect();
            for d in &ids {
                assert!(
                    kept.contains(&d.alias_cert_pem()),
                    "an identity was lost: {} files kept",
                    kept.len()
                );
            }
            // Other tests of this process may hold their own files meanwhile.
            assert!(
                held()
                    .as_ref()
                    .is_none_or(|m| m.keys().all(|p| !p.starts_with(dir))),
                "every lock was released"
            );
        }
    }

    /// What another process sees while a plan holds its output directory: the directory
    /// (its lock file on Windows) is locked until the plan is committed or dropped.
    #[test]
    fn a_plan_locks_its_output_directory_against_other_processes() {
        let tmp = tempfile::tempdir().unwrap();
        let other = || {
            let lock = if cfg!(windows) {
                tmp.path().join(".devkit.lock")
            } else {
                tmp.path().to_path_buf()
            };
            std::fs::File::open(lock).unwrap()
        };
        let d = identity(&"6".repeat(64));
        let plan = plan_identity(&d, tmp.path(), FileOptions::default()).unwrap();
        let second = plan_identity(&d, tmp.path(), FileOptions::default()).unwrap();
        assert!(
            matches!(other().try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            "held while planned"
        );
        commit(&[plan]).unwrap();
        assert!(other().try_lock().is_err(), "held while another plan is");
        drop(second);
        other().try_lock().expect("released");
    }

    /// A replace that does not happen (the plan is dropped, or its commit fails) leaves no
    /// `.bak` behind for a file still in place; a backup of a file that is gone is kept.
    #[test]
    fn backups_of_a_replace_that_did_not_happen_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = FileOptions {
            device_cert: true,
            ..Default::default()
        };
        let (a, b) = (identity(&"7".repeat(64)), identity(&"8".repeat(64)));
        write_identity(&a, tmp.path(), opts).unwrap();
        let baks = || -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".bak"))
                .collect();
            v.sort();
            v
        };
        let plan = plan_identity(&b, tmp.path(), opts).unwrap();
        assert_eq!(baks().len(), 3);
        drop(plan);
        assert!(baks().is_empty(), "{:?}", baks());

        let plan = plan_identity(&b, tmp.path(), opts).unwrap();
        let gone = tmp.path().join("device-id-pub.pem");
        std::fs::remove_file(&gone).unwrap();
        std::fs::create_dir(&gone).unwrap();
        assert!(commit(std::slice::from_ref(&plan)).is_err());
        drop(plan);
        let left = baks();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].starts_with("device-id-pub.pem."), "{left:?}");
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("dev-1.pem")).unwrap(),
            a.alias_cert_pem()
        );
    }

    #[test]
    fn a_batch_may_plan_one_file_twice_on_one_thread() {
        let tmp = tempfile::tempdir().unwrap();
        let d = identity(&"5".repeat(64));
        let a = plan_identity(&d, tmp.path(), FileOptions::default()).unwrap();
        let b = plan_identity(&d, tmp.path(), FileOptions::default()).unwrap();
        commit(&[a, b]).unwrap();
    }

    #[test]
    fn project_state_records_public_data_only() {
        let tmp = tempfile::tempdir().unwrap();
        let d = identity(&"3".repeat(64));
        record_generated(tmp.path(), &d, &tmp.path().join("dev-1.pem")).unwrap();
        let state = std::fs::read_to_string(crate::project::state_path(tmp.path())).unwrap();
        assert!(state.contains(&d.sha256_thumbprint()));
        assert!(!state.to_lowercase().contains(&"3".repeat(64)));
        assert!(!state.contains(&hex::encode_upper(d.alias_private_scalar())));
    }
}
