//! Owner-only files: who may read a file we write ([`Mode`]), and files that are private
//! from the moment they exist (mode 0600 on Unix, an owner-only protected DACL on Windows).

#[cfg(windows)]
use super::private_windows;
use super::stale::TEMP_PREFIX;
use std::path::Path;

/// Who may read a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0644: certificates, public keys, state.
    Public,
    /// 0600: private keys, UDS files, connection strings.
    Private,
}

/// Open `path` for appending, creating it private (owner-only, as [`Mode::Private`]) when it
/// does not exist: a log that may hold secrets.
///
/// A file someone else prepared is not trusted with that: a symbolic link is refused, never
/// followed (`O_NOFOLLOW`; a dangling link never creates its target, a link to another file
/// never gets appended to), and so is anything but a regular file. On Unix an existing file
/// must be the user's own and is made owner-only (0600) if it was not.
pub fn open_private_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::io::{Error, ErrorKind};
    let link = || {
        Error::new(
            ErrorKind::InvalidInput,
            "is a symbolic link; refusing to follow it (give the file itself)",
        )
    };
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(link());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: a FIFO put there meanwhile does not block the open (it is refused below).
        opts.mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // FILE_FLAG_OPEN_REPARSE_POINT: a link put there meanwhile is opened, not followed.
        opts.custom_flags(0x0020_0000);
        match private_windows::create_new(path) {
            Ok(file) => return Ok(file),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let file = opts.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(nix::libc::ELOOP) {
            return link();
        }
        e
    })?;
    let meta = file.metadata()?;
    if meta.file_type().is_symlink() {
        return Err(link());
    }
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "is not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions and cannot fail.
        if meta.uid() != unsafe { nix::libc::geteuid() } {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "is owned by another user; refusing to append to it",
            ));
        }
        if meta.mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

/// Create the staging file for `mode` in `dir`: private files are readable by their owner only
/// from the moment they exist (mode 0600 on Unix; on Windows a protected DACL granting the
/// current user alone, see [`private_windows`]).
pub(super) fn temp_in(dir: &Path, mode: Mode) -> std::io::Result<tempfile::NamedTempFile> {
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
        return builder
            .make_in(dir, private_windows::create_new)
            .map_err(without_temp_path);
    }
    #[cfg(not(any(unix, windows)))]
    if mode == Mode::Private {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "private files need Unix or Windows file permissions",
        ));
    }
    builder.tempfile_in(dir).map_err(without_temp_path)
}

/// tempfile's errors end in `at path "<dir>/.devkit-tmp-..."`, a file that does not exist once
/// creating it failed: the OS error alone (the caller names the file asked for).
fn without_temp_path(e: std::io::Error) -> std::io::Error {
    use std::error::Error;
    match e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error)
    {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(windows)]
    use crate::fsutil::{write_atomic, write_new_atomic};

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

    /// `--log-file` under attack: a link (to a file, or dangling) is refused and its target
    /// left as it was (never created); an existing file is made owner-only; on Unix, as
    /// root, another user's file is refused.
    #[cfg(unix)]
    #[test]
    fn a_private_append_never_follows_a_link_and_makes_the_file_owner_only() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim.txt");
        std::fs::write(&target, "theirs\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("monitor.log");
        symlink(&target, &link).unwrap();
        let e = open_private_append(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), 0o644);

        let dangling = dir.path().join("dangling.log");
        let nowhere = dir.path().join("created-by-the-link");
        symlink(&nowhere, &dangling).unwrap();
        assert!(open_private_append(&dangling).is_err());
        assert!(
            !nowhere.exists(),
            "a dangling link never creates its target"
        );

        let existing = dir.path().join("old.log");
        std::fs::write(&existing, "old\n").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::io::Write::write_all(&mut open_private_append(&existing).unwrap(), b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "old\nnew\n");
        assert_eq!(mode(&existing), 0o600, "made owner-only");

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(
            open_private_append(&fifo).is_err(),
            "never blocks on a FIFO"
        );

        let theirs = dir.path().join("theirs.log");
        std::fs::write(&theirs, "").unwrap();
        if std::os::unix::fs::chown(&theirs, Some(65534), None).is_ok() {
            let e = open_private_append(&theirs).unwrap_err();
            assert!(e.to_string().contains("another user"), "{e}");
        } else {
            eprintln!("skipped the other user's file: chown needs root");
        }
    }
}
