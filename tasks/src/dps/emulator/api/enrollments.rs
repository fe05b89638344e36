//! Individual enrollments on the service API: create or replace under ETags, get, delete,
//! query with paging, bulk operations and the attestation mechanism (dps-api.md §1).

use super::{
    bare_etag, if_match_allows, not_found, precondition_failed, query_page, registration_id_error,
    valid_registration_id, Core, Reply, Request,
};
use crate::dps::cert;
use crate::dps::emulator::state::RegistrationState;
use crate::dps::enrollment::{BulkMode, IndividualEnrollment, X509CertificateInfo};
use serde_json::json;

/// The copy of an enrollment that goes on the wire: certificate replaced by its `info`, and
/// the device's `registrationState` once it registered.
fn public_view(
    e: &IndividualEnrollment,
    registration: Option<&RegistrationState>,
) -> IndividualEnrollment {
    let mut e = e.clone();
    if let Some(c) = e
        .attestation
        .x509
        .as_mut()
        .and_then(|x| x.client_certificates.as_mut())
    {
        for p in [c.primary.as_mut(), c.secondary.as_mut()]
            .into_iter()
            .flatten()
        {
            p.certificate = None;
        }
    }
    if let Some(r) = registration {
        e.extra.insert(
            "registrationState".into(),
            serde_json::to_value(r).unwrap_or_default(),
        );
    }
    e
}

/// Certificate `info` with every field the service spec marks required.
pub(super) fn certificate_info(der: &[u8], fields: &cert::CertFields) -> X509CertificateInfo {
    X509CertificateInfo {
        subject_name: fields.subject_name.clone().unwrap_or_default(),
        sha1_thumbprint: crate::identity::sha1_thumbprint(der),
        sha256_thumbprint: crate::identity::sha256_thumbprint(der),
        issuer_name: fields.issuer_name.clone().unwrap_or_default(),
        not_before_utc: fields.not_before_utc.clone(),
        not_after_utc: fields.not_after_utc.clone(),
        serial_number: fields.serial_number.clone(),
        version: Some(3),
    }
}

impl Core {
    /// `/enrollments/...` (`rest` after `enrollments`); `None` when no route matches.
    pub(super) fn enrollments(
        &mut self,
        method: &str,
        rest: &[&str],
        req: &Request,
    ) -> Option<Reply> {
        Some(match (method, rest) {
            ("POST", ["query"]) => self.query(req),
            ("POST", []) => self.bulk(req),
            ("PUT", [id]) => self.put_enrollment(id, req),
            ("GET", [id]) => match self.persisted.enrollments.get(*id) {
                Some(e) => self.enrollment_reply(e),
                None => not_found(),
            },
            ("POST", [id, "attestationmechanism"]) => match self.persisted.enrollments.get(*id) {
                Some(e) => Reply::json(200, &self.enrollment_view(e).attestation),
                None => not_found(),
            },
            ("DELETE", [id]) => self.delete_enrollment(id, req.header("if-match")),
            _ => return None,
        })
    }

    fn enrollment_view(&self, e: &IndividualEnrollment) -> IndividualEnrollment {
        public_view(e, self.persisted.registrations.get(&e.registration_id))
    }

    /// 200 with the enrollment and its quoted `ETag` header.
    fn enrollment_reply(&self, e: &IndividualEnrollment) -> Reply {
        let reply = Reply::json(200, &self.enrollment_view(e));
        match &e.etag {
            Some(tag) => reply.with_header("etag", format!("\"{}\"", bare_etag(tag))),
            None => reply,
        }
    }

    fn etag_matches(&self, id: &str, if_match: Option<&str>) -> bool {
        let existing = self.persisted.enrollments.get(id);
        if_match_allows(
            if_match,
            existing.map(|e| e.etag.as_deref().unwrap_or_default()),
        )
    }

    /// Validate and store an enrollment; `Err` is the error answer.
    fn store(
        &mut self,
        id: &str,
        mut e: IndividualEnrollment,
    ) -> Result<IndividualEnrollment, Reply> {
        if !valid_registration_id(id) || e.registration_id != id {
            return Err(registration_id_error());
        }
        if e.attestation.kind != "x509" {
            return Err(Reply::error(
                400,
                400011,
                "Only X.509 attestation is supported by this emulator",
            ));
        }
        // Read-only fields a client echoes back from a GET are the service's to set.
        e.extra.remove("registrationState");
        let previous = self.persisted.enrollments.get(id);
        // A read-modify-write sends the certificate's `info` without the certificate (GET never
        // returns it): keep the stored one, as DPS does.
        if let (Some(primary), Some(stored)) = (
            e.attestation
                .x509
                .as_mut()
                .and_then(|x| x.client_certificates.as_mut())
                .and_then(|c| c.primary.as_mut()),
            previous
                .and_then(|p| p.primary_certificate())
                .and_then(|p| p.certificate.clone()),
        ) {
            if primary.certificate.is_none() {
                primary.certificate = Some(stored);
            }
        }
        let der = e.primary_certificate_der().ok_or_else(|| Reply::error(400, 400010, "Invalid certificate: attestation.x509.clientCertificates.primary.certificate must be PEM or base64 DER"))?;
        let fields = cert::read(&der).ok_or_else(|| {
            Reply::error(400, 400010, "Invalid certificate: not an X.509 certificate")
        })?;
        let (created, updated, etag) =
            self.stamp(previous.and_then(|p| p.created_date_time_utc.clone()));
        e.created_date_time_utc = Some(created);
        e.last_updated_date_time_utc = Some(updated);
        e.etag = Some(etag);
        e.provisioning_status
            .get_or_insert(crate::dps::enrollment::ProvisioningStatus::Enabled);
        if let Some(p) = e
            .attestation
            .x509
            .as_mut()
            .and_then(|x| x.client_certificates.as_mut())
            .and_then(|c| c.primary.as_mut())
        {
            p.certificate = Some(cert::pem_encode(&der));
            p.info = Some(certificate_info(&der, &fields));
        }
        self.persisted.enrollments.insert(id.to_string(), e.clone());
        Ok(e)
    }

    fn put_enrollment(&mut self, id: &str, req: &Request) -> Reply {
        let e: IndividualEnrollment = match serde_json::from_slice(req.body) {
            Ok(e) => e,
            Err(err) => return Reply::error(400, 400000, &format!("Malformed enrollment: {err}")),
        };
        if !self.etag_matches(id, req.header("if-match")) {
            return precondition_failed();
        }
        match self.store(id, e) {
            Ok(stored) => self
                .save()
                .err()
                .unwrap_or_else(|| self.enrollment_reply(&stored)),
            Err(reply) => reply,
        }
    }

    fn delete_enrollment(&mut self, id: &str, if_match: Option<&str>) -> Reply {
        if !self.persisted.enrollments.contains_key(id) {
            return not_found();
        }
        if !self.etag_matches(id, if_match) {
            return precondition_failed();
        }
        self.persisted.enrollments.remove(id);
        self.save().err().unwrap_or(Reply::empty(204))
    }

    fn query(&mut self, req: &Request) -> Reply {
        let all = self.persisted.enrollments.values();
        query_page(req, all.len(), |start, n| {
            all.skip(start)
                .take(n)
                .map(|e| self.enrollment_view(e))
                .collect()
        })
    }

    fn bulk(&mut self, req: &Request) -> Reply {
        #[derive(serde::Deserialize)]
        struct Bulk {
            enrollments: Vec<IndividualEnrollment>,
            mode: BulkMode,
        }
        let b: Bulk = match serde_json::from_slice(req.body) {
            Ok(b) => b,
            Err(err) => {
                return Reply::error(400, 400000, &format!("Malformed bulk operation: {err}"))
            }
        };
        if b.enrollments.len() > crate::dps::service::BULK_CHUNK {
            return Reply::error(400, 400000, "At most 10 enrollments per bulk operation");
        }
        let mut errors = Vec::new();
        for e in b.enrollments {
            let id = e.registration_id.clone();
            let exists = self.persisted.enrollments.contains_key(&id);
            let fail = |code: u32, status: &str| json!({"registrationId": id, "errorCode": code, "errorStatus": status});
            let result = match b.mode {
                BulkMode::Create if exists => Err(fail(409201, "Enrollment already exists")),
                BulkMode::Delete if !exists => Err(fail(404201, "Enrollment not found")),
                BulkMode::Delete => {
                    self.persisted.enrollments.remove(&id);
                    Ok(())
                }
                BulkMode::UpdateIfMatchETag
                    if !self.etag_matches(&id, Some(e.etag.as_deref().unwrap_or("\"\""))) =>
                {
                    Err(fail(412, "Precondition failed"))
                }
                BulkMode::Create if !valid_registration_id(&id) => {
                    Err(fail(400004, "Invalid RegistrationId"))
                }
                _ => self.store(&id.clone(), e).map(|_| ()).map_err(|r| {
                    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                    fail(
                        v["errorCode"].as_u64().unwrap_or(400) as u32,
                        v["message"].as_str().unwrap_or("invalid"),
                    )
                }),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        if let Err(r) = self.save() {
            return r;
        }
        Reply::json(
            200,
            &json!({"isSuccessful": errors.is_empty(), "errors": errors}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{service_request, test_core};
    use super::*;

    /// What Azure does and Microsoft's SDKs and `az` rely on: a PUT of the enrollment as GET
    /// returned it keeps the certificate; ETags bare in JSON, quoted in headers, `If-Match`
    /// either way; `POST /enrollments/` is bulk; unknown api-versions are refused.
    #[test]
    fn read_modify_write_etags_bulk_and_api_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = test_core(dir.path());
        let v = "api-version=2021-10-01";
        let (der, _) = crate::dps::emulator::certs::make_test_device_cert("rmw-1").unwrap();
        let created = json!({"registrationId": "rmw-1", "attestation": {"type": "x509", "x509": {"clientCertificates": {"primary": {"certificate": cert::pem_encode(&der)}}}}, "initialTwin": {"tags": {"a": 1}}});
        let (status, body, headers) =
            service_request(&mut core, "PUT", "/enrollments/rmw-1", v, &[], &created);
        assert_eq!(status, 200, "{body}");
        let etag = body["etag"].as_str().unwrap().to_string();
        assert!(!etag.contains('"'));
        assert_eq!(headers["etag"], format!("\"{etag}\"").as_str());
        let info = &body["attestation"]["x509"]["clientCertificates"]["primary"]["info"];
        for field in [
            "notBeforeUtc",
            "notAfterUtc",
            "serialNumber",
            "subjectName",
            "issuerName",
        ] {
            assert!(
                info[field].as_str().is_some_and(|s| !s.is_empty()),
                "{field}: {info}"
            );
        }
        let (_, mut got, _) =
            service_request(&mut core, "GET", "/enrollments/rmw-1", v, &[], &json!(null));
        assert!(got["attestation"]["x509"]["clientCertificates"]["primary"]
            .get("certificate")
            .is_none());
        got["deviceId"] = json!("renamed");
        // Quoted If-Match works as well as bare.
        let quoted = format!("\"{etag}\"");
        let (status, updated, _) = service_request(
            &mut core,
            "PUT",
            "/enrollments/rmw-1",
            v,
            &[("if-match", &quoted)],
            &got,
        );
        assert_eq!(status, 200, "{updated}");
        assert_eq!(
            core.persisted.enrollments["rmw-1"]
                .primary_certificate_der()
                .unwrap(),
            der,
            "stored certificate kept"
        );
        assert_eq!(updated["initialTwin"]["tags"]["a"], 1);
        let (status, _, _) = service_request(
            &mut core,
            "PUT",
            "/enrollments/rmw-1",
            v,
            &[("if-match", &etag)],
            &got,
        );
        assert_eq!(status, 412, "stale bare ETag");
        let (status, _, _) = service_request(
            &mut core,
            "DELETE",
            "/enrollments/rmw-1",
            v,
            &[("if-match", "\"AAAAAAAAAAA=\"")],
            &json!(null),
        );
        assert_eq!(status, 412);
        // Bulk through the trailing-slash path.
        let bulk = json!({"mode": "create", "enrollments": [{"registrationId": "rmw-2", "attestation": created["attestation"].clone()}]});
        let (status, result, _) =
            service_request(&mut core, "POST", "/enrollments/", v, &[], &bulk);
        assert_eq!(
            (status, result["isSuccessful"].as_bool()),
            (200, Some(true)),
            "{result}"
        );
        for query in ["api-version=1999-01-01", "other=1"] {
            let (status, body, _) = service_request(
                &mut core,
                "GET",
                "/enrollments/rmw-2",
                query,
                &[],
                &json!(null),
            );
            assert_eq!(status, 400, "{query}: {body}");
        }
        // %XX in paths is decoded.
        let (status, _, _) = service_request(
            &mut core,
            "GET",
            "/enrollments/rmw%2D2",
            v,
            &[],
            &json!(null),
        );
        assert_eq!(status, 200);
    }
}
