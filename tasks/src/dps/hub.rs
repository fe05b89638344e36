//! IoT Hub registry check: `GET /devices/{deviceId}` (IoT Hub REST, SAS-authenticated), the
//! seed's last step ("the device appears in the hub").

use super::connection_string::ConnectionString;
use super::sas::url_encode;
use super::service::{ClientOptions, RestClient};
use super::DpsError;
use reqwest::Method;
use serde::Deserialize;

pub const HUB_API_VERSION: &str = "2021-04-12";

/// A device as the hub's registry shows it (the fields we use; the rest is kept in `extra`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubDevice {
    pub device_id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Client for one IoT Hub's registry.
pub struct HubClient {
    rest: RestClient,
}

impl HubClient {
    /// The hub named by the connection string's `HostName` (Azure).
    pub fn new(cs: ConnectionString, options: ClientOptions) -> Result<HubClient, DpsError> {
        let base = format!("https://{}", cs.host_name());
        Self::with_base_url(cs, base, options)
    }

    /// A hub served at another address (the emulator serves hub `H` under
    /// `https://<service endpoint>/iothubs/H`); the SAS is still for the hub host name.
    pub fn with_base_url(
        cs: ConnectionString,
        base_url: String,
        options: ClientOptions,
    ) -> Result<HubClient, DpsError> {
        Ok(HubClient {
            rest: RestClient::new(cs, base_url, HUB_API_VERSION, options)?,
        })
    }

    /// The device, or `None` when the hub does not know it.
    pub async fn get_device(&self, device_id: &str) -> Result<Option<HubDevice>, DpsError> {
        match self
            .rest
            .send(
                Method::GET,
                &format!("/devices/{}", url_encode(device_id)),
                &[],
                None,
            )
            .await
        {
            Ok(a) => Ok(Some(self.rest.parse_json(&a.body)?)),
            Err(DpsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
