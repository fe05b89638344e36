//! The `devkit lsp` daemon: every task as a custom JSON-RPC request over stdio
//! (tower-lsp-server), plus diagnostics, quick fixes and code lenses for the sketch's DPS settings
//! (the rules are `tasks::build::sketch`).
//!
//! Layout (rust-analyzer style):
//! - [`ext`]: the protocol extensions (method names, params, results), mirrored by
//!   `docs/protocol.md` and `extension/src/lsp_ext.ts`;
//! - [`backend`]: the `LanguageServer` implementation and the request entry points;
//! - [`handlers`]: one function per custom request, thin over `tasks`;
//! - [`jobs`]: resource ownership, cancellation, progress and panic isolation;
//! - [`error`]: error codes and safe params decoding;
//! - [`serial_data`]: batching of serial output into notifications;
//! - [`to_proto`]: every conversion from a `tasks` value to a wire value;
//! - [`transport`]: framing with bounds, dispatch and cancellation on stdio;
//! - [`vocab`]: the param name of each `tasks` input (`data.field`).
//!
//! Secrets arrive only in request params. Params are never logged (tower-lsp-server's own
//! message tracing is filtered out in `cli::lsp`), and secret fields are [`secret::Secret`]s.

pub mod backend;
pub mod error;
pub mod ext;
pub mod handlers;
pub mod jobs;
pub mod secret;
pub mod serial_data;
pub mod to_proto;
pub mod transport;
pub mod vocab;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_lsp_server::jsonrpc::{Request, Response};
use tower_lsp_server::LspService;
use tower_service::Service;

/// How long the daemon may take to let go of its jobs and ports once the input has ended (or
/// `exit` came): the process then exits whatever still runs.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serve the protocol on stdin/stdout until `exit` or the end of input. Returns whether
/// `shutdown` came first (the LSP exit code is 0 then, 1 otherwise).
pub async fn serve_stdio() -> bool {
    let shutdown = Arc::new(AtomicBool::new(false));
    let (service, socket) = backend::build_service(shutdown.clone());
    let (jobs, state) = (service.inner().jobs.clone(), service.inner().state.clone());
    transport::serve(
        tokio::io::stdin(),
        tokio::io::stdout(),
        DefaultParams(service),
        socket,
    )
    .await;
    // Running jobs are cancelled (their blocking loops stop at their next read) and monitors
    // close, so no port stays held by a daemon nobody talks to.
    jobs.stop_status();
    jobs.cancel_all();
    if tokio::time::timeout(RELEASE_TIMEOUT, state.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("monitors did not close in time; exiting anyway");
    }
    shutdown.load(Ordering::SeqCst)
}

/// Gives `devkit/*` requests sent without params an empty object, so that clients may omit
/// params for methods whose fields are all optional (`devkit/listPorts`).
struct DefaultParams<S>(LspService<S>);

impl<S: tower_lsp_server::LanguageServer> Service<Request> for DefaultParams<S> {
    type Response = Option<Response>;
    type Error = <LspService<S> as Service<Request>>::Error;
    type Future = <LspService<S> as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.method().starts_with("devkit/")
            && matches!(req.params(), None | Some(serde_json::Value::Null))
        {
            let (method, id, _) = req.into_parts();
            let mut b = Request::build(method).params(serde_json::json!({}));
            if let Some(id) = id {
                b = b.id(id);
            }
            return self.0.call(b.finish());
        }
        self.0.call(req)
    }
}
