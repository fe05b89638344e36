//! `devkit/listPorts`, `devkit/setUds`, `devkit/setWifi`, `devkit/monitor/*` over
//! `tasks::monitor` (the port registry: one owner per port, pause/resume) and
//! `tasks::console`.
//!
//! An open monitor is not a job: it owns its port until closed, and console commands and
//! uploads borrow the port from it ([`PortRegistry::exclusive`]) and give it back, so the
//! monitor pauses and resumes around them by itself. A port held by a *job* (a UDS push in
//! progress) is busy for other jobs and for monitor/open and monitor/send.

use super::{blocking, State};
use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, codes, *};
use crate::lsp::jobs::{JobCtx, JobSpec, Jobs, Resource};
use crate::lsp::secret::ReturnedSecret;
use crate::lsp::serial_data;
use crate::lsp::to_proto;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tasks::console::configure::{SetUdsRequest, SetWifiRequest};
use tasks::console::{ConsoleError, DEFAULT_BAUD};
use tasks::dps::mismatch::{ExplainPlan, ExplainRequest, MismatchExplanation, RejectionWatch};
use tasks::logs::{EventParser, LogEvent};
use tasks::monitor::{
    ExclusivePort, MonitorError, MonitorEvent, MonitorOptions, PortRegistry, PortStatus,
};
use tasks::progress::{CancellationToken, Progress};
use tokio::sync::broadcast::error::RecvError;
use tower_lsp_server::lsp_types::ProgressToken;
use tower_lsp_server::Client;

/// How long a virtual DevKit may take to say which port it runs on.
const SIM_STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a 401002 verdict waits for DPS's enrollment before it is sent unexplained.
const EXPLAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// How long one request to DPS may take within [`EXPLAIN_TIMEOUT`].
const EXPLAIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Per monitored port, the DPS service a 401002 is explained against (`devkit/monitor/open`
/// with `connectionString`).
type Explainers = Arc<Mutex<HashMap<String, Arc<ExplainPlan>>>>;

/// The monitors the daemon runs, and the tasks forwarding their output to the client.
#[derive(Default)]
pub struct SerialState {
    pub registry: Arc<PortRegistry>,
    /// State directories of the virtual DevKits this daemon controlled or flashed: listed by
    /// `devkit/listPorts` while they run (most recent [`MAX_KNOWN_SIMS`]).
    virtual_devkits: Mutex<Vec<PathBuf>>,
    /// Per open monitor: the task forwarding its output, and its baud rate.
    forwarders: Mutex<HashMap<String, (tokio::task::JoinHandle<()>, u32)>>,
    /// Per open monitor given a DPS connection: what its 401002 verdicts are explained with.
    explainers: Explainers,
    /// The virtual DevKits `devkit/simStart` runs, by state directory (they stop with the daemon).
    owned_sims: Mutex<HashMap<PathBuf, tasks::sim::VirtualDevKit>>,
}

/// How many virtual DevKits the daemon remembers.
const MAX_KNOWN_SIMS: usize = 16;

impl SerialState {
    /// Remember a virtual DevKit's state directory (see `virtual_devkits`).
    pub fn remember_virtual_devkit(&self, state_dir: &Path) {
        let dir = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
        if let Ok(mut known) = self.virtual_devkits.lock() {
            known.retain(|d| d != &dir);
            known.push(dir);
            let excess = known.len().saturating_sub(MAX_KNOWN_SIMS);
            known.drain(..excess);
        }
    }

    /// Keep a virtual DevKit the daemon started running (replacing one it ran there before).
    pub fn own_virtual_devkit(&self, state_dir: &Path, sim: tasks::sim::VirtualDevKit) {
        if let Ok(mut owned) = self.owned_sims.lock() {
            owned.insert(state_dir.to_path_buf(), sim);
        }
    }

    /// The virtual DevKit the daemon runs in `state_dir`, handed over to be stopped.
    pub fn disown_virtual_devkit(&self, state_dir: &Path) -> Option<tasks::sim::VirtualDevKit> {
        self.owned_sims.lock().ok()?.remove(state_dir)
    }

    /// Every virtual DevKit the daemon runs (on shutdown: they stop with it).
    pub fn disown_all_virtual_devkits(&self) -> Vec<tasks::sim::VirtualDevKit> {
        self.owned_sims
            .lock()
            .map(|mut m| m.drain().map(|(_, sim)| sim).collect())
            .unwrap_or_default()
    }

    fn known_virtual_devkits(&self) -> Vec<PathBuf> {
        self.virtual_devkits
            .lock()
            .map(|k| k.clone())
            .unwrap_or_default()
    }

    /// Close every monitor (on `shutdown`).
    pub async fn close_all(&self, jobs: &Jobs) {
        for port in self.registry.open_ports() {
            let name = port.display().to_string();
            self.close(&name, jobs).await;
        }
    }

    async fn close(&self, port: &str, jobs: &Jobs) -> bool {
        let registry = self.registry.clone();
        let path = PathBuf::from(port);
        let closed = tokio::task::spawn_blocking(move || registry.close(&path))
            .await
            .unwrap_or(false);
        let forwarder = self.forwarders.lock().ok().and_then(|mut f| f.remove(port));
        if let Some((mut f, _)) = forwarder {
            // It ends by itself once the monitor's channel closes (flushing what it holds).
            if tokio::time::timeout(Duration::from_millis(200), &mut f)
                .await
                .is_err()
            {
                f.abort();
            }
        }
        if let Ok(mut e) = self.explainers.lock() {
            e.remove(port);
        }
        jobs.set_monitor(port, None);
        closed
    }
}

/// A monitor error as the client sees it: everything from its [`DomainError`] kind, except
/// that "no monitor on that port" has its own code.
fn monitor_error(e: MonitorError) -> TaskError {
    match &e {
        MonitorError::Closed(_) => TaskError::from_error(codes::NOT_OPEN, &e).with("field", "port"),
        _ => TaskError::from_domain(&e),
    }
}

/// Run a console task on `port` as a job holding it: the monitor (if open) lends the port and
/// resumes after; `run` is the task's blocking run over the borrowed port, with the job's
/// progress and cancellation.
async fn console_job<R: Send + 'static>(
    b: &Ctx,
    method: &'static str,
    title: &str,
    port: String,
    baud: u32,
    token: Option<ProgressToken>,
    run: impl FnOnce(&mut ExclusivePort, &Progress, &CancellationToken) -> Result<R, ConsoleError>
        + Send
        + 'static,
) -> Result<R, TaskError> {
    let registry = b.state.serial.registry.clone();
    let spec = JobSpec {
        method,
        title: title.to_string(),
        resources: vec![Resource::Port(port.clone())],
        work_done_token: token,
        progress: true,
    };
    b.run_job(spec, move |ctx: JobCtx| async move {
        let r = registry
            .exclusive(Path::new(&port), baud, move |ex| {
                run(ex, &ctx.progress, &ctx.cancel)
            })
            .await;
        match r {
            Ok(inner) => inner.map_err(|e| TaskError::from_domain(&e)),
            Err(e) => Err(monitor_error(e)),
        }
    })
    .await
}

pub async fn list_ports(
    b: &Ctx,
    p: ListPortsParams,
    _: Option<ProgressToken>,
) -> Result<ListPortsResult, TaskError> {
    if p.sim_dirs.len() > MAX_SIM_DIRS {
        return Err(TaskError::invalid(
            "simDirs",
            format!("at most {MAX_SIM_DIRS} state directories"),
        ));
    }
    let mut ports: Vec<(tasks::monitor::ports::PortInfo, Option<PathBuf>)> = blocking(|| {
        tasks::monitor::ports::list_ports()
            .map_err(|e| TaskError::failed(format!("cannot list serial ports: {e}")))
    })
    .await?
    .into_iter()
    .map(|port| (port, None))
    .collect();
    // Running virtual DevKits: the ones the client names, then the ones this daemon used.
    let mut sim_dirs: Vec<PathBuf> = p
        .sim_dirs
        .iter()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
        .collect();
    for d in b.state.serial.known_virtual_devkits() {
        if !sim_dirs.contains(&d) {
            sim_dirs.push(d);
        }
    }
    for dir in sim_dirs {
        let listed =
            tokio::time::timeout(SIM_STATUS_TIMEOUT, tasks::sim::control::port_info(&dir)).await;
        if let Ok(Some(info)) = listed {
            if !ports.iter().any(|(p, _)| p.port == info.port) {
                ports.push((info, Some(dir)));
            }
        }
    }
    ports.sort_by(|a, b| tasks::monitor::ports::port_order(&a.0, &b.0));
    let open: Vec<String> = b
        .state
        .serial
        .registry
        .open_ports()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let ports = ports
        .into_iter()
        .filter(|(port, _)| port.is_devkit || !p.devkits_only)
        .map(|(port, sim_dir)| {
            let held_by = b
                .jobs
                .holder(&Resource::Port(port.port.clone()))
                .map(str::to_string);
            let monitor_open = open.contains(&port.port);
            to_proto::port_info(port, held_by, monitor_open, sim_dir)
        })
        .collect();
    Ok(ListPortsResult { ports })
}

pub async fn set_uds(
    b: &Ctx,
    p: SetUdsParams,
    token: Option<ProgressToken>,
) -> Result<SetUdsResult, TaskError> {
    let uds = match &p.uds {
        Some(text) => Some(super::identity::uds_param(text, p.allow_sample_uds)?.0),
        None => None,
    };
    let plan = SetUdsRequest {
        port: p.port.clone(),
        uds,
        generate: p.generate,
        save_uds_to: p.save_uds_to,
        return_uds: p.return_uds,
        baud: p.baud_rate,
        timeout: p.timeout_secs.map(Duration::from_secs),
    }
    .plan()?;
    let baud = plan.baud;
    let outcome = console_job(
        b,
        ext::SET_UDS,
        "Setting the UDS",
        p.port,
        baud,
        token,
        move |port, progress, cancel| plan.run(port, progress, cancel),
    )
    .await?;
    Ok(SetUdsResult {
        report: outcome.report,
        uds: outcome
            .uds
            .map(|u| ReturnedSecret::new(u.to_hex().to_string())),
    })
}

pub async fn set_wifi(
    b: &Ctx,
    p: SetWifiParams,
    token: Option<ProgressToken>,
) -> Result<SetWifiResult, TaskError> {
    let plan = SetWifiRequest {
        port: p.port.clone(),
        wifi_ssid: p.wifi_ssid,
        wifi_password: p
            .wifi_password
            .map(|s| zeroize::Zeroizing::new(s.expose().to_string())),
        baud: p.baud_rate,
        timeout: p.timeout_secs.map(Duration::from_secs),
    }
    .plan()?;
    let baud = plan.baud;
    console_job(
        b,
        ext::SET_WIFI,
        "Setting Wi-Fi",
        p.port,
        baud,
        token,
        move |port, progress, cancel| plan.run(port, progress, cancel),
    )
    .await
}

pub async fn monitor_open(
    b: &Ctx,
    p: MonitorOpenParams,
    _: Option<ProgressToken>,
) -> Result<MonitorOpenResult, TaskError> {
    let baud = p.baud_rate.unwrap_or(DEFAULT_BAUD);
    if baud == 0 {
        return Err(TaskError::invalid(
            "baudRate",
            "must be a positive number (the DevKit uses 115200)",
        ));
    }
    if let Some(holder) = b.jobs.holder(&Resource::Port(p.port.clone())) {
        return Err(TaskError::new(
            codes::BUSY,
            format!("port:{} is busy: {holder} is using it", p.port),
        )
        .with("resource", format!("port:{}", p.port))
        .with("heldBy", holder));
    }
    // The DPS connection a 401002 is explained with: checked before the port is opened.
    let explainer = match p.connection_string {
        Some(cs) => {
            let project_dir = p.project_dir.ok_or_else(|| {
                TaskError::invalid("projectDir", "is required with `connectionString`")
            })?;
            let request = ExplainRequest {
                connection_string: zeroize::Zeroizing::new(cs.expose().to_string()),
                ca_file: p.ca_file,
                project_dir,
                cancel: tasks::progress::CancellationToken::new(),
                timeout: EXPLAIN_REQUEST_TIMEOUT,
            };
            Some(Arc::new(
                blocking(move || request.plan().map_err(TaskError::from)).await?,
            ))
        }
        None => None,
    };
    let opened = open_monitor(
        b.client.clone(),
        b.jobs.clone(),
        b.state.clone(),
        p.port.clone(),
        baud,
    )
    .await?;
    if let Ok(mut e) = b.state.serial.explainers.lock() {
        match explainer {
            Some(x) => e.insert(p.port.clone(), x),
            None => e.remove(&p.port),
        };
    }
    Ok(MonitorOpenResult {
        port: p.port,
        baud_rate: baud,
        opened,
    })
}

/// Open the daemon's monitor on `port` (no-op when open) and forward its data to the client.
/// Takes owned handles so that a job can reopen a monitor from its own task (after a
/// Returns whether it opened.
pub(crate) async fn open_monitor(
    client: Client,
    jobs: Jobs,
    state: Arc<State>,
    port: String,
    baud: u32,
) -> Result<bool, TaskError> {
    let serial = &state.serial;
    if serial.registry.get(Path::new(&port)).is_some() {
        return Ok(false);
    }
    let registry = serial.registry.clone();
    let path = PathBuf::from(&port);
    // Registration events come from the raw data (EventParser), so no Line events are needed.
    let opts = MonitorOptions {
        baud,
        line_events: false,
        ..MonitorOptions::default()
    };
    // Subscribed from the first byte: a virtual DevKit boots as soon as the port is opened.
    let (_monitor, rx) =
        blocking(move || registry.open_subscribed(&path, opts).map_err(monitor_error)).await?;
    let forwarder = tokio::spawn(forward(
        client,
        jobs.clone(),
        port.clone(),
        rx,
        serial.explainers.clone(),
    ));
    if let Ok(mut f) = serial.forwarders.lock() {
        if let Some((old, _)) = f.insert(port.clone(), (forwarder, baud)) {
            old.abort();
        }
    }
    jobs.set_monitor(&port, Some(false));
    Ok(true)
}

pub async fn monitor_close(
    b: &Ctx,
    p: MonitorCloseParams,
    _: Option<ProgressToken>,
) -> Result<MonitorCloseResult, TaskError> {
    let closed = b.state.serial.close(&p.port, &b.jobs).await;
    Ok(MonitorCloseResult {
        port: p.port,
        closed,
    })
}

pub async fn monitor_send(
    b: &Ctx,
    p: MonitorSendParams,
    _: Option<ProgressToken>,
) -> Result<MonitorSendResult, TaskError> {
    let ending: &[u8] = match p.line_ending.as_deref().unwrap_or("cr") {
        "none" => b"",
        "cr" => b"\r",
        "lf" => b"\n",
        "crlf" => b"\r\n",
        _ => {
            return Err(TaskError::invalid(
                "lineEnding",
                "must be one of `none`, `cr`, `lf`, `crlf`",
            ))
        }
    };
    if let Some(holder) = b.jobs.holder(&Resource::Port(p.port.clone())) {
        return Err(TaskError::new(
            codes::BUSY,
            format!("port:{} is busy: {holder} is using it", p.port),
        )
        .with("resource", format!("port:{}", p.port))
        .with("heldBy", holder));
    }
    let Some(monitor) = b.state.serial.registry.get(Path::new(&p.port)) else {
        return Err(TaskError::new(
            codes::NOT_OPEN,
            format!(
                "no monitor is open on {}: call devkit/monitor/open first",
                p.port
            ),
        )
        .with("field", "port"));
    };
    let mut data = p.text.into_bytes();
    data.extend_from_slice(ending);
    let bytes = data.len();
    // `$/cancelRequest` drops this request: the guard then stops the monitor's writing too.
    let cancel = CancellationToken::new();
    let _stop_on_drop = cancel.clone().drop_guard();
    blocking(move || {
        monitor
            .send_cancellable(&data, &cancel)
            .map_err(monitor_error)
    })
    .await?;
    Ok(MonitorSendResult { bytes })
}

/// Registration events in order, a 401002 verdict explained first when the monitor knows a
/// DPS connection (the events after it wait: the last event of an attempt stays its verdict).
async fn send_events(
    client: Client,
    port: String,
    mut events: tokio::sync::mpsc::Receiver<LogEvent>,
    explainers: Explainers,
) {
    let mut watch = RejectionWatch::new();
    while let Some(event) = events.recv().await {
        let mut params = to_proto::registration_event(&port, &event);
        if let Some(registration_id) = watch.push(&event) {
            let plan = explainers.lock().ok().and_then(|m| m.get(&port).cloned());
            if let Some(plan) = plan {
                params.explanation = explain(&plan, registration_id.as_deref(), &port).await;
            }
        }
        client
            .send_notification::<ext::RegistrationEvent>(params)
            .await;
    }
}

/// The explanation of a 401002, or `None` (logged) when DPS could not be asked in time.
async fn explain(
    plan: &ExplainPlan,
    registration_id: Option<&str>,
    port: &str,
) -> Option<MismatchExplanation> {
    match tokio::time::timeout(EXPLAIN_TIMEOUT, plan.explain(registration_id)).await {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            tracing::warn!(port, "cannot explain the rejected certificate: {e}");
            None
        }
        Err(_) => {
            tracing::warn!(
                port,
                "cannot explain the rejected certificate: DPS did not answer in time"
            );
            None
        }
    }
}

/// A monitor's events -> `devkit/serialData` (batched), `devkit/registrationEvent`, and the
/// paused state in `devkit/status`.
async fn forward(
    client: Client,
    jobs: Jobs,
    port: String,
    mut rx: tokio::sync::broadcast::Receiver<MonitorEvent>,
    explainers: Explainers,
) {
    let (event_tx, event_rx) = tokio::sync::mpsc::channel::<LogEvent>(1024);
    let event_sender = tokio::spawn(send_events(
        client.clone(),
        port.clone(),
        event_rx,
        explainers,
    ));
    let (tx, data_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1024);
    let batcher = {
        let client = client.clone();
        let port = port.clone();
        tokio::spawn(serial_data::batch(
            data_rx,
            serial_data::INTERVAL,
            move |text| {
                let client = client.clone();
                let port = port.clone();
                async move {
                    client
                        .send_notification::<ext::SerialData>(SerialDataParams { port, text })
                        .await
                }
            },
        ))
    };
    let mut parser = EventParser::new();
    loop {
        match rx.recv().await {
            Ok(MonitorEvent::Data(bytes)) => {
                for event in parser.push_bytes(&bytes) {
                    if event_tx.try_send(event).is_err() {
                        tracing::warn!(port, "registration events dropped: the client lags");
                    }
                }
                if tx.send(bytes.to_vec()).await.is_err() {
                    break;
                }
            }
            Ok(MonitorEvent::Line(_)) => {}
            // The daemon's monitors have no log file (devkit/monitor/open takes none).
            Ok(MonitorEvent::LogFileFailed(failed)) => tracing::warn!(port, "{failed}"),
            Ok(MonitorEvent::Status(status)) => match status {
                PortStatus::Paused => jobs.set_monitor(&port, Some(true)),
                PortStatus::Resumed | PortStatus::Reconnected { .. } => {
                    jobs.set_monitor(&port, Some(false))
                }
                PortStatus::Disconnected { reason } => {
                    tracing::info!(port, "port disconnected: {reason}")
                }
                PortStatus::Closed => break,
            },
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(port, "monitor forwarder lagged by {n} events")
            }
            Err(RecvError::Closed) => break,
        }
    }
    drop(tx);
    drop(event_tx);
    let _ = batcher.await;
    let _ = event_sender.await;
}
