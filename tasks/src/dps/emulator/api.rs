//! The emulator's request handling, apart from the HTTP/TLS plumbing: service API (SAS),
//! IoT Hub registry API (SAS), device API (client certificate). Pure functions of the state
//! and the request, so they are easy to test.

use super::state::{Persisted, RegistrationState};
use crate::dps::cert;
use crate::dps::enrollment::{BulkMode, IndividualEnrollment, X509CertificateInfo};
use crate::dps::sas;
use base64::Engine;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The SAS policy the emulator's DPS connection string names.
pub const SERVICE_POLICY: &str = "provisioningserviceowner";
/// The SAS policy of the hub connection strings it hands out.
pub const HUB_POLICY: &str = "iothubowner";

/// What a handler answers.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, value: &impl serde::Serialize) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json; charset=utf-8".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }
    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: vec![],
        }
    }
    /// A DPS error answer: body and `x-ms-error-code` header.
    pub fn error(status: u16, code: u32, message: &str) -> Reply {
        let body = json!({
            "errorCode": code,
            "trackingId": hex::encode(rand::random::<[u8; 16]>()),
            "message": message,
            "timestampUtc": now_rfc3339(),
        });
        let mut r = Reply::json(status, &body);
        r.headers.push(("x-ms-error-code", code.to_string()));
        r
    }
    fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// A request as the handlers see it.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a hyper::HeaderMap,
    pub body: &'a [u8],
    /// The TLS client certificate (device API only).
    pub peer_cert: Option<&'a [u8]>,
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The `api-version` query parameter.
    fn api_version(&self) -> Option<String> {
        self.query?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == "api-version").then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }
    /// The path's segments, `%XX` decoded (`None` when a segment is not UTF-8).
    fn segments(&self) -> Option<Vec<String>> {
        self.path
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            })
            .collect()
    }
}

/// Service API versions real clients send: the REST specification's stable versions (the
/// Node.js, C# and Python service SDKs and the Azure CLI send 2021-10-01).
pub const SERVICE_API_VERSIONS: &[&str] = &[
    "2017-11-15",
    "2018-01-22",
    "2019-03-31",
    "2021-06-01",
    "2021-10-01",
];
/// Device API versions real clients send: the DevKit firmware (2018-09-01-preview), the C
/// SDK (2019-03-31), the Node.js SDK (2019-03-31), newer C / C# / embedded SDKs (2021-06-01).
pub const DEVICE_API_VERSIONS: &[&str] = &[
    "2017-11-15",
    "2018-09-01-preview",
    "2018-11-01",
    "2019-01-15",
    "2019-03-31",
    "2021-06-01",
    "2021-11-01-preview",
];

/// `None` when `req` carries one of `known`, else the error answer (as DPS: 400).
fn check_api_version(req: &Request, known: &[&str]) -> Option<Reply> {
    match req.api_version() {
        Some(v) if known.contains(&v.as_str()) => None,
        Some(_) => Some(Reply::error(
            400,
            400001,
            "The api-version query parameter is not supported",
        )),
        None => Some(Reply::error(
            400,
            400001,
            "The api-version query parameter is required",
        )),
    }
}

/// An ETag as the JSON body carries it (bare) from a header value (quoted or not).
fn bare_etag(tag: &str) -> &str {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t)
}

/// Knobs of the emulator's behaviour.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// `Retry-After` seconds on 202 (assigning) and injected 429 answers.
    pub retry_after_secs: u32,
    /// How many polls answer 202 "assigning" before the result.
    pub assigning_polls: u32,
    /// Hub for enrollments that name none.
    pub default_hub: String,
}

struct Operation {
    registration_id: String,
    cert_der: Vec<u8>,
    polls_left: u32,
    started: std::time::Instant,
}

/// Operations nobody polled for this long are forgotten.
const OPERATION_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// The emulator's state and counters, behind one lock.
pub struct Core {
    pub dir: PathBuf,
    pub persisted: Persisted,
    pub service_key: Zeroizing<Vec<u8>>,
    /// Accepted SAS resources for the DPS service API (`127.0.0.1:PORT`, ...).
    pub service_hosts: Vec<String>,
    pub behaviour: Behaviour,
    /// Injected 429 answers still to give on the service API / the device API.
    pub throttle_service: u32,
    pub throttle_device: u32,
    ops: HashMap<String, Operation>,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// DPS's registration ID rule (service spec): 1..=128 of lowercase letters, digits and
/// `-._:`, no special character at the start or the end.
pub fn valid_registration_id(id: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (1..=128).contains(&id.len())
        && id.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_' | ':')
        })
        && edge(id.chars().next())
        && edge(id.chars().last())
}

fn throttled(retry_after: u32) -> Reply {
    Reply::error(
        429,
        429001,
        "Operations are being throttled for this tenant.",
    )
    .with_header("retry-after", retry_after.to_string())
}

fn registration_id_error() -> Reply {
    Reply::error(400, 400004, "Invalid RegistrationId")
}

fn not_found() -> Reply {
    Reply::error(404, 404201, "Enrollment not found")
}

fn precondition_failed() -> Reply {
    Reply::error(
        412,
        412,
        "Precondition failed: the ETag does not match If-Match",
    )
}

/// Whether `If-Match` (absent, `*`, or an ETag quoted or bare) allows changing a resource
/// whose current ETag is `current` (`None`: it does not exist).
fn if_match_allows(if_match: Option<&str>, current: Option<&str>) -> bool {
    match (if_match.map(str::trim), current) {
        (None, _) => true,
        (Some("*"), current) => current.is_some(),
        (Some(tag), Some(current)) => bare_etag(tag) == bare_etag(current),
        (Some(_), None) => false,
    }
}

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
fn certificate_info(der: &[u8], fields: &cert::CertFields) -> X509CertificateInfo {
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
    pub fn new(
        dir: PathBuf,
        persisted: Persisted,
        service_key: Zeroizing<Vec<u8>>,
        service_hosts: Vec<String>,
        behaviour: Behaviour,
    ) -> Core {
        Core {
            dir,
            persisted,
            service_key,
            service_hosts,
            behaviour,
            throttle_service: 0,
            throttle_device: 0,
            ops: HashMap::new(),
        }
    }

    fn save(&self) -> Result<(), Reply> {
        self.persisted.save(&self.dir).map_err(|e| {
            tracing::error!("{e}");
            Reply::error(
                500,
                500000,
                "Internal error: the emulator cannot write its state",
            )
        })
    }

    /// A new ETag, bare base64 as DPS puts it in JSON (headers carry it quoted).
    fn next_etag(&mut self) -> String {
        self.persisted.next_etag += 1;
        base64::engine::general_purpose::STANDARD.encode(self.persisted.next_etag.to_be_bytes())
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

    // ---------------------------------------------------------------- service API

    /// The service endpoint: DPS enrollments (`/enrollments...`, `/registrations/...`) and the
    /// IoT Hub registries (`/iothubs/{hub}/devices/{deviceId}`).
    pub fn handle_service(&mut self, req: &Request) -> Reply {
        let Some(mut segments) = req.segments() else {
            return Reply::error(400, 400000, "Invalid path encoding");
        };
        // `POST /enrollments/` (what the Node.js SDK sends for bulk) is `POST /enrollments`.
        if segments.len() > 1 && segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let auth = req.header("authorization").unwrap_or_default();
        let now = sas::now_unix();
        // IoT Hub registry: `/iothubs/{hub}/devices/{id}`, or `/devices/{id}` with the hub in
        // the Host header (a client that resolves the hub name to the emulator).
        let host_hub = req.header("host").map(|h| {
            h.rsplit_once(':')
                .map_or(h, |(name, _)| name)
                .to_ascii_lowercase()
        });
        let hub_request = match (&seg[..], host_hub.as_deref()) {
            (["iothubs", hub, "devices", device_id], _) => Some((hub.to_string(), *device_id)),
            (["devices", device_id], Some(h))
                if h.contains('.')
                    && h.parse::<std::net::IpAddr>().is_err()
                    && h != "localhost" =>
            {
                Some((h.to_string(), *device_id))
            }
            _ => None,
        };
        if let Some((hub, device_id)) = hub_request {
            let hub = hub.as_str();
            if !self.persisted.hubs.contains_key(hub) && hub != self.behaviour.default_hub {
                return Reply::error(404, 404000, "IotHub not found");
            }
            if sas::verify(auth, &[hub], &self.service_key, HUB_POLICY, now).is_err() {
                return Reply::error(401, 401002, "Unauthorized");
            }
            if req.method != "GET" {
                return Reply::error(405, 405000, "Method not allowed");
            }
            return match self.persisted.hubs.get(hub).and_then(|h| h.get(device_id)) {
                Some(d) => Reply::json(200, d),
                None => Reply::error(404, 404001, &format!("Device {device_id} not found")),
            };
        }
        let hosts: Vec<&str> = self.service_hosts.iter().map(String::as_str).collect();
        if let Err(e) = sas::verify(auth, &hosts, &self.service_key, SERVICE_POLICY, now) {
            return Reply::error(401, 401002, &format!("Unauthorized: {e}"));
        }
        if let Some(reply) = check_api_version(req, SERVICE_API_VERSIONS) {
            return reply;
        }
        if self.throttle_service > 0 {
            self.throttle_service -= 1;
            return throttled(self.behaviour.retry_after_secs);
        }
        match (req.method, &seg[..]) {
            ("POST", ["enrollments", "query"]) => self.query(req),
            ("POST", ["enrollments"]) => self.bulk(req),
            ("PUT", ["enrollments", id]) => self.put_enrollment(id, req),
            ("GET", ["enrollments", id]) => match self.persisted.enrollments.get(*id) {
                Some(e) => self.enrollment_reply(e),
                None => not_found(),
            },
            ("POST", ["enrollments", id, "attestationmechanism"]) => {
                match self.persisted.enrollments.get(*id) {
                    Some(e) => Reply::json(200, &self.enrollment_view(e).attestation),
                    None => not_found(),
                }
            }
            ("DELETE", ["enrollments", id]) => self.delete_enrollment(id, req.header("if-match")),
            ("GET", ["registrations", id]) => match self.persisted.registrations.get(*id) {
                Some(r) => {
                    Reply::json(200, r).with_header("etag", format!("\"{}\"", bare_etag(&r.etag)))
                }
                None => Reply::error(404, 404202, "Registration not found"),
            },
            ("DELETE", ["registrations", id]) => {
                let Some(r) = self.persisted.registrations.get(*id) else {
                    return Reply::error(404, 404202, "Registration not found");
                };
                if !if_match_allows(req.header("if-match"), Some(&r.etag)) {
                    return precondition_failed();
                }
                self.persisted.registrations.remove(*id);
                self.save().err().unwrap_or(Reply::empty(204))
            }
            _ => Reply::error(404, 404000, "Not found"),
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
        let now = now_rfc3339();
        e.created_date_time_utc = Some(
            previous
                .and_then(|p| p.created_date_time_utc.clone())
                .unwrap_or_else(|| now.clone()),
        );
        e.last_updated_date_time_utc = Some(now);
        e.etag = Some(self.next_etag());
        if e.provisioning_status.is_none() {
            e.provisioning_status = Some(crate::dps::enrollment::ProvisioningStatus::Enabled);
        }
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
        let page = req
            .header("x-ms-max-item-count")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(100)
            .clamp(1, 1000);
        let start = match req.header("x-ms-continuation") {
            None => 0,
            Some(c) => match c.parse::<usize>() {
                Ok(n) => n,
                Err(_) => return Reply::error(400, 400000, "Invalid continuation token"),
            },
        };
        let items: Vec<IndividualEnrollment> = self
            .persisted
            .enrollments
            .values()
            .skip(start)
            .take(page)
            .map(|e| self.enrollment_view(e))
            .collect();
        let mut reply = Reply::json(200, &items);
        if start + items.len() < self.persisted.enrollments.len() {
            reply
                .headers
                .push(("x-ms-continuation", (start + items.len()).to_string()));
        }
        reply
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

    // ---------------------------------------------------------------- device API

    /// The device endpoint: `PUT /{scope}/registrations/{id}/register` and
    /// `GET /{scope}/registrations/{id}/operations/{operationId}`, any api-version.
    pub fn handle_device(&mut self, req: &Request) -> Reply {
        let Some(segments) = req.segments() else {
            return Reply::error(400, 400000, "Invalid path encoding");
        };
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        if let Some(reply) = check_api_version(req, DEVICE_API_VERSIONS) {
            return reply;
        }
        match (req.method, &seg[..]) {
            ("PUT", [scope, "registrations", id, "register"]) => self.register(scope, id, req),
            ("GET", [scope, "registrations", id, "operations", op]) => {
                self.operation(scope, id, op, req)
            }
            ("POST", [scope, "registrations", id]) => self.status_lookup(scope, id, req),
            _ => Reply::error(404, 404000, "Not found"),
        }
    }

    /// Device registration status lookup: the device's last registration result.
    fn status_lookup(&mut self, scope: &str, id: &str, req: &Request) -> Reply {
        if scope != self.persisted.id_scope {
            return Reply::error(404, 404104, "ID scope not found");
        }
        if !valid_registration_id(id) {
            return registration_id_error();
        }
        let enrolled = self
            .persisted
            .enrollments
            .get(id)
            .and_then(IndividualEnrollment::primary_certificate_der);
        if req.peer_cert.is_none() || enrolled.as_deref() != req.peer_cert {
            return Reply::error(401, 401002, "Invalid certificate");
        }
        match self.persisted.registrations.get(id) {
            Some(r) => Reply::json(200, r),
            None => Reply::error(404, 404202, "Registration not found"),
        }
    }

    fn register(&mut self, scope: &str, id: &str, req: &Request) -> Reply {
        if scope != self.persisted.id_scope {
            return Reply::error(404, 404104, "ID scope not found");
        }
        if self.throttle_device > 0 {
            self.throttle_device -= 1;
            return throttled(self.behaviour.retry_after_secs);
        }
        if !valid_registration_id(id) {
            return registration_id_error();
        }
        let body_id = serde_json::from_slice::<serde_json::Value>(req.body)
            .ok()
            .and_then(|v| v["registrationId"].as_str().map(str::to_string));
        if body_id.as_deref() != Some(id) {
            return registration_id_error();
        }
        let Some(presented) = req.peer_cert else {
            return Reply::error(401, 401002, "Invalid certificate");
        };
        let Some(enrollment) = self.persisted.enrollments.get(id) else {
            return not_found();
        };
        let cn = cert::read(presented).and_then(|f| f.subject_cn);
        if cn.as_deref() != Some(id)
            || enrollment.primary_certificate_der().as_deref() != Some(presented)
        {
            tracing::info!(
                registration_id = id,
                "refused: the presented certificate is not the enrolled one"
            );
            return Reply::error(401, 401002, "Invalid certificate");
        }
        let operation_id = format!(
            "5.{}.{}",
            hex::encode(rand::random::<[u8; 8]>()),
            hex::encode(rand::random::<[u8; 16]>())
        );
        self.ops.retain(|_, o| o.started.elapsed() < OPERATION_TTL);
        self.ops.insert(
            operation_id.clone(),
            Operation {
                registration_id: id.to_string(),
                cert_der: presented.to_vec(),
                polls_left: self.behaviour.assigning_polls,
                started: std::time::Instant::now(),
            },
        );
        Reply::json(
            202,
            &json!({"operationId": operation_id, "status": "assigning"}),
        )
        .with_header("retry-after", self.behaviour.retry_after_secs.to_string())
    }

    fn operation(&mut self, scope: &str, id: &str, op_id: &str, req: &Request) -> Reply {
        if scope != self.persisted.id_scope {
            return Reply::error(404, 404104, "ID scope not found");
        }
        let Some(op) = self.ops.get_mut(op_id).filter(|o| o.registration_id == id) else {
            return Reply::error(404, 404203, "Operation not found");
        };
        if req.peer_cert != Some(op.cert_der.as_slice()) {
            return Reply::error(401, 401002, "Invalid certificate");
        }
        if op.polls_left > 0 {
            op.polls_left -= 1;
            return Reply::json(202, &json!({"operationId": op_id, "status": "assigning"}))
                .with_header("retry-after", self.behaviour.retry_after_secs.to_string());
        }
        self.ops.remove(op_id);
        let Some(enrollment) = self.persisted.enrollments.get(id).cloned() else {
            return not_found();
        };
        let now = now_rfc3339();
        let previous = self.persisted.registrations.get(id).cloned();
        let etag = self.next_etag();
        let mut state = RegistrationState {
            registration_id: id.to_string(),
            assigned_hub: None,
            device_id: None,
            status: "disabled".into(),
            substatus: None,
            error_code: None,
            error_message: None,
            created_date_time_utc: previous
                .as_ref()
                .map(|p| p.created_date_time_utc.clone())
                .unwrap_or_else(|| now.clone()),
            last_updated_date_time_utc: now,
            etag,
            x509: json!({}),
        };
        if !enrollment.is_enabled() {
            state.error_message = Some("Enrollment is disabled".into());
        } else {
            let hub = enrollment
                .iot_hubs
                .as_ref()
                .and_then(|h| h.first().cloned())
                .unwrap_or_else(|| self.behaviour.default_hub.clone());
            let device_id = enrollment
                .device_id
                .clone()
                .unwrap_or_else(|| id.to_string());
            state.status = "assigned".into();
            state.substatus = Some(
                if previous.as_ref().is_some_and(|p| p.status == "assigned") {
                    "reprovisionedToInitialAssignment"
                } else {
                    "initialAssignment"
                }
                .into(),
            );
            state.assigned_hub = Some(hub.clone());
            state.device_id = Some(device_id.clone());
            let thumbprint = crate::identity::sha1_thumbprint(
                &enrollment.primary_certificate_der().unwrap_or_default(),
            );
            let device = json!({
                "deviceId": device_id,
                "generationId": hex::encode(rand::random::<[u8; 8]>()),
                "etag": state.etag,
                "status": "enabled",
                "connectionState": "Disconnected",
                "authentication": {"type": "selfSigned", "x509Thumbprint": {"primaryThumbprint": thumbprint, "secondaryThumbprint": null}},
                "capabilities": {"iotEdge": false},
            });
            self.persisted
                .hubs
                .entry(hub)
                .or_default()
                .insert(device_id, device);
        }
        self.persisted
            .registrations
            .insert(id.to_string(), state.clone());
        if let Err(r) = self.save() {
            return r;
        }
        Reply::json(
            200,
            &json!({"operationId": op_id, "status": state.status, "registrationState": state}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_registry_is_addressed_by_path_prefix_or_host_header() {
        let dir = tempfile::tempdir().unwrap();
        let key = Zeroizing::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let behaviour = Behaviour {
            retry_after_secs: 0,
            assigning_polls: 0,
            default_hub: "h.azure-devices.net".into(),
        };
        let mut core = Core::new(
            dir.path().to_path_buf(),
            Persisted::default(),
            key.clone(),
            vec!["127.0.0.1:1".into()],
            behaviour,
        );
        core.persisted
            .hubs
            .entry("h.azure-devices.net".into())
            .or_default()
            .insert("d1".into(), json!({"deviceId": "d1"}));
        let token = sas::token(
            "h.azure-devices.net",
            &key,
            Some(HUB_POLICY),
            sas::now_unix() + 60,
        );
        let get = |core: &mut Core, path: &str, host: &str, auth: &str| {
            let mut headers = hyper::HeaderMap::new();
            headers.insert("host", host.parse().unwrap());
            headers.insert("authorization", auth.parse().unwrap());
            core.handle_service(&Request {
                method: "GET",
                path,
                query: Some("api-version=2021-10-01"),
                headers: &headers,
                body: b"",
                peer_cert: None,
            })
            .status
        };
        assert_eq!(
            get(
                &mut core,
                "/iothubs/h.azure-devices.net/devices/d1",
                "127.0.0.1:1",
                &token
            ),
            200
        );
        assert_eq!(
            get(&mut core, "/devices/d1", "h.azure-devices.net:443", &token),
            200
        );
        assert_eq!(
            get(&mut core, "/devices/nobody", "h.azure-devices.net", &token),
            404
        );
        assert_eq!(
            get(
                &mut core,
                "/devices/d1",
                "h.azure-devices.net",
                "SharedAccessSignature sr=x&sig=y&se=1"
            ),
            401
        );
        // A DPS token is not a hub token.
        let dps_token = sas::token(
            "127.0.0.1:1",
            &key,
            Some(SERVICE_POLICY),
            sas::now_unix() + 60,
        );
        assert_eq!(
            get(
                &mut core,
                "/iothubs/h.azure-devices.net/devices/d1",
                "127.0.0.1:1",
                &dps_token
            ),
            401
        );
    }

    fn service_request(
        core: &mut Core,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&'static str, &str)],
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value, hyper::HeaderMap) {
        let mut h = hyper::HeaderMap::new();
        let token = sas::token(
            "127.0.0.1:1",
            &core.service_key,
            Some(SERVICE_POLICY),
            sas::now_unix() + 60,
        );
        h.insert("authorization", token.parse().unwrap());
        for (k, v) in headers {
            h.insert(*k, v.parse().unwrap());
        }
        let body = serde_json::to_vec(body).unwrap();
        let r = core.handle_service(&Request {
            method,
            path,
            query: Some(query),
            headers: &h,
            body: &body,
            peer_cert: None,
        });
        let mut out = hyper::HeaderMap::new();
        for (k, v) in &r.headers {
            out.insert(*k, v.parse().unwrap());
        }
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or_default(),
            out,
        )
    }

    fn test_core(dir: &std::path::Path) -> Core {
        let behaviour = Behaviour {
            retry_after_secs: 0,
            assigning_polls: 0,
            default_hub: "h.azure-devices.net".into(),
        };
        Core::new(
            dir.to_path_buf(),
            Persisted::default(),
            Zeroizing::new(b"0123456789abcdef0123456789abcdef".to_vec()),
            vec!["127.0.0.1:1".into()],
            behaviour,
        )
    }

    /// What Azure does and Microsoft's SDKs and `az` rely on: a PUT of the enrollment as GET
    /// returned it keeps the certificate; ETags bare in JSON, quoted in headers, `If-Match`
    /// either way; `POST /enrollments/` is bulk; unknown api-versions are refused.
    #[test]
    fn read_modify_write_etags_bulk_and_api_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = test_core(dir.path());
        let v = "api-version=2021-10-01";
        let (der, _) = super::super::certs::make_test_device_cert("rmw-1").unwrap();
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

    #[test]
    fn registration_id_rule() {
        assert!(valid_registration_id("az-c0bdd1a2b3c4v1v6v2"));
        assert!(valid_registration_id("a.b_c:d-1"));
        assert!(!valid_registration_id("a.b_c:d-"));
        assert!(!valid_registration_id("-starts-with-dash"));
        assert!(!valid_registration_id("Az-upper"));
        assert!(!valid_registration_id(""));
        assert!(!valid_registration_id("ends-with."));
        assert!(!valid_registration_id(&"a".repeat(129)));
    }
}
