//! The one task that sends `devkit/status` whenever the job table changes.

use super::Jobs;
use crate::lsp::ext;
use tower_lsp_server::Client;

impl Jobs {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::jobs::test_support::client;

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
}
