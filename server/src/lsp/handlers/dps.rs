//! `devkit/enroll`, `devkit/provision` over `tasks::dps` and `tasks::provision`. (Waiting for
//! the DPS tasks to land.)

use crate::lsp::backend::Backend;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, *};
use tower_lsp_server::lsp_types::ProgressToken;

const WHAT: &str = "the DPS tasks";

pub async fn enroll(_b: &Backend, _p: EnrollParams, _: Option<ProgressToken>) -> Result<EnrollResult, TaskError> {
    Err(TaskError::not_available(ext::ENROLL, WHAT))
}

pub async fn provision(_b: &Backend, _p: ProvisionParams, _: Option<ProgressToken>) -> Result<ProvisionResult, TaskError> {
    Err(TaskError::not_available(ext::PROVISION, WHAT))
}
