//! `devkit/simConfigMode`, `devkit/simReset`: the virtual DevKit from the editor, over
//! `tasks::sim::control` and `tasks::provision`.

use super::blocking;
use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{SimConfigModeParams, SimConfigModeResult, SimResetParams, SimResetResult};
use std::path::Path;
use tasks::error::{Input, InvalidInput};
use tasks::sim::control;
use tower_lsp_server::lsp_types::ProgressToken;

/// Reset a running virtual DevKit into configuration mode (what holding A while pressing Reset
/// does on a real one), so console commands (UDS, Wi-Fi) reach it.
pub async fn sim_config_mode(
    b: &Ctx,
    p: SimConfigModeParams,
    _: Option<ProgressToken>,
) -> Result<SimConfigModeResult, TaskError> {
    let sim_dir = match (p.sim_dir, p.port) {
        (Some(dir), _) => dir,
        (None, Some(port)) => control::state_dir_of_port(Path::new(&port)).ok_or_else(|| {
            InvalidInput::new(
                Input::Port,
                format!("{port} is not the link of a virtual DevKit (no eeprom.json beside it)"),
            )
        })?,
        (None, None) => {
            return Err(InvalidInput::new(Input::SimDir, "is required (or `port`)").into())
        }
    };
    control::reset(&sim_dir, true).await?;
    b.state.serial.remember_virtual_devkit(&sim_dir);
    let status = control::status(&sim_dir).await?;
    Ok(SimConfigModeResult {
        sim_dir,
        port: status.pty,
        config_mode: status.config_mode,
    })
}

/// Forget the virtual DevKit of a simulated provisioning work dir: the next run is a new device.
pub async fn sim_reset(
    _: &Ctx,
    p: SimResetParams,
    _: Option<ProgressToken>,
) -> Result<SimResetResult, TaskError> {
    let work_dir = p.work_dir;
    let removed = blocking(move || Ok(tasks::provision::reset_simulated(&work_dir)?)).await?;
    Ok(SimResetResult { removed })
}
