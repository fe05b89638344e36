//! `devkit/simConfigMode`, `devkit/simReset`: the virtual DevKit from the editor, over
//! `tasks::sim::control` and `tasks::provision`.

use super::blocking;
use crate::lsp::backend::Backend;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{codes, SimConfigModeParams, SimConfigModeResult, SimResetParams, SimResetResult};
use std::path::Path;
use tasks::sim::control::{self, ControlError};
use tower_lsp_server::lsp_types::ProgressToken;

fn control_error(e: ControlError) -> TaskError {
    match &e {
        ControlError::NotRunning(_) => TaskError::new(codes::NOT_FOUND, e.to_string()),
        _ => TaskError::from_error(codes::DEVICE, &e),
    }
}

/// Reset a running virtual DevKit into configuration mode (what holding A while pressing Reset
/// does on a real one), so console commands (UDS, Wi-Fi) reach it.
pub async fn sim_config_mode(_: &Backend, p: SimConfigModeParams, _: Option<ProgressToken>) -> Result<SimConfigModeResult, TaskError> {
    let sim_dir = match (p.sim_dir, p.port) {
        (Some(dir), _) => dir,
        (None, Some(port)) => control::state_dir_of_port(Path::new(&port))
            .ok_or_else(|| TaskError::invalid("port", format!("{port} is not the link of a virtual DevKit (no eeprom.json beside it)")))?,
        (None, None) => return Err(TaskError::invalid("simDir", "is required (or `port`)")),
    };
    control::reset(&sim_dir, true).await.map_err(control_error)?;
    let status = control::status(&sim_dir).await.map_err(control_error)?;
    Ok(SimConfigModeResult { sim_dir, pty: status.pty, config_mode: status.config_mode })
}

/// Forget the virtual DevKit of a simulated provisioning work dir: the next run is a new device.
pub async fn sim_reset(_: &Backend, p: SimResetParams, _: Option<ProgressToken>) -> Result<SimResetResult, TaskError> {
    let work_dir = p.work_dir;
    let removed = blocking(move || tasks::provision::reset_simulated(&work_dir).map_err(|e| TaskError::from_error(codes::TASK_FAILED, &e))).await?;
    Ok(SimResetResult { removed })
}
