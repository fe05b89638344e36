//! Running tasks: who owns which port or probe, cancellation, work-done progress, panics.
//!
//! Every long request runs as a job on its own tokio task:
//! - it first claims its resources (ports, probes); a resource held by another job fails the
//!   request at once with `busy`, naming the resource and the method holding it (we fail fast
//!   rather than queue: the editor shows why and the user decides);
//! - it gets a [`CancellationToken`] that is cancelled on `$/cancelRequest` (the transport
//!   then waits for the job to stop before answering), when the request future is dropped, or
//!   when the client cancels the job's work-done progress (`window/workDoneProgress/cancel`);
//! - work that must not happen after a cancellation (writing files) passes a commit point
//!   ([`JobCtx::commit`]): before it a cancellation wins, after it the job's result stands;
//! - its `tasks::progress` events become `$/progress` reports on a token the server creates
//!   with `window/workDoneProgress/create` (or the `workDoneToken` the client sent);
//! - a panic inside it becomes an `internal` error for that request only;
//! - its resources are released when the task has really stopped, not when the client gave up.

use super::error::TaskError;
use super::ext::{self, codes, MonitorStatus, RunningTask, StatusParams};
use futures::FutureExt;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tasks::progress::{CancellationToken, Progress, ProgressEvent};
use tower_lsp_server::lsp_types::{
    notification::Progress as ProgressNotification, request::WorkDoneProgressCreate,
    NumberOrString, ProgressParams, ProgressParamsValue, ProgressToken, WorkDoneProgress,
    WorkDoneProgressBegin, WorkDoneProgressCreateParams, WorkDoneProgressEnd,
    WorkDoneProgressReport,
};
use tower_lsp_server::Client;

/// Something only one job may use at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Port(String),
    Probe(String),
    /// A build directory (two builds into one directory would clobber each other).
    BuildDir(std::path::PathBuf),
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Port(p) => write!(f, "port:{p}"),
            Resource::Probe(p) => write!(f, "probe:{p}"),
            Resource::BuildDir(p) => write!(f, "buildDir:{}", p.display()),
        }
    }
}

struct JobInfo {
    method: &'static str,
    resources: Vec<Resource>,
    cancel: CancellationToken,
    progress_token: Option<ProgressToken>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    jobs: BTreeMap<u64, JobInfo>,
    owners: HashMap<Resource, u64>,
    /// Per open monitor: paused now, and how many times it was paused since it opened.
    monitors: BTreeMap<String, (bool, u32)>,
    health: Health,
}

#[derive(Default, Clone)]
struct Health {
    level: &'static str,
    message: Option<String>,
}

/// Shared job table. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<tokio::sync::Notify>,
    /// The one task sending `devkit/status` (started on `initialized`).
    status_task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs::new()
    }
}

/// A claimed job; dropping it releases its resources.
pub struct JobGuard {
    jobs: Jobs,
    pub id: u64,
    pub cancel: CancellationToken,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.jobs.finish(self.id);
    }
}

impl Jobs {
    pub fn new() -> Self {
        let inner = Inner {
            health: Health {
                level: "ok",
                message: None,
            },
            ..Default::default()
        };
        Jobs {
            inner: Arc::new(Mutex::new(inner)),
            changed: Arc::new(tokio::sync::Notify::new()),
            status_task: Arc::default(),
        }
    }

    /// Start sending `devkit/status` to `client` unless it is already being sent (a client may
    /// send `initialized` more than once).
    pub fn start_status(&self, client: Client) {
        let mut task = self.status_task.lock().unwrap_or_else(|p| p.into_inner());
        if task.as_ref().is_none_or(|t| t.is_finished()) {
            *task = Some(tokio::spawn(self.clone().publish_status(client)));
        }
    }

    /// Stop sending `devkit/status` (on `shutdown`, `exit` or the end of input).
    pub fn stop_status(&self) {
        if let Some(t) = self
            .status_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
    }

    /// Whether the status task runs.
    #[cfg(test)]
    pub fn status_running(&self) -> bool {
        self.status_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Cancel every running job (the input ended).
    pub fn cancel_all(&self) {
        for job in self.lock().jobs.values() {
            job.cancel.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the table inconsistent (every update is a
        // single insert/remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claim `resources` for `method`, or fail with `busy` naming who holds the first busy one.
    pub fn claim(
        &self,
        method: &'static str,
        resources: Vec<Resource>,
    ) -> Result<JobGuard, TaskError> {
        let mut inner = self.lock();
        for r in &resources {
            if let Some(holder) = inner.owners.get(r).and_then(|id| inner.jobs.get(id)) {
                return Err(TaskError::new(
                    codes::BUSY,
                    format!("{r} is busy: {} is using it", holder.method),
                )
                .with("resource", r.to_string())
                .with("heldBy", holder.method));
            }
        }
        inner.next_id += 1;
        let id = inner.next_id;
        for r in &resources {
            inner.owners.insert(r.clone(), id);
        }
        let cancel = CancellationToken::new();
        inner.jobs.insert(
            id,
            JobInfo {
                method,
                resources,
                cancel: cancel.clone(),
                progress_token: None,
            },
        );
        drop(inner);
        self.changed.notify_one();
        Ok(JobGuard {
            jobs: self.clone(),
            id,
            cancel,
        })
    }

    fn finish(&self, id: u64) {
        let mut inner = self.lock();
        if let Some(job) = inner.jobs.remove(&id) {
            for r in job.resources {
                if inner.owners.get(&r) == Some(&id) {
                    inner.owners.remove(&r);
                }
            }
        }
        drop(inner);
        self.changed.notify_one();
    }

    fn set_progress_token(&self, id: u64, token: ProgressToken) {
        if let Some(job) = self.lock().jobs.get_mut(&id) {
            job.progress_token = Some(token);
        }
    }

    /// `window/workDoneProgress/cancel`: cancel the job reporting on `token`.
    pub fn cancel_by_progress_token(&self, token: &ProgressToken) -> bool {
        let inner = self.lock();
        for job in inner.jobs.values() {
            if job.progress_token.as_ref() == Some(token) {
                job.cancel.cancel();
                return true;
            }
        }
        false
    }

    /// The method holding `resource`, if any.
    pub fn holder(&self, resource: &Resource) -> Option<&'static str> {
        let inner = self.lock();
        inner
            .owners
            .get(resource)
            .and_then(|id| inner.jobs.get(id))
            .map(|j| j.method)
    }

    /// Record an open (or paused, or closed when `None`) monitor for the status.
    pub fn set_monitor(&self, port: &str, paused: Option<bool>) {
        let mut inner = self.lock();
        match paused {
            Some(p) => {
                let entry = inner.monitors.entry(port.to_string()).or_insert((false, 0));
                if p && !entry.0 {
                    // Counted, so that a short pause between two status snapshots still changes
                    // the status (the client notes it even when it never saw `paused`).
                    entry.1 = entry.1.wrapping_add(1);
                }
                entry.0 = p;
            }
            None => {
                inner.monitors.remove(port);
            }
        }
        drop(inner);
        self.changed.notify_one();
    }

    /// Update the health from a finished request: a crash is an error, a task that failed
    /// (not for bad input or a busy resource) a warning, a task that succeeded clears it.
    pub fn record_outcome(&self, method: &str, result: &Result<(), &TaskError>) {
        let mut inner = self.lock();
        let task = ext::TASKS.contains(&method);
        inner.health = match result {
            Err(e) if e.name == codes::INTERNAL.1 => Health {
                level: "error",
                message: Some(format!("{method} crashed: {}", e.message)),
            },
            Ok(()) if task => Health {
                level: "ok",
                message: None,
            },
            Err(e)
                if task
                    && ![codes::CANCELLED.1, codes::INVALID_PARAMS.1, codes::BUSY.1]
                        .contains(&e.name) =>
            {
                Health {
                    level: "warning",
                    message: Some(format!("{method} failed: {}", e.message)),
                }
            }
            _ => return,
        };
        drop(inner);
        self.changed.notify_one();
    }

    pub fn status(&self) -> StatusParams {
        let inner = self.lock();
        StatusParams {
            health: inner.health.level.to_string(),
            quiescent: inner.jobs.is_empty(),
            message: inner.health.message.clone(),
            running: inner
                .jobs
                .iter()
                .map(|(id, j)| RunningTask {
                    id: *id,
                    method: j.method.to_string(),
                    resources: j.resources.iter().map(|r| r.to_string()).collect(),
                })
                .collect(),
            monitors: inner
                .monitors
                .iter()
                .map(|(p, (paused, pauses))| MonitorStatus {
                    port: p.clone(),
                    paused: *paused,
                    pauses: *pauses,
                })
                .collect(),
        }
    }

    /// Send `devkit/status` whenever the table changes (coalesced), until stopped.
    async fn publish_status(self, client: Client) {
        let mut last = None;
        loop {
            let status = self.status();
            if last.as_ref() != Some(&status) {
                client
                    .send_notification::<ext::Status>(status.clone())
                    .await;
                last = Some(status);
            }
            self.changed.notified().await;
        }
    }
}

/// What a job's body gets.
pub struct JobCtx {
    pub cancel: CancellationToken,
    /// Feed this to the task; events become `$/progress` reports and warnings.
    pub progress: Progress,
    warnings: Arc<Mutex<Vec<String>>>,
    committed: Arc<AtomicBool>,
}

impl JobCtx {
    /// The point of no return: fails with `cancelled` when the job was cancelled; after it, a
    /// cancellation no longer turns the job's outcome into `cancelled` (what was done is
    /// reported). The transport answers a cancelled request only once its job has ended, so
    /// nothing is written after the client was told "cancelled".
    pub fn commit(&self) -> Result<(), TaskError> {
        if self.cancel.is_cancelled() {
            return Err(TaskError::cancelled());
        }
        self.committed.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Warnings the task emitted so far (`ProgressEvent::Warning`).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

/// How to run a job.
pub struct JobSpec {
    pub method: &'static str,
    pub title: String,
    pub resources: Vec<Resource>,
    /// The client's `workDoneToken`, if it sent one.
    pub work_done_token: Option<ProgressToken>,
    /// Whether to report work-done progress at all (short jobs do not).
    pub progress: bool,
}

/// Run `body` as a job (see the module docs). Returns when the job has finished, or is
/// dropped with the request (then the job is cancelled and finishes on its own).
pub async fn run_job<T, F, Fut>(
    jobs: &Jobs,
    client: &Client,
    client_progress: bool,
    spec: JobSpec,
    body: F,
) -> Result<T, TaskError>
where
    T: Send + 'static,
    F: FnOnce(JobCtx) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, TaskError>> + Send + 'static,
{
    let guard = jobs.claim(spec.method, spec.resources)?;
    let cancel = guard.cancel.clone();
    // Dropping the request future cancels the job.
    let _cancel_on_drop = cancel.clone().drop_guard();
    // `$/cancelRequest` cancels the job, and the request answers when the job has ended.
    let request = super::transport::current_request();
    if let Some(r) = &request {
        r.handle_cancellation();
    }
    let jobs2 = jobs.clone();
    let client = client.clone();
    let handle = tokio::spawn(async move {
        let guard = guard;
        let token = match (spec.progress, spec.work_done_token) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) if client_progress => {
                let t = NumberOrString::String(format!("devkit/{}", guard.id));
                let created = client
                    .send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                        token: t.clone(),
                    })
                    .await;
                created.ok().map(|_| t)
            }
            (true, None) => None,
        };
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<ProgressEvent>();
        let forwarder = token.clone().map(|t| {
            jobs2.set_progress_token(guard.id, t.clone());
            tokio::spawn(forward_progress(client.clone(), t, spec.title.clone(), rx))
        });
        let progress = {
            let warnings = warnings.clone();
            Progress::new(move |ev| {
                if let ProgressEvent::Warning { message } = &ev {
                    if let Ok(mut w) = warnings.lock() {
                        w.push(message.clone());
                    }
                }
                let _ = tx.send(ev);
            })
        };
        let committed = Arc::new(AtomicBool::new(false));
        let ctx = JobCtx {
            cancel: guard.cancel.clone(),
            progress,
            warnings,
            committed: committed.clone(),
        };
        let result = match request {
            Some(r) => {
                let cancel = guard.cancel.clone();
                let body = guarded(body(ctx));
                tokio::pin!(body);
                // The body goes on after a cancellation: it stops at its own pace.
                tokio::select! {
                    r = &mut body => r,
                    _ = r.token.cancelled() => {
                        cancel.cancel();
                        body.await
                    }
                }
            }
            None => guarded(body(ctx)).await,
        };
        let cancelled = guard.cancel.is_cancelled() && !committed.load(Ordering::SeqCst);
        let result = match result {
            Err(e) if cancelled && e.name != codes::INTERNAL.1 => Err(TaskError::cancelled()),
            Ok(_) if cancelled => Err(TaskError::cancelled()),
            r => r,
        };
        // The Progress (and so the channel's sender) went with the body; the forwarder ends
        // the progress once it has drained the reports.
        if let Some(mut f) = forwarder {
            // Normally immediate; bounded in case the task leaked a clone of its Progress.
            if tokio::time::timeout(std::time::Duration::from_millis(250), &mut f)
                .await
                .is_err()
            {
                f.abort();
            }
            if let Some(t) = token {
                let message = match &result {
                    Ok(_) => "Done".to_string(),
                    Err(e) => e.message.clone(),
                };
                end_progress(&client, t, message).await;
            }
        }
        drop(guard);
        result
    });
    match handle.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(panic_error(e.into_panic())),
        Err(_) => Err(TaskError::cancelled()),
    }
}

/// Run a future, turning a panic into an `internal` error (the daemon keeps serving).
pub async fn guarded<T>(fut: impl Future<Output = Result<T, TaskError>>) -> Result<T, TaskError> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(payload) => Err(panic_error(payload)),
    }
}

pub(crate) fn panic_error(payload: Box<dyn std::any::Any + Send>) -> TaskError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!("a task panicked: {what}");
    TaskError::new(
        codes::INTERNAL,
        format!("internal error: the task crashed ({what}); the daemon is still running"),
    )
}

async fn forward_progress(
    client: Client,
    token: ProgressToken,
    title: String,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<ProgressEvent>,
) {
    let send = |value| {
        client.send_notification::<ProgressNotification>(ProgressParams {
            token: token.clone(),
            value: ProgressParamsValue::WorkDone(value),
        })
    };
    send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
        title,
        cancellable: Some(true),
        message: None,
        percentage: None,
    }))
    .await;
    let mut last_pct = 0u32;
    while let Some(ev) = rx.recv().await {
        let (message, percentage) = match ev {
            ProgressEvent::Begin { title } => (title, None),
            ProgressEvent::Report {
                message,
                percentage,
            } => (message, percentage),
            ProgressEvent::End { message } => (message, None),
            ProgressEvent::Warning { message } => (format!("warning: {message}"), None),
        };
        // LSP percentages must not go down within one progress.
        let percentage = percentage.map(|p| p.min(100).max(last_pct));
        if let Some(p) = percentage {
            last_pct = p;
        }
        send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: Some(true),
            message: Some(message),
            percentage,
        }))
        .await;
    }
}

async fn end_progress(client: &Client, token: ProgressToken, message: String) {
    client
        .send_notification::<ProgressNotification>(ProgressParams {
            token,
            value: ProgressParamsValue::WorkDone(WorkDoneProgress::End(WorkDoneProgressEnd {
                message: Some(message),
            })),
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_between_two_snapshots_still_changes_the_status() {
        let jobs = Jobs::new();
        jobs.set_monitor("/dev/x", Some(false));
        let before = jobs.status();
        jobs.set_monitor("/dev/x", Some(true));
        jobs.set_monitor("/dev/x", Some(false));
        let after = jobs.status();
        assert_ne!(before, after, "a short pause is not lost to coalescing");
        assert_eq!(
            (after.monitors[0].paused, after.monitors[0].pauses),
            (false, 1)
        );
        // Pausing an already paused monitor is the same pause.
        jobs.set_monitor("/dev/x", Some(true));
        jobs.set_monitor("/dev/x", Some(true));
        assert_eq!(jobs.status().monitors[0].pauses, 2);
    }

    #[test]
    fn second_claim_of_a_port_is_busy_and_names_the_holder() {
        let jobs = Jobs::new();
        let port = Resource::Port("/dev/ttyACM0".into());
        let g = jobs
            .claim(
                ext::UPLOAD,
                vec![port.clone(), Resource::Probe("default".into())],
            )
            .unwrap();
        let err = jobs.claim(ext::SET_UDS, vec![port.clone()]).err().unwrap();
        assert_eq!(err.name, "busy");
        assert_eq!(err.data["heldBy"], "devkit/upload");
        assert_eq!(err.data["resource"], "port:/dev/ttyACM0");
        assert_eq!(jobs.status().running.len(), 1);
        drop(g);
        assert!(jobs.claim(ext::SET_UDS, vec![port]).is_ok());
        assert!(jobs.status().quiescent);
    }

    #[test]
    fn a_failed_claim_holds_nothing() {
        let jobs = Jobs::new();
        let a = Resource::Port("a".into());
        let b = Resource::Port("b".into());
        let _g = jobs.claim(ext::UPLOAD, vec![b.clone()]).unwrap();
        assert!(jobs.claim(ext::SET_UDS, vec![a.clone(), b]).is_err());
        assert_eq!(jobs.holder(&a), None);
    }

    #[tokio::test]
    async fn a_panic_is_an_internal_error() {
        let r: Result<(), TaskError> = guarded(async { panic!("boom") }).await;
        let e = r.err().unwrap();
        assert_eq!(e.code, -32603);
        assert!(e.message.contains("boom"));
    }

    /// A client for jobs run outside a server (no progress is reported to it).
    fn client() -> Client {
        struct Nop(Client);
        impl tower_lsp_server::LanguageServer for Nop {
            async fn initialize(
                &self,
                _: tower_lsp_server::lsp_types::InitializeParams,
            ) -> tower_lsp_server::jsonrpc::Result<tower_lsp_server::lsp_types::InitializeResult>
            {
                Ok(Default::default())
            }
            async fn shutdown(&self) -> tower_lsp_server::jsonrpc::Result<()> {
                Ok(())
            }
        }
        let (service, _socket) = tower_lsp_server::LspService::new(Nop);
        service.inner().0.clone()
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_releases_its_port() {
        let jobs = Jobs::new();
        let port = Resource::Port("/dev/ttyACM0".into());
        let spec = || JobSpec {
            method: ext::SET_UDS,
            title: "t".into(),
            resources: vec![Resource::Port("/dev/ttyACM0".into())],
            work_done_token: None,
            progress: false,
        };
        let r: Result<(), TaskError> = run_job(&jobs, &client(), false, spec(), |_| async {
            panic!("boom")
        })
        .await;
        let e = r.err().unwrap();
        assert_eq!((e.code, e.name), (-32603, "internal"));
        assert_eq!(jobs.holder(&port), None, "the port was released");
        let r = run_job(&jobs, &client(), false, spec(), |ctx| async move {
            ctx.progress.warn("careful");
            Ok(ctx.warnings())
        })
        .await;
        assert_eq!(
            r.unwrap(),
            vec!["careful".to_string()],
            "the next job runs normally"
        );
    }

    #[tokio::test]
    async fn nothing_happens_after_a_cancellation_past_the_commit_point() {
        let jobs = Jobs::new();
        let spec = || JobSpec {
            method: ext::GENERATE_CERT,
            title: "t".into(),
            resources: vec![],
            work_done_token: None,
            progress: false,
        };
        let wrote = Arc::new(AtomicBool::new(false));
        let w = wrote.clone();
        let r: Result<(), TaskError> =
            run_job(&jobs, &client(), false, spec(), move |ctx| async move {
                ctx.cancel.cancel(); // the client cancelled while the certificate was derived
                ctx.commit()?;
                w.store(true, Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert_eq!(r.err().unwrap().name, "cancelled");
        assert!(!wrote.load(Ordering::SeqCst), "nothing was written");
        // Once committed, what was done is reported even if a cancellation follows.
        let r = run_job(&jobs, &client(), false, spec(), |ctx| async move {
            ctx.commit()?;
            ctx.cancel.cancel();
            Ok(5)
        })
        .await;
        assert_eq!(r.unwrap(), 5);
    }

    #[tokio::test]
    async fn one_status_task_at_most_and_it_stops() {
        let jobs = Jobs::new();
        jobs.start_status(client());
        let first = jobs.status_task.lock().unwrap().as_ref().map(|t| t.id());
        jobs.start_status(client());
        assert_eq!(
            jobs.status_task.lock().unwrap().as_ref().map(|t| t.id()),
            first,
            "a second `initialized` starts no task"
        );
        assert!(jobs.status_running());
        jobs.stop_status();
        assert!(!jobs.status_running());
    }

    #[test]
    fn health_follows_outcomes() {
        let jobs = Jobs::new();
        jobs.record_outcome(ext::BUILD, &Err(&TaskError::failed("no compiler")));
        assert_eq!(jobs.status().health, "warning");
        jobs.record_outcome(ext::BUILD, &Err(&TaskError::cancelled()));
        assert_eq!(jobs.status().health, "warning");
        jobs.record_outcome(ext::LIST_PORTS, &Ok(()));
        assert_eq!(
            jobs.status().health,
            "warning",
            "a quick query does not clear a task failure"
        );
        jobs.record_outcome(ext::BUILD, &Ok(()));
        assert_eq!(jobs.status().health, "ok");
    }
}
