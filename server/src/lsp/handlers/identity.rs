//! `devkit/generateCert`, `devkit/inspectCert`, `devkit/identity`: params mapped to the
//! `tasks::identity` requests, their reports returned as they are.

use super::blocking;
use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, codes, *};
use crate::lsp::jobs::{run_job, JobSpec};
use crate::lsp::to_proto;
use std::path::Path;
use tasks::identity::generate::{self, GenerateRequest, ImageInput, UdsInput};
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

/// Read a certificate file or inline text: PEM (any label) or DER.
fn read_cert(path: Option<&Path>, pem: Option<&str>, field: &str) -> Result<Vec<u8>, TaskError> {
    let bytes = match (path, pem) {
        (_, Some(text)) => text.as_bytes().to_vec(),
        (Some(p), None) => tasks::fsutil::read_bounded(
            p,
            &format!("{field} {:?}", p.display().to_string()),
            tasks::fsutil::limits::CERT_FILE,
        )
        .map_err(|e| {
            let code = if e.is_not_found() {
                codes::NOT_FOUND
            } else {
                codes::INVALID_PARAMS
            };
            TaskError::new(code, e.to_string()).with("field", field)
        })?,
        (None, None) => {
            return Err(TaskError::invalid(
                field,
                "is required: give `path` or `pem`",
            ))
        }
    };
    if bytes.first() == Some(&0x30) {
        return Ok(bytes); // DER SEQUENCE
    }
    let text = String::from_utf8_lossy(&bytes);
    id::pem::decode(&text, None).map_err(|e| input_error(e, field))
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
    run_job(
        &b.jobs,
        &b.client,
        b.client_progress(),
        spec,
        move |ctx| async move {
            blocking(move || {
                // Nothing is written once the request was cancelled.
                ctx.commit()?;
                Ok(generate::run(plan, &ctx.progress, &ctx.cancel)?)
            })
            .await
        },
    )
    .await
}

pub async fn inspect_cert(
    _b: &Ctx,
    p: InspectCertParams,
    _: Option<ProgressToken>,
) -> Result<InspectCertResult, TaskError> {
    blocking(move || {
        let der = read_cert(
            p.path.as_deref(),
            p.pem.as_deref(),
            if p.pem.is_some() { "pem" } else { "path" },
        )?;
        let info = id::inspect(&der).map_err(|e| input_error(e, "path"))?;
        let against = match &p.against {
            None => None,
            Some(other) => {
                let der2 = read_cert(Some(other), None, "against")?;
                let info2 = id::inspect(&der2).map_err(|e| input_error(e, "against"))?;
                let diff = id::compare(&info, &info2);
                Some(CertComparison {
                    difference: to_proto::difference_name(&diff),
                    explanation: diff.explanation().to_string(),
                    cert: to_proto::cert_info(info2),
                })
            }
        };
        Ok(InspectCertResult {
            cert: to_proto::cert_info(info),
            against,
        })
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
