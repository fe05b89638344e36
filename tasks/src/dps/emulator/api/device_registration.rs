//! The device API: `PUT /{idScope}/registrations/{registrationId}/register`, the operation
//! polls and the registration status lookup, authenticated by the TLS client certificate
//! (dps-api.md §2, §3).

use super::super::chain;
use super::{
    check_api_version, now_rfc3339, now_rfc3339_seconds, registration_id_error, throttled,
    valid_registration_id, Core, Reply, Request, DEVICE_API_VERSIONS,
};
use crate::dps::cert;
use crate::dps::emulator::state::RegistrationState;
use serde_json::json;

/// A registration in progress: the device polls it until the result.
pub(super) struct Operation {
    registration_id: String,
    /// `Some(group ID)` when the device registers through an enrollment group.
    group: Option<String>,
    cert_der: Vec<u8>,
    polls_left: u32,
    started: std::time::Instant,
}

/// What DPS answers a device whose certificate matches no enrollment: HTTP 401 with
/// errorCode 401002, as for a certificate other than the enrolled one, never a 404 that would
/// tell an unauthenticated caller which registration IDs exist (docs/dps.md, "A device
/// without an enrollment"). The C SDK reports it as PROV_DEVICE_RESULT_DEV_AUTH_ERROR; a 404
/// would be PROV_DEVICE_RESULT_TRANSPORT, a network error to the user.
fn no_enrollment_matches() -> Reply {
    Reply::error(401, 401002, "Unauthorized")
}

/// How a device is enrolled.
enum EnrolledBy {
    Individual,
    Group(String),
}

/// What an assigned registration takes from its enrollment or group.
struct Target {
    enabled: bool,
    hubs: Option<Vec<String>>,
    device_id: Option<String>,
    /// The hub registry's `authentication` for the device.
    authentication: serde_json::Value,
}

/// Operations nobody polled for this long are forgotten.
const OPERATION_TTL: std::time::Duration = std::time::Duration::from_secs(600);

impl Core {
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
        if self.enrolled_by(id, req).is_none() {
            return Reply::error(401, 401002, "Invalid certificate");
        }
        match self.persisted.registrations.get(id) {
            Some(r) => Reply::json(200, r),
            None => Reply::error(404, 404202, "Registration not found"),
        }
    }

    /// What enrolls the device presenting `req`'s certificates as `id`: its individual
    /// enrollment (the presented certificate is the enrolled one), else the first enrollment
    /// group its chain leads to (the leaf's CN must be `id`). An individual enrollment wins
    /// over a group, as in DPS.
    fn enrolled_by(&self, id: &str, req: &Request) -> Option<EnrolledBy> {
        let presented = req.peer_cert?;
        let cn = cert::read(presented).and_then(|f| f.subject_cn);
        if cn.as_deref() != Some(id) {
            return None;
        }
        if let Some(e) = self.persisted.enrollments.get(id) {
            return (e.primary_certificate_der().as_deref() == Some(presented))
                .then_some(EnrolledBy::Individual);
        }
        let chain: Vec<&[u8]> = std::iter::once(presented)
            .chain(req.peer_chain.iter().map(Vec::as_slice))
            .collect();
        let now = now_rfc3339_seconds();
        self.persisted
            .enrollment_groups
            .values()
            .find(|g| {
                g.signing_certificates_der().iter().any(|ca| {
                    match chain::leads_to(&chain, ca, &now) {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::debug!(registration_id = id, group = %g.enrollment_group_id, "chain refused: {e}");
                            false
                        }
                    }
                })
            })
            .map(|g| EnrolledBy::Group(g.enrollment_group_id.clone()))
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
        let group = match self.enrolled_by(id, req) {
            Some(EnrolledBy::Individual) => None,
            Some(EnrolledBy::Group(g)) => Some(g),
            None if self.persisted.enrollments.contains_key(id) => {
                tracing::info!(
                    registration_id = id,
                    "refused: the presented certificate is not the enrolled one"
                );
                return Reply::error(401, 401002, "Invalid certificate");
            }
            None => {
                tracing::info!(
                    registration_id = id,
                    "refused: no individual enrollment, and the chain leads to no enrollment group"
                );
                return no_enrollment_matches();
            }
        };
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
                group,
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
        let Some(op) = self.ops.remove(op_id) else {
            return no_enrollment_matches();
        };
        // What the device registers under, looked up again: it may have changed meanwhile.
        let target = match &op.group {
            None => self.persisted.enrollments.get(id).map(|e| Target {
                enabled: e.is_enabled(),
                hubs: e.iot_hubs.clone(),
                device_id: e.device_id.clone(),
                authentication: json!({"type": "selfSigned", "x509Thumbprint": {"primaryThumbprint": crate::identity::sha1_thumbprint(&e.primary_certificate_der().unwrap_or_default()), "secondaryThumbprint": null}}),
            }),
            Some(g) => self.persisted.enrollment_groups.get(g).map(|g| Target {
                enabled: g.is_enabled(),
                hubs: g.iot_hubs.clone(),
                device_id: None,
                authentication: json!({"type": "certificateAuthority", "x509Thumbprint": {"primaryThumbprint": null, "secondaryThumbprint": null}}),
            }),
        };
        let Some(target) = target else {
            return no_enrollment_matches();
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
        if !target.enabled {
            state.error_message = Some(
                if op.group.is_some() {
                    "Enrollment group is disabled"
                } else {
                    "Enrollment is disabled"
                }
                .into(),
            );
        } else {
            let hub = target
                .hubs
                .as_ref()
                .and_then(|h| h.first().cloned())
                .unwrap_or_else(|| self.behaviour.default_hub.clone());
            let device_id = target.device_id.clone().unwrap_or_else(|| id.to_string());
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
            let device = json!({
                "deviceId": device_id,
                "generationId": hex::encode(rand::random::<[u8; 8]>()),
                "etag": state.etag,
                "status": "enabled",
                "connectionState": "Disconnected",
                "authentication": target.authentication,
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
        match &op.group {
            Some(g) => self
                .persisted
                .group_registrations
                .insert(id.to_string(), g.clone()),
            None => self.persisted.group_registrations.remove(id),
        };
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
    use super::super::tests::test_core;
    use super::*;
    use crate::dps::enrollment::IndividualEnrollment;

    fn register(core: &mut Core, id: &str, cert: Option<&[u8]>) -> (u16, serde_json::Value) {
        let headers = hyper::HeaderMap::new();
        let scope = core.persisted.id_scope.clone();
        let body = serde_json::to_vec(&json!({ "registrationId": id })).unwrap_or_default();
        let path = format!("/{scope}/registrations/{id}/register");
        let r = core.handle_device(&Request {
            method: "PUT",
            path: &path,
            query: Some("api-version=2018-09-01-preview"),
            headers: &headers,
            body: &body,
            peer_cert: cert,
            peer_chain: &[],
        });
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or_default(),
        )
    }

    /// Issue 22 item 3: DPS answers a certificate that matches no enrollment as it answers a
    /// wrong certificate (401 / 401002), which the C SDK reports as an authentication error,
    /// not the 404 it would report as a network error.
    #[test]
    fn a_device_without_an_enrollment_is_unauthorized() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = test_core(dir.path());
        core.persisted.id_scope = "0ne00000001".into();
        let (der, _) = crate::dps::emulator::certs::make_test_device_cert("nobody-1").unwrap();
        let (status, body) = register(&mut core, "nobody-1", Some(&der));
        assert_eq!(
            (status, body["errorCode"].as_u64()),
            (401, Some(401002)),
            "{body}"
        );
        // Enrolled with that certificate, the same request is accepted.
        core.persisted.enrollments.insert(
            "nobody-1".into(),
            IndividualEnrollment::x509("nobody-1", &der),
        );
        assert_eq!(register(&mut core, "nobody-1", Some(&der)).0, 202);
    }
}
