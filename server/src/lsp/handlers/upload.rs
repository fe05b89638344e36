//! `devkit/build`, `devkit/upload`, `devkit/deviceUpload` over `tasks::build`, `tasks::flash`
//! and `tasks::upload`. (Waiting for the upload tasks to land.)

use crate::lsp::backend::Backend;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, *};
use tower_lsp_server::lsp_types::ProgressToken;

const WHAT: &str = "the build and upload tasks";

pub async fn build(_b: &Backend, _p: BuildParams, _: Option<ProgressToken>) -> Result<BuildResult, TaskError> {
    Err(TaskError::not_available(ext::BUILD, WHAT))
}

pub async fn upload(_b: &Backend, _p: UploadParams, _: Option<ProgressToken>) -> Result<UploadResult, TaskError> {
    Err(TaskError::not_available(ext::UPLOAD, WHAT))
}

pub async fn device_upload(_b: &Backend, _p: DeviceUploadParams, _: Option<ProgressToken>) -> Result<DeviceUploadResult, TaskError> {
    Err(TaskError::not_available(ext::DEVICE_UPLOAD, WHAT))
}
