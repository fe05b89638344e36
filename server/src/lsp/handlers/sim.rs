//! `devkit/simConfigMode`, `devkit/simReset`, `devkit/simStart`, `devkit/simStop`: the virtual
//! DevKit from the editor, over `tasks::sim` and `tasks::provision`.

use super::blocking;
use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{
    SimConfigModeParams, SimConfigModeResult, SimResetParams, SimResetResult, SimStartParams,
    SimStartResult, SimStopParams, SimStopResult,
};
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

/// The link a virtual DevKit the daemon starts speaks through (fixed: a restarted one keeps it).
pub fn sim_link(sim_dir: &Path) -> std::path::PathBuf {
    sim_dir.join("devkit.tty")
}

/// Start a virtual DevKit the daemon owns (stopped by `devkit/simStop` or when the daemon
/// exits), or report the one already running in `simDir`.
pub async fn sim_start(
    b: &Ctx,
    p: SimStartParams,
    _: Option<ProgressToken>,
) -> Result<SimStartResult, TaskError> {
    let sim_dir = std::path::absolute(&p.sim_dir).unwrap_or(p.sim_dir);
    if control::is_running(&sim_dir) {
        if let Some(info) = control::port_info(&sim_dir).await {
            b.state.serial.remember_virtual_devkit(&sim_dir);
            return Ok(SimStartResult {
                sim_dir,
                port: info.port,
                started: false,
            });
        }
    }
    let mut opts = tasks::sim::SimOptions::new(&sim_dir);
    opts.mac = p.mac;
    opts.config_mode = p.config_mode;
    // A pty has a stable name at the link (Unix); elsewhere the virtual DevKit is a loopback TCP
    // port, which has no link.
    if opts.transport == tasks::sim::SimTransport::Pty {
        opts.link = Some(sim_link(&sim_dir));
    }
    let sim = blocking(move || Ok(tasks::sim::VirtualDevKit::start(opts)?)).await?;
    let port = sim.port_path().display().to_string();
    b.state.serial.remember_virtual_devkit(&sim_dir);
    b.state.serial.own_virtual_devkit(&sim_dir, sim);
    Ok(SimStartResult {
        sim_dir,
        port,
        started: true,
    })
}

/// Stop a virtual DevKit `devkit/simStart` started (its state stays: the next start is the
/// same device).
pub async fn sim_stop(
    b: &Ctx,
    p: SimStopParams,
    _: Option<ProgressToken>,
) -> Result<SimStopResult, TaskError> {
    let sim_dir = std::path::absolute(&p.sim_dir).unwrap_or(p.sim_dir);
    let sim = b.state.serial.disown_virtual_devkit(&sim_dir);
    let stopped = sim.is_some();
    // Dropping it joins its threads: off the async workers.
    blocking(move || {
        drop(sim);
        Ok(())
    })
    .await?;
    Ok(SimStopResult { stopped })
}
