//! `devkit/validateInput`, `devkit/findBuild`, `devkit/registrationId`: the questions an editor's
//! input boxes and pickers ask, answered by the rules the tasks apply (so the extension holds
//! none of them). Each is a thin call into `tasks`: the same parser a request would run later.

use super::blocking;
use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{
    FindBuildParams, FindBuildResult, RegistrationIdParams, RegistrationIdResult,
    ValidateInputParams, ValidateInputResult,
};
use crate::lsp::vocab::Field;
use std::path::Path;
use tasks::build::settings;
use tasks::dps::ConnectionString;
use tasks::error::Input;
use tasks::identity::{self as id, RegistrationId, UdsSource};
use tower_lsp_server::lsp_types::ProgressToken;

/// The inputs `devkit/validateInput` knows, by their param names.
const VALIDATED: &[Input] = &[
    Input::RegistrationId,
    Input::Mac,
    Input::FirmwareVersion,
    Input::Uds,
    Input::ConnectionString,
    Input::HubConnectionString,
    Input::IdScope,
    Input::GlobalEndpoint,
    Input::Port,
];

pub async fn validate_input(
    _: &Ctx,
    p: ValidateInputParams,
    _: Option<ProgressToken>,
) -> Result<ValidateInputResult, TaskError> {
    let input = VALIDATED
        .iter()
        .copied()
        .find(|i| i.field() == p.input)
        .ok_or_else(|| {
            let known: Vec<&str> = VALIDATED.iter().map(|i| i.field()).collect();
            TaskError::invalid(
                "input",
                format!(
                    "is not an input that can be checked alone; allowed: {}",
                    known.join(", ")
                ),
            )
        })?;
    // `port` looks at the file system (a virtual DevKit's state beside its link).
    blocking(move || Ok(validate(input, p.value.expose()))).await
}

/// The verdict on `value` as `input`. Messages come from the tasks' errors, which never hold
/// a secret's characters; `normalized` is never set for a secret.
pub fn validate(input: Input, value: &str) -> ValidateInputResult {
    let refused = |message: String| ValidateInputResult {
        valid: false,
        message: Some(message),
        ..Default::default()
    };
    let accepted = |normalized: Option<String>, warnings: Vec<String>| ValidateInputResult {
        valid: true,
        normalized,
        warnings,
        ..Default::default()
    };
    match input {
        Input::RegistrationId => match RegistrationId::parse(value) {
            Ok(rid) => accepted(Some(rid.as_str().to_string()), vec![]),
            Err(e) => refused(e.to_string()),
        },
        Input::Mac => match id::normalize_mac(value) {
            Ok(mac) => accepted(Some(mac), vec![]),
            Err(e) => refused(e.to_string()),
        },
        Input::FirmwareVersion => match id::validate_firmware_version(value.trim()) {
            Ok(()) => accepted(Some(value.trim().to_string()), vec![]),
            Err(e) => refused(e.to_string()),
        },
        // The sample is accepted here with its warning and flagged: the requests that take a
        // UDS refuse it unless the user insisted (`allowSampleUds`).
        Input::Uds => match id::read_uds(UdsSource::Text(value), "UDS", true) {
            Ok(read) => ValidateInputResult {
                published_sample: read.uds.is_published_sample(),
                ..accepted(None, read.warnings)
            },
            Err(e) => refused(e.to_string()),
        },
        Input::ConnectionString | Input::HubConnectionString => {
            match ConnectionString::parse_file_text(value) {
                Ok(cs) => ValidateInputResult {
                    host_name: Some(cs.host_name().to_string()),
                    local_host: cs.is_local_host(),
                    ..accepted(None, vec![])
                },
                Err(e) => refused(e.to_string()),
            }
        }
        Input::IdScope => match settings::validate_id_scope(value.trim()) {
            Ok(warnings) => accepted(Some(value.trim().to_string()), warnings),
            Err(e) => refused(e.to_string()),
        },
        Input::GlobalEndpoint => {
            let endpoint = value.trim();
            match settings::validate_endpoint(endpoint) {
                Ok(()) => accepted(
                    Some(endpoint.to_string()),
                    settings::endpoint_warning(endpoint).into_iter().collect(),
                ),
                Err(e) => refused(e.to_string()),
            }
        }
        Input::Port if value.trim().is_empty() => refused("the serial port is empty".into()),
        Input::Port => ValidateInputResult {
            sim_dir: tasks::sim::control::state_dir_of_port(Path::new(value.trim())),
            ..accepted(Some(value.trim().to_string()), vec![])
        },
        // Not in VALIDATED.
        _ => refused(format!("{} cannot be checked alone", input.label())),
    }
}

/// The image and map of the project's build (or of `buildDir`), by the one rule for build
/// outputs (`tasks::build::find_image_and_map`).
pub async fn find_build(
    _: &Ctx,
    p: FindBuildParams,
    _: Option<ProgressToken>,
) -> Result<FindBuildResult, TaskError> {
    let build_dir = p
        .build_dir
        .unwrap_or_else(|| tasks::build::default_build_dir(&p.project_dir));
    blocking(move || {
        let (bin, map) = tasks::build::find_image_and_map(&build_dir)?;
        Ok(FindBuildResult {
            build_dir,
            bin,
            map,
        })
    })
    .await
}

/// `RegistrationId::from_inputs`: the ID wins, else `az-<mac>v<x>v<y>v<z>` (MAC normalised).
pub async fn registration_id(
    _: &Ctx,
    p: RegistrationIdParams,
    _: Option<ProgressToken>,
) -> Result<RegistrationIdResult, TaskError> {
    let rid = RegistrationId::from_inputs(
        p.registration_id.as_deref(),
        p.mac.as_deref(),
        p.firmware_version.as_deref(),
    )?;
    Ok(RegistrationIdResult {
        registration_id: rid.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_validated_input_has_a_verdict_of_its_own() {
        for input in VALIDATED {
            let r = validate(*input, "");
            assert!(!r.valid, "{input:?} accepts an empty value");
            assert!(
                r.message
                    .as_deref()
                    .is_some_and(|m| !m.contains("cannot be checked alone")),
                "{input:?}: {:?}",
                r.message
            );
        }
    }

    #[test]
    fn a_mac_is_normalised_and_an_invalid_id_is_refused() {
        let mac = validate(Input::Mac, "C0:BD:D1:A2:B3:C4");
        assert!(mac.valid);
        assert_eq!(mac.normalized.as_deref(), Some("c0bdd1a2b3c4"));
        let id = validate(Input::RegistrationId, "My_DevKit");
        assert!(!id.valid);
        assert!(id.message.is_some_and(|m| m.contains("registration ID")));
    }

    #[test]
    fn secrets_are_judged_but_never_echoed() {
        let uds = "ab".repeat(32);
        let r = validate(Input::Uds, &uds);
        assert!(r.valid && !r.published_sample && r.normalized.is_none());
        let bad = validate(Input::Uds, &format!("{}zz", &uds[..62]));
        assert!(!bad.valid);
        assert!(!bad.message.unwrap().contains(&uds[..62]));
        let sample = validate(Input::Uds, &id::PUBLISHED_SAMPLE_UDS.to_uppercase());
        assert!(sample.valid && sample.published_sample && !sample.warnings.is_empty());
        let key = "c2VjcmV0LWNhbmFyeS1rZXk=";
        let cs = validate(
            Input::ConnectionString,
            &format!("HostName=127.0.0.1:8443;SharedAccessKeyName=p;SharedAccessKey={key}\n"),
        );
        assert!(cs.valid && cs.local_host, "{:?}", cs.message);
        assert_eq!(cs.host_name.as_deref(), Some("127.0.0.1:8443"));
        assert!(cs.normalized.is_none());
        let bad = validate(Input::ConnectionString, &format!("HostName=h;{key}"));
        assert!(!bad.valid && !bad.message.unwrap().contains(key));
    }

    #[test]
    fn dps_settings_give_their_warnings() {
        let scope = validate(Input::IdScope, "0ne123");
        assert!(scope.valid && !scope.warnings.is_empty());
        let endpoint = validate(Input::GlobalEndpoint, "localhost:8443");
        assert!(endpoint.valid && !endpoint.warnings.is_empty());
        assert!(!validate(Input::GlobalEndpoint, "not a host").valid);
    }
}
