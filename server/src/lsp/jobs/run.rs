//! Running one job: its claim, cancellation (`$/cancelRequest`, a dropped request, the
//! commit point), work-done progress and warnings, and a panic turned into an error.

use super::panic::{guarded, panic_error};
use super::work_done::{end_progress, forward_progress};
use super::{Jobs, Resource};
use crate::lsp::error::TaskError;
use crate::lsp::ext::codes;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tasks::progress::{CancellationToken, Progress, ProgressEvent};
use tower_lsp_server::lsp_types::{
    request::WorkDoneProgressCreate, NumberOrString, ProgressToken, WorkDoneProgressCreateParams,
};
use tower_lsp_server::Client;

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

impl JobSpec {
    /// A job holding no port or file, reported as work-done progress under `title`.
    pub fn with_progress(
        method: &'static str,
        title: &str,
        work_done_token: Option<ProgressToken>,
    ) -> JobSpec {
        JobSpec {
            method,
            title: title.into(),
            resources: vec![],
            work_done_token,
            progress: true,
        }
    }
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
    let request = crate::lsp::transport::current_request();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::ext;
    use crate::lsp::jobs::test_support::client;

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
}
