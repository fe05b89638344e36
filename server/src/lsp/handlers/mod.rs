//! One function per custom request, thin over `tasks`: decode-checked params in, a typed
//! result or a [`TaskError`] out. Signature of every handler:
//! `async fn(&Ctx, Params, Option<ProgressToken>) -> Result<Result, TaskError>`: the small
//! cloneable context, not the whole server.

pub mod dps;
pub mod enroll_batch;
pub mod identity;
pub mod serial;
pub mod setup;
pub mod sim;
pub mod upload;
pub mod validate;

use super::error::TaskError;
use super::jobs::Jobs;

/// Daemon-wide task state shared with running jobs (monitors live here).
pub struct State {
    pub jobs: Jobs,
    pub serial: serial::SerialState,
}

impl State {
    pub fn new(jobs: Jobs) -> Self {
        State {
            serial: serial::SerialState::default(),
            jobs,
        }
    }

    /// `shutdown`: close monitors so ports are released before `exit`.
    pub async fn shutdown(&self) {
        self.serial.close_all(&self.jobs).await;
        let sims = self.serial.disown_all_virtual_devkits();
        let _ = tokio::task::spawn_blocking(move || drop(sims)).await;
    }
}

/// Run blocking work (file IO, crypto, serial, probe) off the async threads; a panic in it
/// becomes an `internal` error.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TaskError> + Send + 'static,
) -> Result<T, TaskError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(super::jobs::panic_error(e.into_panic())),
        Err(_) => Err(TaskError::cancelled()),
    }
}
