//! The image (`.bin`) and map a build directory holds: the one rule for finding them.

use crate::error::{DomainError, ErrorKind, Input, InvalidInput, NextAction, NextStep};
use std::path::{Path, PathBuf};

/// The image a build directory holds: the one rule for finding build outputs (flashing,
/// certificates, the project's identity). arduino-cli writes `<sketch>.ino.bin` and
/// `<sketch>.ino.map`; a `*.ino.bin` is preferred, else the single other `*.bin` (never a
/// `*.bootloader.bin`). The map is the `.bin`'s sibling with the `.map` extension.
pub fn find_outputs(dir: &Path) -> Result<(PathBuf, PathBuf), FindOutputError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FindOutputError::Unreadable {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut bins: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| x == "bin")
                && !p.to_string_lossy().ends_with(".bootloader.bin")
        })
        .collect();
    bins.sort();
    let preferred: Vec<_> = bins
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".ino.bin"))
        .cloned()
        .collect();
    let candidates = if preferred.is_empty() {
        bins
    } else {
        preferred
    };
    match candidates.as_slice() {
        [one] => Ok((one.clone(), one.with_extension("map"))),
        [] => Err(FindOutputError::Invalid(InvalidInput::new(
            Input::BuildDir,
            format!("{} holds no .bin; build the sketch first", dir.display()),
        ))),
        many => Err(FindOutputError::Invalid(InvalidInput::new(
            Input::BuildDir,
            format!(
                "{} holds several images ({}); name the image to use",
                dir.display(),
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))),
    }
}

/// The image of a build directory and its map, both present ([`find_outputs`]): what the
/// identity needs (certificates, the virtual DevKit), for the CLI and the daemon alike.
pub fn find_image_and_map(dir: &Path) -> Result<(PathBuf, PathBuf), FindOutputError> {
    let (bin, map) = find_outputs(dir)?;
    if map.is_file() {
        Ok((bin, map))
    } else {
        Err(FindOutputError::MapMissing { bin, map })
    }
}

/// Why [`find_outputs`] found no image.
#[derive(Debug, thiserror::Error)]
pub enum FindOutputError {
    #[error("cannot read build directory {dir}: {source}")]
    Unreadable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(InvalidInput),
    /// [`find_image_and_map`]: the image has no map next to it.
    #[error("{} has no {} next to it", .bin.display(), .map.display())]
    MapMissing { bin: PathBuf, map: PathBuf },
}

impl DomainError for FindOutputError {
    fn kind(&self) -> ErrorKind {
        match self {
            FindOutputError::Unreadable { source, .. } => crate::error::io_kind(source),
            FindOutputError::Invalid(_) => ErrorKind::InvalidInput,
            FindOutputError::MapMissing { .. } => ErrorKind::NotFound,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            FindOutputError::Invalid(i) => Some(i),
            FindOutputError::Unreadable { .. } | FindOutputError::MapMissing { .. } => None,
        }
    }
    fn input(&self) -> Option<Input> {
        Some(Input::BuildDir)
    }
    fn next_actions(&self) -> Vec<NextStep> {
        vec![NextStep::with_detail(NextAction::Retry, "build")]
    }
}

/// The outputs arduino-cli writes for sketch `name` into `build_path`.
pub fn output_paths(build_path: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        build_path.join(format!("{name}.ino.bin")),
        build_path.join(format!("{name}.ino.map")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image needs its map for an identity: one rule (and one error) for CLI and daemon.
    #[test]
    fn image_and_map_are_found_together_or_the_missing_map_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.ino.bin"), b"x").unwrap();
        let e = find_image_and_map(dir.path()).unwrap_err();
        assert!(matches!(e, FindOutputError::MapMissing { .. }), "{e}");
        assert_eq!(
            (e.kind(), e.input()),
            (ErrorKind::NotFound, Some(Input::BuildDir))
        );
        assert!(e.to_string().contains("s.ino.map"), "{e}");
        std::fs::write(dir.path().join("s.ino.map"), b"m").unwrap();
        let (bin, map) = find_image_and_map(dir.path()).unwrap();
        assert!(bin.ends_with("s.ino.bin") && map.ends_with("s.ino.map"));
    }
}
