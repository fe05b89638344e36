//! Per-project state: the identity last generated or enrolled for this project.
//!
//! Kept in `<project>/.devkit/state.json` (written atomically). `generate-cert` records what it
//! wrote, `enroll` defaults to that certificate and records what it enrolled, and
//! `device-upload` compares a new build's FWID with it to warn that the enrollment must be
//! updated (the identity drift guard). No secret is ever stored here.

use crate::fsutil::{self, Mode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors reading or writing project state.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read project state {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("project state {path} is not valid ({source}); delete it to start afresh")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] fsutil::FsError),
}

impl crate::error::DomainError for ProjectError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            ProjectError::Write(e) => e.kind(),
            _ => crate::error::ErrorKind::Failed,
        }
    }
}

/// Where an identity record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    Generated,
    Enrolled,
}

/// A device identity as the project last saw it. Public data only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub registration_id: String,
    /// FWID: SHA-256 of the `.riot_fw` code, lower-case hex (as `generate-cert --json` prints it).
    pub fwid: String,
    pub sha256_thumbprint: String,
    /// Absolute path of the alias certificate PEM.
    pub alias_cert: PathBuf,
    pub source: IdentitySource,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectState {
    #[serde(default)]
    pub last_generated: Option<IdentityRecord>,
    #[serde(default)]
    pub last_enrolled: Option<IdentityRecord>,
}

/// The state file of the project rooted at `root`.
pub fn state_path(root: &Path) -> PathBuf {
    root.join(".devkit").join("state.json")
}

impl ProjectState {
    /// Load the state of the project at `root`; a missing file is an empty state.
    pub fn load(root: &Path) -> Result<Self, ProjectError> {
        let path = state_path(root);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ProjectError::Parse { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ProjectError::Read { path, source }),
        }
    }

    /// Save atomically.
    pub fn save(&self, root: &Path) -> Result<(), ProjectError> {
        let mut json = serde_json::to_vec_pretty(self).expect("state serialises");
        json.push(b'\n');
        fsutil::write_atomic(&state_path(root), &json, Mode::Public)?;
        Ok(())
    }

    /// Load, apply `f`, save.
    pub fn update(root: &Path, f: impl FnOnce(&mut ProjectState)) -> Result<ProjectState, ProjectError> {
        let mut state = Self::load(root)?;
        f(&mut state);
        state.save(root)?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ProjectState::load(dir.path()).unwrap(), ProjectState::default());
        let rec = IdentityRecord {
            registration_id: "my-devkit-01".into(),
            fwid: "AB".into(),
            sha256_thumbprint: "CD".into(),
            alias_cert: dir.path().join("my-devkit-01.pem"),
            source: IdentitySource::Generated,
        };
        ProjectState::update(dir.path(), |s| s.last_generated = Some(rec.clone())).unwrap();
        assert_eq!(ProjectState::load(dir.path()).unwrap().last_generated, Some(rec));
    }

    #[test]
    fn corrupt_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".devkit")).unwrap();
        std::fs::write(state_path(dir.path()), b"{not json").unwrap();
        let err = ProjectState::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
