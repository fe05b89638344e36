//! `inspect-cert` as one task, for the CLI and the daemon alike: read a certificate (a file or
//! inline PEM, PEM of any label or DER) leniently and, with a second one, say which input
//! differs ([`super::compare`]: the diagnosis for DPS error 401002). The [`InspectReport`] is
//! what `inspect-cert --json` prints and the daemon's `devkit/inspectCert` returns.

use super::{compare, differences, inspect_bytes, CertInfo, Difference, IdentityError};
use crate::error::Input;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A certificate as an adapter receives it.
pub enum CertInput {
    /// A PEM or DER file (bounded read).
    File(PathBuf),
    /// PEM text already in memory.
    Pem(String),
}

/// Read and parse one certificate. Errors are about [`Input::Cert`]; an adapter that takes two
/// certificates names which one failed (the CLI by its argument, the daemon by its param).
/// Blocking (a file).
pub fn read_cert(cert: &CertInput) -> Result<CertInfo, IdentityError> {
    match cert {
        CertInput::Pem(text) => inspect_bytes(text.as_bytes()),
        CertInput::File(path) => {
            let name = format!("certificate {:?}", path.display().to_string());
            let bytes = crate::fsutil::read_bounded(path, &name, crate::fsutil::limits::CERT_FILE)
                .map_err(|e| match e.io_kind {
                    Some(io_kind) if e.is_not_found() => IdentityError::Io {
                        path: path.clone(),
                        reason: e.reason,
                        io_kind,
                        input: Some(Input::Cert),
                    },
                    _ => IdentityError::Invalid(e.into_invalid(Input::Cert)),
                })?;
            inspect_bytes(&bytes).map_err(|e| e.named_as(name))
        }
    }
}

/// What differs between the certificate and the one it was compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertComparison {
    /// The other certificate.
    pub cert: CertInfo,
    /// What differs first.
    pub difference: Difference,
    /// Every input that differs (several when, say, both the UDS and the code changed).
    pub differences: Vec<Difference>,
    /// One sentence for users, about `difference`.
    pub explanation: String,
}

/// The certificate, and the comparison when there was another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectReport {
    #[serde(flatten)]
    pub cert: CertInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<CertComparison>,
    /// The fixed-nonce weakness, for an alias certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The report of `cert`, compared with `against` when given.
pub fn report(cert: CertInfo, against: Option<CertInfo>) -> InspectReport {
    let against = against.map(|other| {
        let difference = compare(&cert, &other);
        CertComparison {
            differences: differences(&cert, &other),
            explanation: difference.explanation().to_string(),
            difference,
            cert: other,
        }
    });
    InspectReport {
        note: cert
            .is_alias
            .then(|| super::FIXED_NONCE_WARNING.to_string()),
        cert,
        against,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{DomainError, ErrorKind};
    use std::path::Path;

    #[test]
    fn a_certificate_from_a_file_or_text_and_compared() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/dice-vectors/explicit-id-small");
        let file = CertInput::File(dir.join("my-devkit-01.pem"));
        let text = std::fs::read_to_string(dir.join("my-devkit-01.pem")).unwrap();
        let a = read_cert(&file).unwrap();
        assert_eq!(read_cert(&CertInput::Pem(text)).unwrap(), a);
        let device = read_cert(&CertInput::File(dir.join("device-cert.pem"))).unwrap();
        let r = report(a.clone(), Some(device));
        let against = r.against.as_ref().unwrap();
        assert_ne!(against.difference, Difference::Identical);
        assert_eq!(against.differences[0], against.difference);
        assert!(r.note.is_some(), "an alias certificate carries the note");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["subjectCn"], "my-devkit-01");
        assert_eq!(serde_json::from_value::<InspectReport>(json).unwrap(), r);
        let same = report(a.clone(), Some(a));
        let same = same.against.unwrap();
        assert_eq!(same.difference, Difference::Identical);
        assert!(same.differences.is_empty());

        let missing = read_cert(&CertInput::File(dir.join("nope.pem"))).unwrap_err();
        assert_eq!(
            (missing.kind(), missing.input()),
            (ErrorKind::NotFound, Some(Input::Cert))
        );
        let junk = read_cert(&CertInput::Pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        ))
        .unwrap_err();
        assert_eq!(junk.kind(), ErrorKind::InvalidInput);
    }
}
