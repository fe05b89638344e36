//! The registry of every IoT hub the emulator assigns devices to: `GET
//! /iothubs/{hub}/devices/{deviceId}`, or `GET /devices/{deviceId}` with the hub in the `Host`
//! header (a client that resolves the hub's name to the emulator); SAS with resource `{hub}`,
//! policy [`HUB_POLICY`], the emulator's key.

use super::{Core, Reply, Request, HUB_POLICY};
use crate::dps::sas;

impl Core {
    /// The hub registry's answer, or `None` when `seg` addresses no hub.
    pub(super) fn hub_registry(&self, seg: &[&str], req: &Request) -> Option<Reply> {
        let host_hub = req.header("host").map(|h| {
            h.rsplit_once(':')
                .map_or(h, |(name, _)| name)
                .to_ascii_lowercase()
        });
        let (hub, device_id) = match (seg, host_hub.as_deref()) {
            (["iothubs", hub, "devices", device_id], _) => (hub.to_string(), *device_id),
            (["devices", device_id], Some(h))
                if h.contains('.')
                    && h.parse::<std::net::IpAddr>().is_err()
                    && h != "localhost" =>
            {
                (h.to_string(), *device_id)
            }
            _ => return None,
        };
        let hub = hub.as_str();
        if !self.persisted.hubs.contains_key(hub) && hub != self.behaviour.default_hub {
            return Some(Reply::error(404, 404000, "IotHub not found"));
        }
        let auth = req.header("authorization").unwrap_or_default();
        if sas::verify(auth, &[hub], &self.service_key, HUB_POLICY, sas::now_unix()).is_err() {
            return Some(Reply::error(401, 401002, "Unauthorized"));
        }
        if req.method != "GET" {
            return Some(Reply::error(405, 405000, "Method not allowed"));
        }
        Some(
            match self.persisted.hubs.get(hub).and_then(|h| h.get(device_id)) {
                Some(d) => Reply::json(200, d),
                None => Reply::error(404, 404001, &format!("Device {device_id} not found")),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Behaviour, SERVICE_POLICY};
    use super::*;
    use crate::dps::emulator::state::Persisted;
    use serde_json::json;
    use zeroize::Zeroizing;

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
                peer_chain: &[],
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
}
