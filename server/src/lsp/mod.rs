//! The `devkit lsp` daemon: every task as a custom JSON-RPC request over stdio
//! (tower-lsp-server), plus diagnostics and code lenses for the sketch's DPS settings.
//!
//! Layout (rust-analyzer style):
//! - [`ext`]: the protocol extensions (method names, params, results), mirrored by
//!   `docs/protocol.md` and `extension/src/lsp_ext.ts`;
//! - [`backend`]: the `LanguageServer` implementation and the request entry points;
//! - [`handlers`]: one function per custom request, thin over `tasks`;
//! - [`jobs`]: resource ownership, cancellation, progress and panic isolation;
//! - [`error`]: error codes and safe params decoding;
//! - [`sketch`]: the sketch's DPS settings as diagnostics and code lenses;
//! - [`serial_data`]: batching of serial output into notifications.
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
pub mod sketch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_lsp_server::jsonrpc::{Request, Response};
use tower_lsp_server::{LspService, Server};
use tower_service::Service;

/// How many requests may run at once. Long jobs (uploads, monitors, provisioning) hold a slot
/// for their whole run and `$/cancelRequest` needs one to be processed, so this is generous.
const MAX_CONCURRENCY: usize = 64;

/// Serve the protocol on stdin/stdout until `exit`. Returns whether `shutdown` came first
/// (the LSP exit code is 0 then, 1 otherwise).
pub async fn serve_stdio() -> bool {
    let shutdown = Arc::new(AtomicBool::new(false));
    let (service, socket) = backend::build_service(shutdown.clone());
    Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .concurrency_level(MAX_CONCURRENCY)
        .serve(DefaultParams(service))
        .await;
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
        if req.method().starts_with("devkit/") && matches!(req.params(), None | Some(serde_json::Value::Null)) {
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
