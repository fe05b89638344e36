//! `devkit/generateCert`, `devkit/inspectCert`, `devkit/identity` over `tasks::identity` and
//! `tasks::project`.

use super::blocking;
use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, codes, *};
use crate::lsp::jobs::{run_job, JobSpec};
use crate::lsp::to_proto;
use std::path::{Path, PathBuf};
use tasks::identity::{self as id, IdentityError, RegistrationId, Uds};
use tasks::project::ProjectState;
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

/// The `.bin` and `.map` from `bin` + `map`, or the one `*.ino.bin` / `*.ino.map` pair in `buildDir`.
pub fn image_paths(
    bin: Option<PathBuf>,
    map: Option<PathBuf>,
    build_dir: Option<PathBuf>,
) -> Result<(PathBuf, PathBuf), TaskError> {
    match (bin, map, build_dir) {
        (Some(b), Some(m), _) => Ok((b, m)),
        (Some(_), None, None) => Err(TaskError::invalid(
            "map",
            "is required with `bin` (the build's .map file)",
        )),
        (None, Some(_), None) => Err(TaskError::invalid(
            "bin",
            "is required with `map` (the build's .bin file)",
        )),
        (_, _, Some(dir)) => Ok(tasks::build::find_image_and_map(&dir)?),
        (None, None, None) => Err(TaskError::invalid(
            "buildDir",
            "is required: give `bin` and `map`, or `buildDir`",
        )),
    }
}

fn registration_id(p: &GenerateCertParams) -> Result<RegistrationId, TaskError> {
    Ok(RegistrationId::from_inputs(
        p.registration_id.as_deref(),
        p.mac.as_deref(),
        p.firmware_version.as_deref(),
    )?)
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

pub async fn generate_cert(
    b: &Ctx,
    p: GenerateCertParams,
    token: Option<ProgressToken>,
) -> Result<GenerateCertResult, TaskError> {
    // Validate everything before any work.
    let (uds, uds_warnings) = uds_param(&p.uds, p.allow_sample_uds)?;
    let reg_id = registration_id(&p)?;
    let (bin, map) = image_paths(p.bin.clone(), p.map.clone(), p.build_dir.clone())?;
    let out_dir = p
        .out_dir
        .clone()
        .unwrap_or_else(|| id::files::default_out_dir(p.project_dir.as_deref()));
    let mut early_warnings = uds_warnings;
    if p.registration_id.is_some() && (p.mac.is_some() || p.firmware_version.is_some()) {
        early_warnings.push(
            "`registrationId` was given: `mac` and `firmwareVersion` were not used".to_string(),
        );
    }
    let spec = JobSpec {
        method: ext::GENERATE_CERT,
        title: "Generating certificate".into(),
        resources: vec![],
        work_done_token: token,
        progress: false,
    };
    run_job(&b.jobs, &b.client, b.client_progress(), spec, move |ctx| async move {
        blocking(move || {
            let image = id::FirmwareImage::load(&bin, &map)?;
            let identity = id::derive(&uds, &image, &reg_id)?;
            // The same files, backups and warnings as `devkit generate-cert`: a file holding
            // something else is kept as `<name>.<UTC>.bak`, then replaced, and we say so.
            let options = id::files::FileOptions { device_cert: p.device_cert, alias_key: false, per_device_dir: false };
            // Nothing is written once the request was cancelled.
            ctx.commit()?;
            let written = id::files::write_identity(&identity, &out_dir, options)?;
            let alias_abs = written[0].path.clone();
            let device_path = written.iter().find(|w| w.kind == id::files::FileKind::DeviceCert).map(|w| w.path.clone());
            let mut warnings = early_warnings;
            warnings.extend(ctx.warnings());
            warnings.extend(written.iter().filter_map(id::files::WrittenFile::warning));
            if let Some(dir) = &p.project_dir {
                let record = id::files::generated_record(&identity, &alias_abs);
                let state = ProjectState::update(dir, |s| s.last_generated = Some(record.clone()))?;
                if let Some(enrolled) = &state.last_enrolled {
                    if enrolled.registration_id == record.registration_id && enrolled.sha256_thumbprint != record.sha256_thumbprint {
                        warnings.push(format!(
                            "the enrollment of {} holds a different certificate: enroll again (devkit/enroll)",
                            record.registration_id
                        ));
                    }
                }
            }
            warnings.push(id::FIXED_NONCE_WARNING.to_string());
            Ok(GenerateCertResult {
                registration_id: reg_id.as_str().to_string(),
                alias_cert: alias_abs,
                alias_cert_pem: identity.alias_cert_pem(),
                device_cert: device_path,
                device_cert_pem: p.device_cert.then(|| identity.device_cert_pem()),
                sha1_thumbprint: identity.sha1_thumbprint(),
                sha256_thumbprint: identity.sha256_thumbprint(),
                fwid: identity.fwid_hex(),
                warnings,
            })
        })
        .await
    })
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

pub async fn identity(
    _b: &Ctx,
    p: IdentityParams,
    _: Option<ProgressToken>,
) -> Result<IdentityResult, TaskError> {
    blocking(move || {
        let state = ProjectState::load(&p.project_dir)?;
        let current = match &p.build_dir {
            None => None,
            Some(dir) => {
                let (bin, map) = tasks::build::find_image_and_map(dir)?;
                let image = id::FirmwareImage::load(&bin, &map).map_err(|e| input_error(e, "buildDir"))?;
                Some((hex::encode(image.fwid()), hex::encode(image.core_digest())))
            }
        };
        let mut warnings = Vec::new();
        let mut drift = false;
        if let (Some((r, source)), Some((fwid, core))) = (state.reference(), &current) {
            let change = r.image_change(fwid, core);
            if change.any() {
                drift = true;
                let which = match (change.fwid, change.core_digest == Some(true)) {
                    (true, true) => "FWID and RIoT core digest (alias and DeviceID keys)",
                    (false, true) => "RIoT core digest (DeviceID key)",
                    _ => "FWID (alias key)",
                };
                warnings.push(format!(
                    "the build's {which} differ from the {} identity of {}: regenerate the certificate and update the enrollment",
                    if source == tasks::project::IdentitySource::Enrolled { "enrolled" } else { "generated" },
                    r.registration_id
                ));
            }
        }
        let current_fwid = current.map(|(fwid, _)| fwid);
        if state.enrollment_is_stale() {
            drift = true;
            let g = state.last_generated.as_ref().map(|g| g.registration_id.as_str()).unwrap_or_default();
            warnings.push(format!("the last generated certificate of {g} is not the enrolled one: enroll again"));
        }
        Ok(IdentityResult {
            last_generated: state.last_generated.map(to_proto::identity_record),
            last_enrolled: state.last_enrolled.map(to_proto::identity_record),
            current_fwid,
            drift,
            warnings,
        })
    })
    .await
}
