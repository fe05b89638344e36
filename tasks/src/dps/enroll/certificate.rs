//! Which certificate is enrolled, checked before anything is sent, and recording it in the
//! project state once it is enrolled.

use super::EnrollError;
use crate::identity::{self, CertInfo, RegistrationId};
use crate::project::{IdentityRecord, IdentitySource, ProjectError, ProjectState};
use std::path::{Path, PathBuf};

/// The certificate to enroll, read and checked.
#[derive(Debug, Clone)]
pub struct EnrollCertificate {
    /// Absolute path.
    pub path: PathBuf,
    pub der: Vec<u8>,
    pub info: CertInfo,
    /// The certificate's CN, which DPS requires to equal the registration ID.
    pub registration_id: RegistrationId,
    /// True when no certificate was named and the project's last generated one is used.
    pub from_project_state: bool,
}

/// The certificate to enroll: `cert` when given, else the one `generate-cert` last wrote for
/// the project at `project`. It must be an alias certificate whose CN is a valid registration ID.
pub fn resolve_certificate(
    project: &Path,
    cert: Option<&Path>,
) -> Result<EnrollCertificate, EnrollError> {
    let (path, from_project_state) = match cert {
        Some(p) => (p.to_path_buf(), false),
        None => {
            let state = ProjectState::load(project)?;
            let rec = state
                .last_generated
                .ok_or_else(|| EnrollError::NoGeneratedCertificate(project.to_path_buf()))?;
            (rec.alias_cert, true)
        }
    };
    let path = std::path::absolute(&path).unwrap_or(path);
    let invalid = |reason: String| EnrollError::InvalidCertificate {
        path: path.clone(),
        reason,
    };
    let bytes = crate::fsutil::read_bounded(&path, "certificate", crate::fsutil::limits::CERT_FILE)
        .map_err(|e| match e.io_kind {
            Some(kind) => EnrollError::Unreadable {
                path: path.clone(),
                source: std::io::Error::new(kind, e.reason),
            },
            None => invalid(e.reason),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("is not a PEM text file".into()))?;
    let der =
        identity::pem::decode(&text, Some("CERTIFICATE")).map_err(|e| invalid(e.to_string()))?;
    let info = identity::inspect(&der).map_err(|e| invalid(e.to_string()))?;
    if !info.is_alias {
        return Err(invalid(format!(
            "this is the DeviceID certificate (CN={}); enroll the alias certificate `<registration id>.pem` instead",
            info.subject_cn
        )));
    }
    let registration_id = RegistrationId::parse(&info.subject_cn)
        .map_err(|e| invalid(format!("its CN is not a valid registration ID ({e})")))?;
    Ok(EnrollCertificate {
        path,
        der,
        info,
        registration_id,
        from_project_state,
    })
}

/// Record `cert` as the project's enrolled identity (what `device-upload`'s drift guard and
/// `devkit/identity` compare new builds with).
pub fn record_enrolled(project: &Path, cert: &EnrollCertificate) -> Result<(), ProjectError> {
    ProjectState::update(project, |s| {
        // The core digest is not in the certificate: carry it over when this is the certificate
        // generated in this project.
        let core_digest = s
            .last_generated
            .as_ref()
            .filter(|g| {
                g.sha256_thumbprint
                    .eq_ignore_ascii_case(&cert.info.sha256_thumbprint)
            })
            .and_then(|g| g.core_digest.clone());
        s.last_enrolled = Some(IdentityRecord {
            registration_id: cert.registration_id.to_string(),
            fwid: cert.info.fwid.clone().unwrap_or_default(),
            sha256_thumbprint: cert.info.sha256_thumbprint.clone(),
            alias_cert: cert.path.clone(),
            source: IdentitySource::Enrolled,
            core_digest,
            device_id_public_key: cert.info.device_id_public_key.clone(),
        })
    })
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{DomainError, Input};

    fn vector_identity() -> identity::DeviceIdentity {
        let uds = identity::Uds::parse(&"ab".repeat(32)).unwrap();
        let image = crate::provision::sample::image().unwrap();
        identity::derive(&uds, &image, &RegistrationId::parse("enroll-test").unwrap()).unwrap()
    }

    #[test]
    fn the_certificate_comes_from_the_project_and_must_be_an_alias_certificate() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            resolve_certificate(dir.path(), None),
            Err(EnrollError::NoGeneratedCertificate(_))
        ));
        let d = vector_identity();
        let written = identity::files::write_identity(
            &d,
            dir.path(),
            identity::files::FileOptions {
                device_cert: true,
                ..Default::default()
            },
        )
        .unwrap();
        identity::files::record_generated(dir.path(), &d, &written[0].path).unwrap();
        let cert = resolve_certificate(dir.path(), None).unwrap();
        assert!(cert.from_project_state);
        assert_eq!(cert.registration_id.as_str(), "enroll-test");
        assert_eq!(cert.der, d.alias_cert_der);
        let device =
            resolve_certificate(dir.path(), Some(&dir.path().join("device-cert.pem"))).unwrap_err();
        assert!(
            device.to_string().contains("DeviceID certificate"),
            "{device}"
        );
        assert_eq!(device.input(), Some(Input::Cert));
        record_enrolled(dir.path(), &cert).unwrap();
        let state = ProjectState::load(dir.path()).unwrap();
        assert_eq!(
            state.last_enrolled.unwrap().sha256_thumbprint,
            d.sha256_thumbprint()
        );
    }
}
