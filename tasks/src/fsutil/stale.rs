//! Temporary files a killed run (SIGKILL, power loss) left behind: recognised by their name
//! and removed once their process is gone.

use std::path::{Path, PathBuf};

/// The prefix of our temporary files: `.devkit-tmp-<pid>-<random>`.
pub(super) const TEMP_PREFIX: &str = ".devkit-tmp-";
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
pub(super) fn clean_stale_temps_once(dir: &Path) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
