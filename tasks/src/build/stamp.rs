//! What a build depends on ([`fingerprint`]) and the stamp stored with its outputs: a build
//! whose fingerprint and outputs are unchanged is skipped.

use super::{read_state, BuildError, DpsSettings, Toolchain, FQBN};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Name of the stamp file in the build path.
pub const STAMP_FILE: &str = "devkit-build.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct Stamp {
    fingerprint: String,
    bin: PathBuf,
    map: PathBuf,
}

/// SHA-256 over every input that affects the compiled image. Hidden files and directories are
/// left out (editor swap files, `.git`).
pub fn fingerprint(
    sketch_dir: &Path,
    dps: &DpsSettings,
    toolchain: &Toolchain,
) -> Result<String, BuildError> {
    let mut files = Vec::new();
    collect_files(sketch_dir, sketch_dir, &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    // v2: the prefix maps of `reproducible` (an older image embeds this machine's paths).
    field(b"devkit-build-v2");
    field(FQBN.as_bytes());
    field(
        serde_json::to_string(&toolchain.builder)
            .unwrap_or_default()
            .as_bytes(),
    );
    field(toolchain.arduino_cli_version.as_bytes());
    field(toolchain.platform_version.as_bytes());
    field(&serde_json::to_vec(dps).unwrap_or_default());
    for rel in &files {
        let path = sketch_dir.join(rel);
        let bytes = std::fs::read(&path).map_err(|source| BuildError::Io {
            context: format!("cannot read {}", path.display()),
            source,
        })?;
        field(rel.to_string_lossy().as_bytes());
        field(&bytes);
    }
    Ok(hex::encode(h.finalize()))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    let io = |source| BuildError::Io {
        context: format!("cannot list {}", dir.display()),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ty = entry.file_type().map_err(io)?;
        if ty.is_dir() {
            collect_files(root, &path, out)?;
        } else if ty.is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    Ok(())
}

fn read_stamp(path: &Path) -> Option<Stamp> {
    serde_json::from_slice(&read_state(path)?).ok()
}

/// Whether the stamp at `stamp_path` vouches for this build: the same fingerprint and the
/// same outputs, both still present. Then the compile is skipped.
pub(super) fn up_to_date(stamp_path: &Path, fingerprint: &str, bin: &Path, map: &Path) -> bool {
    read_stamp(stamp_path).is_some_and(|stamp| {
        stamp.fingerprint == fingerprint
            && stamp.bin == bin
            && stamp.map == map
            && bin.is_file()
            && map.is_file()
    })
}

/// Remove the stamp before compiling: a failed compile must not leave an old stamp that
/// vouches for old outputs.
pub(super) fn remove_stamp(stamp_path: &Path) -> Result<(), BuildError> {
    match std::fs::remove_file(stamp_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BuildError::Io {
                context: format!("cannot remove {}", stamp_path.display()),
                source,
            })
        }
    }
    Ok(())
}

/// The stamp of a finished compile, as it is written next to the outputs.
pub(super) fn stamp_json(fingerprint: &str, bin: &Path, map: &Path) -> Vec<u8> {
    serde_json::to_vec_pretty(&Stamp {
        fingerprint: fingerprint.to_string(),
        bin: bin.to_path_buf(),
        map: map.to_path_buf(),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{BuilderChoice, DEFAULT_GLOBAL_ENDPOINT};

    fn tc(v: &str) -> Toolchain {
        Toolchain {
            builder: BuilderChoice::ArduinoCli,
            arduino_cli: "/x".into(),
            arduino_cli_version: v.into(),
            platform_version: "1.6.2".into(),
        }
    }

    #[test]
    fn fingerprint_tracks_sources_settings_and_toolchain_not_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let sk = dir.path().join("S");
        std::fs::create_dir(&sk).unwrap();
        std::fs::write(sk.join("S.ino"), "void setup(){}").unwrap();
        let (dps, _) = DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, "0ne0001A2B3", None).unwrap();
        let a = fingerprint(&sk, &dps, &tc("1.0.0")).unwrap();
        assert_eq!(a, fingerprint(&sk, &dps, &tc("1.0.0")).unwrap());
        assert_ne!(a, fingerprint(&sk, &dps, &tc("1.0.1")).unwrap());
        let (dps2, _) = DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, "0ne0001A2B4", None).unwrap();
        assert_ne!(a, fingerprint(&sk, &dps2, &tc("1.0.0")).unwrap());
        std::fs::write(sk.join(".S.ino.swp"), "junk").unwrap();
        assert_eq!(a, fingerprint(&sk, &dps, &tc("1.0.0")).unwrap());
        std::fs::write(sk.join("S.ino"), "void setup(){ }").unwrap();
        assert_ne!(a, fingerprint(&sk, &dps, &tc("1.0.0")).unwrap());
    }
}
