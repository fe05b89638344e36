//! The batch enrollment journal: what DPS confirmed, one line per enrollment, next to the
//! manifest, so that a run after Ctrl-C or a kill skips what is done.
//!
//! Append-only, one tab-separated record per line (`v1`, DPS host, registration ID, SHA-256
//! thumbprint, result), `fdatasync`ed once per bulk request: rewriting the whole file per request
//! would make a 100k-row batch quadratic. A record is complete only with its newline, so a
//! line cut short by a kill is ignored on load and cut off before the next append; that is
//! what makes each record atomic. Records of another DPS (another host name) are kept in the
//! file but never skip a row: enrolling the same manifest into a second DPS enrolls every row.

use std::collections::HashMap;
use std::io::{BufRead, Seek, Write};
use std::path::{Path, PathBuf};

const VERSION: &str = "v1";

/// The journal of one manifest for one DPS, open for appending.
pub struct Journal {
    path: PathBuf,
    host: String,
    /// Registration ID -> SHA-256 thumbprint DPS confirmed (upper-case hex).
    done: HashMap<String, String>,
    file: std::fs::File,
    /// Records written since the last [`Journal::sync`].
    pending: usize,
}

/// The journal's path for `manifest`: `<manifest>.enroll-journal` in the same directory.
pub fn journal_path(manifest: &Path) -> PathBuf {
    let mut name = manifest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "manifest".into());
    name.push(".enroll-journal");
    manifest.with_file_name(name)
}

impl Journal {
    /// Open (or create) the journal at `path`, loading the records of `host`. A trailing record
    /// without its newline (a run killed while writing it) is cut off.
    pub fn open(path: &Path, host: &str) -> std::io::Result<Journal> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut done = HashMap::new();
        let mut complete_len: u64 = 0;
        {
            let mut reader = std::io::BufReader::new(&file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line)?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                complete_len += n as u64;
                let Ok(text) = std::str::from_utf8(&line[..n - 1]) else {
                    continue;
                };
                let fields: Vec<&str> = text.split('\t').collect();
                if let [VERSION, h, id, thumb, _result] = fields[..] {
                    if h == host {
                        done.insert(id.to_string(), thumb.to_ascii_uppercase());
                    }
                }
            }
        }
        if file.metadata()?.len() != complete_len {
            file.set_len(complete_len)?;
            file.seek(std::io::SeekFrom::End(0))?;
            file.sync_data()?;
        }
        if complete_len == 0 {
            // A new journal: make its directory entry durable too.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            host: host.to_string(),
            done,
            file,
            pending: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether DPS confirmed `registration_id` with this certificate in an earlier run.
    pub fn is_done(&self, registration_id: &str, sha256_thumbprint: &str) -> bool {
        self.done
            .get(registration_id)
            .is_some_and(|t| t.eq_ignore_ascii_case(sha256_thumbprint))
    }

    /// Record what DPS confirmed (durable at the next [`Journal::sync`]).
    pub fn record(
        &mut self,
        registration_id: &str,
        sha256_thumbprint: &str,
        result: &str,
    ) -> std::io::Result<()> {
        // Registration IDs and hex thumbprints hold no tab or newline.
        writeln!(
            self.file,
            "{VERSION}\t{}\t{registration_id}\t{sha256_thumbprint}\t{result}",
            self.host
        )?;
        self.done.insert(
            registration_id.to_string(),
            sha256_thumbprint.to_ascii_uppercase(),
        );
        self.pending += 1;
        Ok(())
    }

    /// Make the records written so far durable: one `fdatasync` per bulk request.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.pending > 0 {
            self.file.sync_data()?;
            self.pending = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_a_cut_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_path(&dir.path().join("line.csv"));
        assert_eq!(path.file_name().unwrap(), "line.csv.enroll-journal");
        let mut j = Journal::open(&path, "dps-a").unwrap();
        j.record("dev-1", "AB12", "created").unwrap();
        j.record("dev-2", "CD34", "unchanged").unwrap();
        j.sync().unwrap();
        drop(j);
        // A kill in the middle of a record.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"v1\tdps-a\tdev-3\tEF")
            .unwrap();
        let mut j = Journal::open(&path, "dps-a").unwrap();
        assert!(j.is_done("dev-1", "ab12") && j.is_done("dev-2", "CD34"));
        assert!(!j.is_done("dev-3", "EF"), "a cut record does not count");
        assert!(
            !j.is_done("dev-1", "FFFF"),
            "another certificate is not done"
        );
        j.record("dev-3", "EF56", "created").unwrap();
        j.sync().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.ends_with("v1\tdps-a\tdev-3\tEF56\tcreated\n"),
            "{text}"
        );
        // Another DPS skips nothing.
        let other = Journal::open(&path, "dps-b").unwrap();
        assert!(!other.is_done("dev-1", "AB12"));
    }
}
