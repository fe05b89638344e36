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

/// Parse a manifest. `manifest_name` names it in errors; `base_dir` resolves relative paths.
pub fn parse_manifest(
    text: &str,
    base_dir: &Path,
    manifest_name: &str,
) -> Result<Vec<ManifestRow>, IdentityError> {
    let invalid = |reason: String| IdentityError::named(Input::Manifest, manifest_name, reason);
    let mut rows = Vec::new();
    let mut columns: Option<usize> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // One CSV record per line (quotes allowed for paths with commas).
        let record = csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(csv::Trim::All)
            .from_reader(trimmed.as_bytes())
            .records()
            .next()
            .transpose()
            .map_err(|e| invalid(format!("line {line} is not valid CSV: {e}")))?
            .unwrap_or_default();
        let fields: Vec<&str> = record.iter().collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        if rows.is_empty() && columns.is_none() && fields.first() == Some(&"uds_file") {
            columns = Some(match fields[..] {
                ["uds_file", "registration_id"] => 2,
                ["uds_file", "mac", "firmware_version"] => 3,
                _ => return Err(invalid(
                    "header must be `uds_file,registration_id` or `uds_file,mac,firmware_version`"
                        .into(),
                )),
            });
            continue;
        }
        let expected = *columns.get_or_insert(fields.len());
        if fields.len() != expected || !(2..=3).contains(&fields.len()) {
            return Err(invalid(format!(
                "line {line} has {} columns; expected `uds_file,registration_id` or `uds_file,mac,firmware_version` on every line",
                fields.len()
            )));
        }
        if fields[0].is_empty() {
            return Err(invalid(format!("line {line}: uds_file is empty")));
        }
        let uds_file = base_dir.join(fields[0]);
        let id = if expected == 2 {
            RowId::Explicit(fields[1].to_string())
        } else {
            RowId::MacVersion {
                mac: fields[1].to_string(),
                firmware_version: fields[2].to_string(),
            }
        };
        rows.push(ManifestRow { line, uds_file, id });
    }
    if rows.is_empty() {
        return Err(invalid("lists no devices".into()));
    }
    Ok(rows)
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
