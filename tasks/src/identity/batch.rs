//! Factory batches: a manifest of devices, one firmware image for all (its digests are computed
//! once), one identity per row. A failing row is reported and does not stop the others.
//!
//! Manifest: CSV with columns `uds_file,registration_id` or `uds_file,mac,firmware_version`
//! (a header row naming them is optional; `#` starts a comment line). Relative `uds_file`
//! paths are relative to the manifest's directory.

use super::{derive, DeviceIdentity, FirmwareImage, IdentityError, RegistrationId};
use crate::error::Input;
use std::path::{Path, PathBuf};

/// How a row names its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowId {
    Explicit(String),
    MacVersion {
        mac: String,
        firmware_version: String,
    },
}

/// One manifest row (public data only: the UDS stays in its file until derivation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    /// 1-based line number in the manifest.
    pub line: usize,
    pub uds_file: PathBuf,
    pub id: RowId,
}

impl ManifestRow {
    /// How error messages name this row.
    pub fn label(&self) -> String {
        format!("manifest line {}", self.line)
    }
    /// The validated registration ID of this row.
    pub fn registration_id(&self) -> Result<RegistrationId, IdentityError> {
        let row = self.label();
        match &self.id {
            RowId::Explicit(id) => RegistrationId::parse(id).map_err(|e| prefix(e, &row)),
            RowId::MacVersion {
                mac,
                firmware_version,
            } => RegistrationId::from_mac_and_version(mac, firmware_version)
                .map_err(|e| prefix(e, &row)),
        }
    }
}

fn prefix(e: IdentityError, row: &str) -> IdentityError {
    match e {
        IdentityError::Invalid(i) => {
            let name = format!("{row}: {}", i.subject());
            IdentityError::Invalid(i.named(name))
        }
        other => other,
    }
}

/// Parse a whole manifest held in memory (small manifests: `enroll --batch`). A batch of
/// certificates streams its manifest with [`ManifestReader`] instead.
pub fn parse_manifest(
    text: &str,
    base_dir: &Path,
    manifest_name: &str,
) -> Result<Vec<ManifestRow>, IdentityError> {
    let rows = ManifestReader::new(text.as_bytes(), base_dir, manifest_name)
        .collect::<Result<Vec<_>, _>>()?;
    if rows.is_empty() {
        return Err(empty_manifest(manifest_name));
    }
    Ok(rows)
}

/// The refusal of a manifest without a device row.
pub fn empty_manifest(manifest_name: &str) -> IdentityError {
    IdentityError::named(Input::Manifest, manifest_name, "lists no devices")
}

/// A manifest read one line at a time: only the current line is held, whatever the manifest's
/// length. Yields each device row in manifest order; a line that breaks the manifest's rules
/// (not CSV, a wrong column count, a bad header, not UTF-8) is an error naming the line, and
/// the reader ends after it.
pub struct ManifestReader<R> {
    input: R,
    base_dir: PathBuf,
    name: String,
    line: usize,
    columns: Option<usize>,
    rows: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: std::io::BufRead> ManifestReader<R> {
    pub fn new(input: R, base_dir: &Path, manifest_name: &str) -> Self {
        ManifestReader {
            input,
            base_dir: base_dir.to_path_buf(),
            name: manifest_name.to_string(),
            line: 0,
            columns: None,
            rows: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The 1-based number of the last line read.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The capacity of the line buffer: the reader's only state that grows with its input
    /// (the longest line so far).
    pub fn retained_bytes(&self) -> usize {
        self.buf.capacity()
    }

    fn invalid(&self, reason: String) -> IdentityError {
        IdentityError::named(Input::Manifest, &self.name, reason)
    }

    /// The next line's row: `Ok(None)` for a blank, comment or header line.
    fn row_of_line(&mut self) -> Result<Option<ManifestRow>, IdentityError> {
        let line = self.line;
        let text = std::str::from_utf8(&self.buf)
            .map_err(|_| self.invalid(format!("line {line} is not UTF-8 text")))?;
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(None);
        }
        // One CSV record per line (quotes allowed for paths with commas).
        let record = csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(csv::Trim::All)
            .from_reader(trimmed.as_bytes())
            .records()
            .next()
            .transpose()
            .map_err(|e| self.invalid(format!("line {line} is not valid CSV: {e}")))?
            .unwrap_or_default();
        let fields: Vec<&str> = record.iter().collect();
        if fields.iter().all(|f| f.is_empty()) {
            return Ok(None);
        }
        if self.rows == 0 && self.columns.is_none() && fields.first() == Some(&"uds_file") {
            self.columns = Some(match fields[..] {
                ["uds_file", "registration_id"] => 2,
                ["uds_file", "mac", "firmware_version"] => 3,
                _ => return Err(self.invalid(
                    "header must be `uds_file,registration_id` or `uds_file,mac,firmware_version`"
                        .into(),
                )),
            });
            return Ok(None);
        }
        let expected = *self.columns.get_or_insert(fields.len());
        if fields.len() != expected || !(2..=3).contains(&fields.len()) {
            return Err(self.invalid(format!(
                "line {line} has {} columns; expected `uds_file,registration_id` or `uds_file,mac,firmware_version` on every line",
                fields.len()
            )));
        }
        if fields[0].is_empty() {
            return Err(self.invalid(format!("line {line}: uds_file is empty")));
        }
        let uds_file = self.base_dir.join(fields[0]);
        let id = if expected == 2 {
            RowId::Explicit(fields[1].to_string())
        } else {
            RowId::MacVersion {
                mac: fields[1].to_string(),
                firmware_version: fields[2].to_string(),
            }
        };
        self.rows += 1;
        Ok(Some(ManifestRow { line, uds_file, id }))
    }
}

impl<R: std::io::BufRead> Iterator for ManifestReader<R> {
    type Item = Result<ManifestRow, IdentityError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    if self.buf.last() == Some(&b'\n') {
                        self.buf.pop();
                    }
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                    // A manifest with one huge line does not keep its buffer afterwards.
                    let row = self.row_of_line();
                    if self.buf.capacity() > 64 * 1024 {
                        self.buf = Vec::new();
                    }
                    match row {
                        Ok(None) => continue,
                        Ok(Some(row)) => return Some(Ok(row)),
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
                Err(e) => {
                    self.done = true;
                    let line = self.line + 1;
                    return Some(Err(self.invalid(format!("line {line} cannot be read: {e}"))));
                }
            }
        }
        None
    }
}

/// Derive one row's identity, with what reading its UDS warned about (a file readable by
/// others, the sample accepted). The published sample UDS is refused unless
/// `allow_sample_uds`. The UDS file is read like every other ([`super::read_uds`]): bounded,
/// never echoed.
pub fn derive_row(
    row: &ManifestRow,
    image: &FirmwareImage,
    allow_sample_uds: bool,
) -> Result<(DeviceIdentity, Vec<String>), IdentityError> {
    let id = row.registration_id()?;
    let input = format!(
        "{}: uds_file {:?}",
        row.label(),
        row.uds_file.display().to_string()
    );
    let read = super::read_uds(
        super::UdsSource::File(&row.uds_file),
        &input,
        allow_sample_uds,
    )?;
    Ok((derive(&read.uds, image, &id)?, read.warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::error::DomainError;

    #[test]
    fn manifests_with_and_without_headers() {
        let base = Path::new("/m");
        let rows = parse_manifest(
            "uds_file,registration_id\na.uds, dev-a\n\n# comment\nb.uds,dev-b\n",
            base,
            "m",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].uds_file, Path::new("/m/a.uds"));
        assert_eq!(rows[1].id, RowId::Explicit("dev-b".into()));
        assert_eq!(rows[1].line, 5);
        let rows = parse_manifest("/abs/c.uds,A0:B1:C2:D3:E4:F5,2.0.10\n", base, "m").unwrap();
        assert_eq!(rows[0].uds_file, Path::new("/abs/c.uds"));
        assert_eq!(
            rows[0].registration_id().unwrap().as_str(),
            "az-a0b1c2d3e4f5v2v0v10"
        );
        for bad in [
            "",
            "uds_file,registration_id\n",
            "a,b\nc,d,e\n",
            "uds_file,foo\na,b\n",
            "a\n",
        ] {
            assert!(
                parse_manifest(bad, base, "m")
                    .unwrap_err()
                    .is_invalid_input(),
                "{bad:?}"
            );
        }
        let e = parse_manifest("a.uds,My_Dev\n", base, "m").unwrap()[0]
            .registration_id()
            .unwrap_err();
        assert!(e.to_string().contains("manifest line 1"), "{e}");
    }
}
