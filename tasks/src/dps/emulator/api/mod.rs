//! The emulator's request handling, apart from the HTTP/TLS plumbing: pure functions of the
//! state and the request, so they are easy to test. One module per API:
//!
//! - [`enrollments`]: individual enrollments (service API, SAS);
//! - [`enrollment_groups`]: X.509 CA enrollment groups (service API, SAS);
//! - [`registration_states`]: the registration records DPS keeps per device (service API);
//! - [`device_registration`]: the device API (TLS client certificate);
//! - [`hub_registry`]: the registry of the IoT hubs devices are assigned to (SAS).
//!
//! This module holds what they share: requests and replies, api-versions, ETags, the
//! [`Core`] state and the service endpoint's routing.

mod device_registration;
mod enrollment_groups;
mod enrollments;
mod hub_registry;
mod registration_states;

use super::state::Persisted;
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
    /// The certificates the client sent after its own (its chain, for enrollment groups).
    pub peer_chain: &'a [Vec<u8>],
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
    ops: HashMap<String, device_registration::Operation>,
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`, the form certificate validity is compared in.
pub(super) fn now_rfc3339_seconds() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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

/// One page of a query (`x-ms-max-item-count`, default 100; `x-ms-continuation`, the index to
/// start at), `x-ms-continuation` in the answer while more items follow. `page(start, n)`
/// gives up to `n` of the `total` items from `start` on.
fn query_page<T: serde::Serialize>(
    req: &Request,
    total: usize,
    page: impl FnOnce(usize, usize) -> Vec<T>,
) -> Reply {
    let size = req
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
    let items = page(start, size);
    let next = start + items.len();
    let mut reply = Reply::json(200, &items);
    if next < total {
        reply.headers.push(("x-ms-continuation", next.to_string()));
    }
    reply
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

    /// The fields the service sets on every stored enrollment or group: (created, last
    /// updated, a new ETag); `created` is kept from the version it replaces.
    fn stamp(&mut self, previous_created: Option<String>) -> (String, String, String) {
        let now = now_rfc3339();
        let created = previous_created.unwrap_or_else(|| now.clone());
        (created, now, self.next_etag())
    }

    /// A new ETag, bare base64 as DPS puts it in JSON (headers carry it quoted).
    fn next_etag(&mut self) -> String {
        self.persisted.next_etag += 1;
        base64::engine::general_purpose::STANDARD.encode(self.persisted.next_etag.to_be_bytes())
    }

    /// The service endpoint: the IoT Hub registries (`/iothubs/{hub}/devices/{deviceId}`),
    /// then, SAS-authenticated against the DPS key, enrollments (`/enrollments...`) and
    /// registration states (`/registrations/...`).
    pub fn handle_service(&mut self, req: &Request) -> Reply {
        let Some(mut segments) = req.segments() else {
            return Reply::error(400, 400000, "Invalid path encoding");
        };
        // `POST /enrollments/` (what the Node.js SDK sends for bulk) is `POST /enrollments`.
        if segments.len() > 1 && segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        if let Some(reply) = self.hub_registry(&seg, req) {
            return reply;
        }
        let auth = req.header("authorization").unwrap_or_default();
        let hosts: Vec<&str> = self.service_hosts.iter().map(String::as_str).collect();
        if let Err(e) = sas::verify(
            auth,
            &hosts,
            &self.service_key,
            SERVICE_POLICY,
            sas::now_unix(),
        ) {
            return Reply::error(401, 401002, &format!("Unauthorized: {e}"));
        }
        if let Some(reply) = check_api_version(req, SERVICE_API_VERSIONS) {
            return reply;
        }
        if self.throttle_service > 0 {
            self.throttle_service -= 1;
            return throttled(self.behaviour.retry_after_secs);
        }
        // Collection names are case-insensitive (the Node.js SDK sends `/enrollmentgroups/`
        // for the attestation mechanism, `/enrollmentGroups/` elsewhere).
        let collection = seg.first().map(|c| c.to_ascii_lowercase());
        match collection.as_deref() {
            Some("enrollments") => self.enrollments(req.method, &seg[1..], req),
            Some("enrollmentgroups") => self.enrollment_groups(req.method, &seg[1..], req),
            Some("registrations") => self.registration_states(req.method, &seg[1..], req),
            _ => None,
        }
        .unwrap_or_else(|| Reply::error(404, 404000, "Not found"))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn service_request(
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
            peer_chain: &[],
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

    pub(super) fn test_core(dir: &std::path::Path) -> Core {
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
