//! A small tmpfs for full-disk tests, unmounted when dropped. Mounting needs Linux and root (CI
//! containers); elsewhere [`SmallFs::mount`] says the test is skipped and returns `None`.

use std::path::{Path, PathBuf};

pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// A tmpfs of `size` (`64k`), or `None` (and a message saying the test is skipped).
    pub fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = cfg!(target_os = "linux")
            && std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs (needs Linux and root)");
            return None;
        }
        Some(SmallFs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fill the filesystem to the last byte; returns the filler file (remove it to free space).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        // Byte by byte into the last page.
        while f.write(&[0]).is_ok_and(|n| n == 1) {}
        filler
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
