//! `devkit/generateCert`, `devkit/inspectCert`, `devkit/identity`: params mapped to the
//! `tasks::identity` requests, their reports returned as they are.

use super::blocking;
use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, *};
use crate::lsp::jobs::JobSpec;
use tasks::identity::generate::{self, GenerateRequest, ImageInput, UdsInput};
use tasks::identity::inspection::{self, CertInput};
use tasks::identity::{self as id, IdentityError, IdentityStatusRequest, Uds};
use tower_lsp_server::lsp_types::ProgressToken;

/// An identity error about the caller's input, reported against the param `field` (one input
/// type, a certificate, arrives through several params).
pub fn input_error(e: IdentityError, field: &str) -> TaskError {
    let t = TaskError::from(e);
    match t
        .data
        .get("field")
        .and_then(|f| f.as_str())
        .map(str::to_string)
    {
        Some(from) => t.rename_field(&from, field),
        None => t,
    }
}

/// The `uds` param through `tasks::identity::read_uds` (the one reader, one wording): the
/// published sample is refused unless `allow_sample`; never echoes the value.
pub fn uds_param(
    uds: &crate::lsp::secret::Secret,
    allow_sample: bool,
) -> Result<(Uds, Vec<String>), TaskError> {
    let read = id::read_uds(id::UdsSource::Text(uds.expose()), "UDS", allow_sample)
        .map_err(|e| input_error(e, "uds"))?;
    Ok((read.uds, read.warnings))
}

/// `devkit/generateCert`: the params as a [`GenerateRequest`], run as a job; the result is the
/// task's report.
pub async fn generate_cert(
    b: &Ctx,
    p: GenerateCertParams,
    token: Option<ProgressToken>,
) -> Result<GenerateCertResult, TaskError> {
    let request = GenerateRequest {
        image: ImageInput {
            bin: p.bin,
            map: p.map,
            build_dir: p.build_dir,
        },
        uds: Some(UdsInput::Text(zeroize::Zeroizing::new(
            p.uds.expose().to_string(),
        ))),
        registration_id: p.registration_id,
        mac: p.mac,
        firmware_version: p.firmware_version,
        out_dir: p.out_dir,
        device_cert: p.device_cert,
        alias_key: p.alias_key,
        allow_sample_uds: p.allow_sample_uds,
        project_dir: p.project_dir,
    };
    // Validate everything before the job starts (reads the image: blocking).
    let plan = blocking(move || Ok(request.plan()?)).await?;
    let spec = JobSpec {
        method: ext::GENERATE_CERT,
        title: "Generating certificate".into(),
        resources: vec![],
        work_done_token: token,
        progress: false,
    };
    b.run_job(spec, move |ctx| async move {
        blocking(move || {
            // Nothing is written once the request was cancelled.
            ctx.commit()?;
            Ok(generate::run(plan, &ctx.progress, &ctx.cancel)?)
        })
        .await
    })
    .await
}

/// `devkit/inspectCert`: the task's reader for `path` or `pem` (and `against`), its report.
pub async fn inspect_cert(
    _b: &Ctx,
    p: InspectCertParams,
    _: Option<ProgressToken>,
) -> Result<InspectCertResult, TaskError> {
    blocking(move || {
        let (cert, field) = match (p.pem, p.path) {
            (Some(pem), _) => (CertInput::Pem(pem), "pem"),
            (None, Some(path)) => (CertInput::File(path), "path"),
            (None, None) => {
                return Err(TaskError::invalid(
                    "path",
                    "is required: give `path` or `pem`",
                ))
            }
        };
        let cert = inspection::read_cert(&cert).map_err(|e| input_error(e, field))?;
        let against = match p.against {
            Some(path) => Some(
                inspection::read_cert(&CertInput::File(path))
                    .map_err(|e| input_error(e, "against"))?,
            ),
            None => None,
        };
        Ok(inspection::report(cert, against))
    })
    .await
}

/// `devkit/identity`: the task's identity status as it is.
pub async fn identity(
    _b: &Ctx,
    p: IdentityParams,
    _: Option<ProgressToken>,
) -> Result<IdentityResult, TaskError> {
    blocking(move || {
        Ok(IdentityStatusRequest {
            project_dir: p.project_dir,
            build_dir: p.build_dir,
        }
        .run()?)
    })
    .await
}
