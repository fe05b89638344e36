//! The job table: which job holds which resource (port, probe, build directory), claims and
//! their release, cancellation by progress token, and the monitors and health the status
//! reports.

use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, codes, MonitorStatus, RunningTask, StatusParams};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tasks::progress::CancellationToken;
use tower_lsp_server::lsp_types::ProgressToken;

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
    pub(super) changed: Arc<tokio::sync::Notify>,
    /// The one task sending `devkit/status` (started on `initialized`).
    pub(super) status_task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
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

    pub(super) fn set_progress_token(&self, id: u64, token: ProgressToken) {
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
