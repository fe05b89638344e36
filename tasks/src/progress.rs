//! Progress events and cancellation for long operations.
//!
//! Following probe-rs, long operations (build, flash, provisioning) report what they are doing
//! as a stream of events instead of printing: the CLI renders them as lines, the daemon as LSP
//! `$/progress` work-done notifications. Cancellation is a [`CancellationToken`] passed in.

use serde::Serialize;
use std::sync::Arc;

pub use tokio_util::sync::CancellationToken;

/// One progress event. `percentage` is 0..=100 where the operation can tell.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ProgressEvent {
    /// A named step started (e.g. "Building", "Erasing", "Programming").
    Begin { title: String },
    /// The current step moved on.
    Report {
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        percentage: Option<u32>,
    },
    /// The current step finished.
    End { message: String },
    /// Something the user should know that does not stop the operation.
    Warning { message: String },
}

/// Where a long operation sends its progress. Cheap to clone; `Progress::none()` discards.
#[derive(Clone)]
pub struct Progress(Option<Arc<dyn Fn(ProgressEvent) + Send + Sync>>);

impl Progress {
    /// A sink that calls `f` for every event.
    pub fn new(f: impl Fn(ProgressEvent) + Send + Sync + 'static) -> Self {
        Progress(Some(Arc::new(f)))
    }
    /// A sink that discards every event.
    pub fn none() -> Self {
        Progress(None)
    }
    pub fn emit(&self, event: ProgressEvent) {
        if let Some(f) = &self.0 {
            f(event)
        }
    }
    pub fn begin(&self, title: impl Into<String>) {
        self.emit(ProgressEvent::Begin {
            title: title.into(),
        })
    }
    pub fn report(&self, message: impl Into<String>, percentage: Option<u32>) {
        self.emit(ProgressEvent::Report {
            message: message.into(),
            percentage,
        })
    }
    pub fn end(&self, message: impl Into<String>) {
        self.emit(ProgressEvent::End {
            message: message.into(),
        })
    }
    pub fn warn(&self, message: impl Into<String>) {
        self.emit(ProgressEvent::Warning {
            message: message.into(),
        })
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::none()
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}
