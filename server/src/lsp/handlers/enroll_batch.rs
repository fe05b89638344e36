//! `devkit/enrollBatch` over `tasks::dps::enroll::batch`: params to the request, the run as a
//! job (`$/progress` per chunk, cancellable), the report as the result.

use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, EnrollBatchParams, EnrollBatchResult};
use crate::lsp::jobs::JobSpec;
use tasks::dps::enroll::{run_batch, BatchEnrollRequest, EnrollmentSettings};
use tower_lsp_server::lsp_types::ProgressToken;
use zeroize::Zeroizing;

pub async fn enroll_batch(
    b: &Ctx,
    p: EnrollBatchParams,
    token: Option<ProgressToken>,
) -> Result<EnrollBatchResult, TaskError> {
    let request = BatchEnrollRequest {
        connection_string: p
            .connection_string
            .as_ref()
            .map(|s| Zeroizing::new(s.expose().to_string())),
        ca_file: p.ca_file,
        manifest: p.manifest,
        cert_dir: p.cert_dir,
        report_csv: p.report_csv,
        settings: EnrollmentSettings {
            device_id: p.device_id,
            iot_hub: p.iot_hub,
            disabled: p.disabled,
            enable: p.enable,
        },
        requests_per_minute: p.requests_per_minute,
    };
    // Reading the manifest and the CA file: off the async threads.
    let plan = super::blocking(move || request.plan().map_err(TaskError::from)).await?;
    let spec = JobSpec::with_progress(ext::ENROLL_BATCH, "Enrolling a batch", token);
    b.run_job(spec, move |ctx| async move {
        Ok(run_batch(plan, &ctx.progress, &ctx.cancel).await?)
    })
    .await
}
