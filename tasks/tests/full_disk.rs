//! Full disks and half-written state: every task says what failed, keeps what is consistent
//! and recovers on the next run.
//!
//! The full-disk cases need a small filesystem: a tmpfs mounted for the test, so they run on
//! Linux as root (CI containers) and say they are skipped elsewhere.

use std::path::Path;
use tasks::dps::emulator::{Emulator, EmulatorConfig};

async fn start(dir: &Path) -> Result<Emulator, tasks::dps::emulator::EmulatorError> {
    Emulator::start(EmulatorConfig::new("127.0.0.1:0".parse().unwrap(), dir)).await
}

/// A directory an older version's failed first start left incomplete is completed, keeping
/// what is there: the enrollments, or the CA with its key.
#[tokio::test]
async fn an_emulator_state_directory_missing_files_is_completed_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(dir.path()).await.unwrap();
    let (scope, ca) = (
        emu.id_scope().to_string(),
        emu.ca_certificate_pem().to_string(),
    );
    emu.shutdown().await;

    // ca.pem and secrets.json without state.json: the CA is kept, the state made anew.
    std::fs::remove_file(dir.path().join("state.json")).unwrap();
    let emu = start(dir.path()).await.expect("completed, not refused");
    assert_eq!(emu.ca_certificate_pem(), ca, "the CA is kept");
    assert_ne!(emu.id_scope(), scope);
    let scope = emu.id_scope().to_string();
    emu.shutdown().await;

    // state.json alone: its ID scope (and enrollments) are kept, the CA and key made anew.
    std::fs::remove_file(dir.path().join("ca.pem")).unwrap();
    let emu = start(dir.path()).await.expect("completed, not refused");
    assert_eq!(emu.id_scope(), scope, "the state is kept");
    assert_ne!(emu.ca_certificate_pem(), ca);
    assert!(dir.path().join("secrets.json").exists() && dir.path().join("ca.pem").exists());
    emu.shutdown().await;
}

/// A small tmpfs, unmounted when dropped.
#[cfg(target_os = "linux")]
struct SmallFs {
    dir: tempfile::TempDir,
}

#[cfg(target_os = "linux")]
impl SmallFs {
    /// `None` (and a message saying the test is skipped) unless a tmpfs can be mounted here.
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs (needs Linux and root)");
            return None;
        }
        Some(SmallFs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fill the filesystem until `free` bytes are left; returns the filler file.
    fn fill_leaving(&self, free: u64) -> std::path::PathBuf {
        let filler = self.path().join("filler");
        let stat = nix::sys::statvfs::statvfs(self.path()).unwrap();
        let avail = stat.blocks_available() as u64 * stat.fragment_size() as u64;
        let size = avail.saturating_sub(free) as usize;
        std::fs::write(&filler, vec![0u8; size]).unwrap();
        filler
    }
}

#[cfg(target_os = "linux")]
impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The emulator's first start on a disk with room for two of its three files: it fails
/// saying so, leaves none of them, and starts once space is freed.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_emulator_started_on_a_full_disk_leaves_nothing_half_written_and_starts_later() {
    let Some(fs) = SmallFs::mount("64k") else {
        return;
    };
    let dir = fs.path().join("dps");
    std::fs::create_dir(&dir).unwrap();
    let filler = fs.fill_leaving(2 * 4096);
    let e = start(&dir).await.err().expect("no space for the state");
    assert!(e.to_string().contains("No space left"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::remove_file(filler).unwrap();
    let emu = start(&dir).await.expect("starts once space is freed");
    emu.shutdown().await;
}
