//! Enrollment groups on the service API (`/enrollmentGroups`): create or replace under ETags,
//! get, delete, query with paging and the attestation mechanism, as for individual
//! enrollments. X.509 CA groups only: the group holds its signing certificate (a root or an
//! intermediate), and a device whose chain leads to it registers through the group
//! ([`device_registration`](super::device_registration), [`chain`](crate::dps::emulator)).
//! `caReferences` (a CA certificate registered with DPS by name) is refused: the emulator has
//! no certificate registry.

use super::enrollments::certificate_info;
use super::{
    bare_etag, if_match_allows, precondition_failed, query_page, valid_registration_id, Core,
    Reply, Request,
};
use crate::dps::cert;
use crate::dps::enrollment::ProvisioningStatus;
use crate::dps::enrollment_group::EnrollmentGroup;

fn group_not_found() -> Reply {
    Reply::error(404, 404204, "Enrollment group not found")
}

/// The copy of a group that goes on the wire: signing certificates replaced by their `info`,
/// as for individual enrollments.
fn public_view(g: &EnrollmentGroup) -> EnrollmentGroup {
    let mut g = g.clone();
    for c in g.signing_certificates_mut() {
        c.certificate = None;
    }
    g
}

fn group_reply(g: &EnrollmentGroup) -> Reply {
    let reply = Reply::json(200, &public_view(g));
    match &g.etag {
        Some(tag) => reply.with_header("etag", format!("\"{}\"", bare_etag(tag))),
        None => reply,
    }
}

impl Core {
    /// `/enrollmentGroups/...` (`rest` after `enrollmentGroups`); `None` when no route matches.
    pub(super) fn enrollment_groups(
        &mut self,
        method: &str,
        rest: &[&str],
        req: &Request,
    ) -> Option<Reply> {
        Some(match (method, rest) {
            ("POST", ["query"]) => {
                let all = self.persisted.enrollment_groups.values();
                query_page(req, all.len(), |start, n| {
                    all.skip(start).take(n).map(public_view).collect()
                })
            }
            ("PUT", [id]) => self.put_group(id, req),
            ("GET", [id]) => match self.persisted.enrollment_groups.get(*id) {
                Some(g) => group_reply(g),
                None => group_not_found(),
            },
            ("POST", [id, "attestationmechanism"]) => {
                match self.persisted.enrollment_groups.get(*id) {
                    Some(g) => Reply::json(200, &public_view(g).attestation),
                    None => group_not_found(),
                }
            }
            ("DELETE", [id]) => self.delete_group(id, req.header("if-match")),
            _ => return None,
        })
    }

    fn group_etag_allows(&self, id: &str, if_match: Option<&str>) -> bool {
        let existing = self.persisted.enrollment_groups.get(id);
        if_match_allows(
            if_match,
            existing.map(|g| g.etag.as_deref().unwrap_or_default()),
        )
    }

    fn put_group(&mut self, id: &str, req: &Request) -> Reply {
        let g: EnrollmentGroup = match serde_json::from_slice(req.body) {
            Ok(g) => g,
            Err(err) => {
                return Reply::error(400, 400000, &format!("Malformed enrollment group: {err}"))
            }
        };
        if !self.group_etag_allows(id, req.header("if-match")) {
            return precondition_failed();
        }
        match self.store_group(id, g) {
            Ok(stored) => self.save().err().unwrap_or_else(|| group_reply(&stored)),
            Err(reply) => reply,
        }
    }

    /// Validate and store a group; `Err` is the error answer.
    fn store_group(&mut self, id: &str, mut g: EnrollmentGroup) -> Result<EnrollmentGroup, Reply> {
        if !valid_registration_id(id) || g.enrollment_group_id != id {
            return Err(Reply::error(400, 400004, "Invalid enrollmentGroupId"));
        }
        let x509 = g.attestation.x509.as_ref();
        if g.attestation.kind != "x509" || x509.is_none() {
            return Err(Reply::error(
                400,
                400011,
                "Only X.509 CA enrollment groups are supported by this emulator",
            ));
        }
        if x509.is_some_and(|x| x.signing_certificates.is_none()) {
            return Err(Reply::error(400, 400010, "Invalid certificate: attestation.x509.signingCertificates.primary.certificate is required (caReferences needs DPS's certificate registry, which this emulator does not have)"));
        }
        let previous = self.persisted.enrollment_groups.get(id);
        // A read-modify-write sends `info` without the certificate (GET never returns it):
        // keep the stored one, slot by slot.
        let stored: Vec<Option<String>> = previous
            .cloned()
            .map(|mut p| {
                p.signing_certificates_mut()
                    .map(|c| c.certificate.clone())
                    .collect()
            })
            .unwrap_or_default();
        for (i, c) in g.signing_certificates_mut().enumerate() {
            if c.certificate.is_none() {
                c.certificate = stored.get(i).cloned().flatten();
            }
        }
        let mut certificates = Vec::new();
        for c in g.signing_certificates_mut() {
            let der = c
                .certificate
                .as_deref()
                .and_then(cert::der_from_pem_or_base64)
                .ok_or_else(|| {
                    Reply::error(
                        400,
                        400010,
                        "Invalid certificate: each signing certificate must be PEM or base64 DER",
                    )
                })?;
            let fields = cert::read(&der).ok_or_else(|| {
                Reply::error(400, 400010, "Invalid certificate: not an X.509 certificate")
            })?;
            c.certificate = Some(cert::pem_encode(&der));
            c.info = Some(certificate_info(&der, &fields));
            certificates.push(der);
        }
        if certificates.is_empty() {
            return Err(Reply::error(
                400,
                400010,
                "Invalid certificate: signingCertificates.primary is required",
            ));
        }
        let (created, updated, etag) =
            self.stamp(previous.and_then(|p| p.created_date_time_utc.clone()));
        g.created_date_time_utc = Some(created);
        g.last_updated_date_time_utc = Some(updated);
        g.etag = Some(etag);
        g.provisioning_status
            .get_or_insert(ProvisioningStatus::Enabled);
        self.persisted
            .enrollment_groups
            .insert(id.to_string(), g.clone());
        Ok(g)
    }

    fn delete_group(&mut self, id: &str, if_match: Option<&str>) -> Reply {
        if !self.persisted.enrollment_groups.contains_key(id) {
            return group_not_found();
        }
        if !self.group_etag_allows(id, if_match) {
            return precondition_failed();
        }
        self.persisted.enrollment_groups.remove(id);
        self.save().err().unwrap_or(Reply::empty(204))
    }
}
