//! Panics inside a job: caught and turned into an `internal` error for that request only.

use crate::lsp::error::TaskError;
use crate::lsp::ext::codes;
use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_an_internal_error() {
        let r: Result<(), TaskError> = guarded(async { panic!("boom") }).await;
        let e = r.err().unwrap();
        assert_eq!(e.code, -32603);
        assert!(e.message.contains("boom"));
    }
}
