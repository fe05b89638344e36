//! Running tasks: who owns which port or probe, cancellation, work-done progress, panics.
//!
//! Every long request runs as a job on its own tokio task:
//! - it first claims its resources (ports, probes); a resource held by another job fails the
//!   request at once with `busy`, naming the resource and the method holding it (we fail fast
//!   rather than queue: the editor shows why and the user decides);
//! - it gets a [`CancellationToken`](tasks::progress::CancellationToken) that is cancelled on
//!   `$/cancelRequest` (the transport then waits for the job to stop before answering), when
//!   the request future is dropped, or when the client cancels the job's work-done progress
//!   (`window/workDoneProgress/cancel`);
//! - work that must not happen after a cancellation (writing files) passes a commit point
//!   ([`JobCtx::commit`]): before it a cancellation wins, after it the job's result stands;
//! - its `tasks::progress` events become `$/progress` reports on a token the server creates
//!   with `window/workDoneProgress/create` (or the `workDoneToken` the client sent);
//! - a panic inside it becomes an `internal` error for that request only;
//! - its resources are released when the task has really stopped, not when the client gave up.
//!
//! The parts: the job table and its claims (`registry`), running one job (`run`), the
//! `devkit/status` task (`status`), work-done progress (`work_done`) and panics (`panic`).

mod panic;
mod registry;
mod run;
mod status;
mod work_done;

pub use panic::guarded;
pub(crate) use panic::panic_error;
pub use registry::{Jobs, Resource};
pub use run::{run_job, JobCtx, JobSpec};

#[cfg(test)]
mod test_support {
    use tower_lsp_server::Client;

    /// A client for jobs run outside a server (no progress is reported to it).
    pub(super) fn client() -> Client {
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
}
