//! Unique Device Secret parsing and generation. Error messages describe the shape of the input
//! (its length, the position of a bad character) but never repeat its characters.

use super::{IdentityError, Uds, SAMPLE_UDS_REFUSAL};
use crate::error::Input;
use crate::fsutil::{self, limits, InputError};
use std::path::Path;
use zeroize::Zeroizing;

/// Where a UDS comes from. Never argv: the CLI reads files or stdin, the daemon gets it in a
/// request param.
#[derive(Clone, Copy)]
pub enum UdsSource<'a> {
    /// A file holding 64 hex digits (surrounding whitespace ignored).
    File(&'a Path),
    /// The first line of standard input (bounded).
    Stdin,
    /// Text already in memory (a daemon request param).
    Text(&'a str),
}

/// A UDS read by [`read_uds`], with what the user should know (a file readable by other
/// users, the published sample accepted on request).
pub struct ReadUds {
    pub uds: Uds,
    pub warnings: Vec<String>,
}

/// The one way to read a UDS, for the CLI and the daemon alike: bounded, validated, the
/// published sample refused unless `allow_sample` (then a warning), a group/world-readable
/// file warned about. `input` names the source in messages (`--uds-file "a.uds"`, `uds`);
/// no message ever contains a character of the UDS.
pub fn read_uds(
    source: UdsSource<'_>,
    input: &str,
    allow_sample: bool,
) -> Result<ReadUds, IdentityError> {
    let mut warnings = Vec::new();
    let from_input = |e: InputError| IdentityError::Invalid(e.into_invalid(Input::Uds));
    let bytes = match source {
        UdsSource::File(path) => {
            if let Some(w) = readable_by_others(path, input) {
                warnings.push(w);
            }
            Zeroizing::new(fsutil::read_bounded(path, input, limits::UDS_FILE).map_err(from_input)?)
        }
        UdsSource::Stdin => fsutil::read_stdin_line(input, limits::UDS_FILE).map_err(from_input)?,
        UdsSource::Text(text) => Zeroizing::new(text.as_bytes().to_vec()),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        IdentityError::named(
            Input::Uds,
            input,
            "is not text; allowed: exactly 64 hexadecimal digits",
        )
    })?;
    let uds = parse(text).map_err(|e| match e {
        IdentityError::Invalid(i) => IdentityError::named(Input::Uds, input, i.reason),
        other => other,
    })?;
    if uds.is_published_sample() {
        if !allow_sample {
            return Err(IdentityError::SampleUds(
                crate::error::InvalidInput::new(Input::Uds, SAMPLE_UDS_REFUSAL).named(input),
            ));
        }
        warnings.push(
            "using the published sample UDS (allowed on request): this identity's keys are public"
                .into(),
        );
    }
    Ok(ReadUds { uds, warnings })
}

/// The warning for a UDS file that users other than its owner can read.
#[cfg(unix)]
pub fn readable_by_others(path: &Path, input: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| format!("{input} is readable by other users (mode {:04o}); a UDS file should be mode 0600: chmod 600 it", mode & 0o777))
}

#[cfg(not(unix))]
pub fn readable_by_others(_path: &Path, _input: &str) -> Option<String> {
    None
}

/// Save a generated UDS to `path` (a line of hex, mode 0600, atomically) only if `path` does
/// not exist: a UDS file is never overwritten (it may be another device's root secret).
/// An existing file is the typed refusal [`uds_file_exists`] (the input `saveUdsTo`).
pub fn save_new_uds(uds: &Uds, path: &Path) -> Result<(), IdentityError> {
    let mut line = Zeroizing::new(uds.to_hex().as_bytes().to_vec());
    line.push(b'\n');
    fsutil::write_new_atomic(path, &line, fsutil::Mode::Private).map_err(|e| match e {
        fsutil::FsError::Exists { .. } => uds_file_exists(path),
        e => IdentityError::Write(e),
    })
}

/// Refuse, before anything runs, a path a generated UDS would be saved to when it exists.
pub fn check_new_uds_file(path: &Path) -> Result<(), IdentityError> {
    if path.exists() {
        return Err(uds_file_exists(path));
    }
    Ok(())
}

/// The refusal for a UDS file that exists (checked before a run, or found when saving).
pub fn uds_file_exists(path: &Path) -> IdentityError {
    IdentityError::invalid(
        Input::SaveUdsTo,
        format!("{} exists; refusing to overwrite a UDS file (another device's secret?): choose a new file name or move it away", path.display()),
    )
}

pub(crate) fn parse(text: &str) -> Result<Uds, IdentityError> {
    let t = text.trim();
    let allowed = "allowed: exactly 64 hexadecimal digits (0-9, a-f, any case)";
    if let Some(pos) = t.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(IdentityError::invalid(
            Input::Uds,
            format!(
                "character {} is not a hexadecimal digit; {allowed}",
                pos + 1
            ),
        ));
    }
    if t.len() != 64 {
        return Err(IdentityError::invalid(
            Input::Uds,
            format!("has {} digits; {allowed}", t.len()),
        ));
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(t, &mut bytes[..])
        .map_err(|_| IdentityError::invalid(Input::Uds, allowed))?;
    Ok(Uds(bytes))
}

pub(crate) fn generate() -> Uds {
    use rand::RngCore;
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
    Uds(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee0Z";

    #[test]
    fn one_reader_for_files_and_text_never_echoes_the_uds() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.uds");
        std::fs::write(&f, format!("{}\n", &CANARY[..64].replace('Z', "a"))).unwrap();
        let e = read_uds(UdsSource::Text(CANARY), "uds", false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("invalid uds:") && e.contains("character 64") && !e.contains("c0ffee"),
            "{e}"
        );
        std::fs::write(&f, CANARY).unwrap();
        let e = read_uds(UdsSource::File(&f), "--uds-file \"a.uds\"", false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("--uds-file \"a.uds\"") && !e.contains("c0ffee"),
            "{e}"
        );
        std::fs::write(&f, "ab".repeat(2000)).unwrap();
        let e = read_uds(UdsSource::File(&f), "--uds-file", false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("1 KiB") && !e.contains("abab"), "{e}");
        let sample = super::super::PUBLISHED_SAMPLE_UDS;
        let e = read_uds(UdsSource::Text(sample), "uds", false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("published sample"), "{e}");
        let ok = read_uds(UdsSource::Text(sample), "uds", true).unwrap();
        assert!(ok.warnings.iter().any(|w| w.contains("sample")));
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_uds_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.uds");
        std::fs::write(&f, "ab".repeat(32)).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = read_uds(UdsSource::File(&f), "--uds-file", false).unwrap();
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("0644") && w.contains("0600")),
            "{:?}",
            r.warnings
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_uds(UdsSource::File(&f), "--uds-file", false)
            .unwrap()
            .warnings
            .is_empty());
    }

    #[test]
    fn a_generated_uds_is_never_saved_over_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.uds");
        let first = generate();
        save_new_uds(&first, &f).unwrap();
        assert!(check_new_uds_file(&f).is_err());
        assert!(save_new_uds(&generate(), &f).is_err());
        assert_eq!(
            read_uds(UdsSource::File(&f), "f", false)
                .unwrap()
                .uds
                .as_bytes(),
            first.as_bytes()
        );
    }
}
