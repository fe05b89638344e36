//! How an enrollment reaches DPS: the REST API with the service connection string, or the
//! Azure CLI (`az iot dps enrollment`), and which DPS.

use crate::dps::az::AzTarget;
use crate::dps::ConnectionString;
use crate::error::{Input, InvalidInput};
use serde::{Deserialize, Serialize};

/// The backend asked for: `rest` (default) or `az`, the same word for the CLI's `--backend`
/// and the daemon's `backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnrollBackend {
    /// The DPS REST API, authenticated by the service connection string's SAS.
    #[default]
    Rest,
    /// `az iot dps enrollment create|update` (Azure CLI with its IoT extension).
    Az,
}

/// How an enrollment reaches DPS.
pub enum EnrollVia {
    /// The DPS REST API with the service connection string's SAS.
    Rest(ConnectionString),
    /// `az iot dps enrollment` (Azure CLI).
    Az(AzTarget),
}

/// The one rule choosing how to enroll: with the az backend, a named DPS (the user's
/// `az login`) or else the connection string handed to az; with REST, the connection string.
/// A resource group names where the named DPS is, so it needs the DPS name.
pub fn select_target(
    backend: EnrollBackend,
    dps_name: Option<String>,
    resource_group: Option<String>,
    cs: Option<ConnectionString>,
) -> Result<EnrollVia, InvalidInput> {
    if resource_group.is_some() && dps_name.is_none() {
        return Err(InvalidInput::new(
            Input::DpsName,
            "is required with a resource group (the group of that DPS)",
        ));
    }
    match (backend, dps_name, cs) {
        (EnrollBackend::Az, Some(dps_name), _) => Ok(EnrollVia::Az(AzTarget::Named {
            dps_name,
            resource_group,
        })),
        (EnrollBackend::Az, None, Some(cs)) => Ok(EnrollVia::Az(AzTarget::Login(cs))),
        (EnrollBackend::Az, None, None) => Err(InvalidInput::new(
            Input::DpsName,
            "is required with the az backend (it uses your az login), or give a connection string",
        )),
        (EnrollBackend::Rest, _, Some(cs)) => Ok(EnrollVia::Rest(cs)),
        (EnrollBackend::Rest, _, None) => Err(InvalidInput::new(
            Input::ConnectionString,
            "is required: the DPS service connection string (or use the az backend)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs() -> ConnectionString {
        ConnectionString::parse(
            "HostName=mydps.azure-devices-provisioning.net;SharedAccessKeyName=p;SharedAccessKey=Y2FuYXJ5LWtleQ==",
        )
        .unwrap()
    }

    #[test]
    fn the_backend_decides_what_is_required() {
        let name = || Some("mydps".to_string());
        assert!(matches!(
            select_target(EnrollBackend::Rest, None, None, Some(cs())),
            Ok(EnrollVia::Rest(_))
        ));
        assert!(matches!(
            select_target(EnrollBackend::Az, name(), Some("rg".into()), None),
            Ok(EnrollVia::Az(AzTarget::Named {
                resource_group: Some(_),
                ..
            }))
        ));
        assert!(matches!(
            select_target(EnrollBackend::Az, None, None, Some(cs())),
            Ok(EnrollVia::Az(AzTarget::Login(_)))
        ));
        let missing = |b| select_target(b, None, None, None).err().unwrap().input;
        assert_eq!(missing(EnrollBackend::Rest), Input::ConnectionString);
        assert_eq!(missing(EnrollBackend::Az), Input::DpsName);
        let group_alone = select_target(EnrollBackend::Az, None, Some("rg".into()), Some(cs()));
        assert_eq!(group_alone.err().unwrap().input, Input::DpsName);
        assert_eq!(
            serde_json::to_value(EnrollBackend::Az).unwrap(),
            serde_json::json!("az")
        );
    }
}
