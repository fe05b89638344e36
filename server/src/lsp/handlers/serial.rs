//! `devkit/listPorts`, `devkit/setUds`, `devkit/setWifi`, `devkit/monitor/*` over
//! `tasks::console` and `tasks::monitor`. (Waiting for the serial tasks to land.)

use crate::lsp::backend::Backend;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, *};
use crate::lsp::jobs::Jobs;
use tower_lsp_server::lsp_types::ProgressToken;

/// Open monitors, one per port.
#[derive(Default)]
pub struct SerialState {}

impl SerialState {
    pub async fn close_all(&self, _jobs: &Jobs) {}
}

const WHAT: &str = "the serial tasks";

pub async fn list_ports(_b: &Backend, _p: ListPortsParams, _: Option<ProgressToken>) -> Result<ListPortsResult, TaskError> {
    Err(TaskError::not_available(ext::LIST_PORTS, WHAT))
}

pub async fn set_uds(_b: &Backend, _p: SetUdsParams, _: Option<ProgressToken>) -> Result<SetUdsResult, TaskError> {
    Err(TaskError::not_available(ext::SET_UDS, WHAT))
}

pub async fn set_wifi(_b: &Backend, _p: SetWifiParams, _: Option<ProgressToken>) -> Result<SetWifiResult, TaskError> {
    Err(TaskError::not_available(ext::SET_WIFI, WHAT))
}

pub async fn monitor_open(_b: &Backend, _p: MonitorOpenParams, _: Option<ProgressToken>) -> Result<MonitorOpenResult, TaskError> {
    Err(TaskError::not_available(ext::MONITOR_OPEN, WHAT))
}

pub async fn monitor_close(_b: &Backend, _p: MonitorCloseParams, _: Option<ProgressToken>) -> Result<MonitorCloseResult, TaskError> {
    Err(TaskError::not_available(ext::MONITOR_CLOSE, WHAT))
}

pub async fn monitor_send(_b: &Backend, _p: MonitorSendParams, _: Option<ProgressToken>) -> Result<MonitorSendResult, TaskError> {
    Err(TaskError::not_available(ext::MONITOR_SEND, WHAT))
}
