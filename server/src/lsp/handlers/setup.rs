//! `devkit/checkSetup` over `tasks::doctor`: what this machine lacks to build and flash.

use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{CheckSetupParams, CheckSetupResult};
use tasks::doctor::{self, DoctorOptions};
use tower_lsp_server::lsp_types::ProgressToken;

pub async fn check_setup(
    _: &Ctx,
    p: CheckSetupParams,
    _: Option<ProgressToken>,
) -> Result<CheckSetupResult, TaskError> {
    Ok(doctor::run(&DoctorOptions {
        arduino_cli: p.arduino_cli,
        arduino_data: p.arduino_data,
        ..Default::default()
    })
    .await)
}
