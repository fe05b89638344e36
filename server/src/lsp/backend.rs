//! The language server: lifecycle, documents, diagnostics, code lenses, and the entry point of
//! every custom request (decode params safely, run the handler with panics contained, map
//! errors to stable codes).

use super::error::{decode, TaskError};
use super::ext;
use super::handlers;
use super::jobs::{guarded, JobCtx, JobSpec, Jobs};
use super::to_proto::{self, line_start};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tasks::build::sketch::{self, Configured};
use tasks::text::LineIndex;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::lsp_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService};

/// The language server: lifecycle and documents; every custom request runs its handler
/// with the [`Ctx`].
pub struct Backend {
    ctx: Ctx,
    shutdown: Arc<AtomicBool>,
}

/// What request handlers get: small and cloneable, so a job's own task can hold it.
#[derive(Clone)]
pub struct Ctx {
    pub client: Client,
    pub jobs: Jobs,
    pub state: Arc<handlers::State>,
    client_progress: Arc<AtomicBool>,
    documents: Arc<Documents>,
    settings: Arc<Settings>,
}

/// The DPS settings the editor holds (the extension's `devkitDps` section), learned with
/// standard LSP: `initializationOptions` first, then `workspace/configuration` pulls on
/// `initialized` and on every `workspace/didChangeConfiguration`. Hard-coded values in the
/// sketch are compared with them; unknown settings: no comparison.
#[derive(Default)]
struct Settings {
    values: Mutex<Option<Configured>>,
    /// The client answers `workspace/configuration`.
    pull: AtomicBool,
    /// The client accepts a dynamic registration of `workspace/didChangeConfiguration`.
    register: AtomicBool,
}

/// The configuration section the settings are in.
const SETTINGS_SECTION: &str = "devkitDps";

/// The DPS settings in the `devkitDps` section's value (nested as VS Code sends it, or with
/// dotted keys); `None` when it holds none of them.
fn configured_from(section: &Value) -> Option<Configured> {
    let get = |nested: &str, dotted: &str| {
        section
            .pointer(nested)
            .or_else(|| section.get(dotted))
            .and_then(Value::as_str)
    };
    let endpoint = get("/dps/globalEndpoint", "dps.globalEndpoint");
    let scope = get("/dps/idScope", "dps.idScope");
    let id = get("/registrationId", "registrationId");
    (section.is_object() && (endpoint.is_some() || scope.is_some() || id.is_some()))
        .then(|| Configured::new(endpoint, scope, id))
}

/// Open documents and the last build's diagnostics, merged on publish.
#[derive(Default)]
struct Documents {
    text: Mutex<HashMap<Uri, String>>,
    /// Diagnostics of the last build, per file; merged with the sketch checks on publish.
    build_diagnostics: Mutex<HashMap<Uri, Vec<Diagnostic>>>,
}

impl std::ops::Deref for Backend {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

impl Backend {
    fn new(client: Client, shutdown: Arc<AtomicBool>) -> Self {
        let jobs = Jobs::new();
        let ctx = Ctx {
            state: Arc::new(handlers::State::new(jobs.clone())),
            client,
            jobs,
            client_progress: Arc::new(AtomicBool::new(false)),
            documents: Arc::default(),
            settings: Arc::default(),
        };
        Backend { ctx, shutdown }
    }
}

impl Ctx {
    /// Run `body` as one of this daemon's jobs ([`crate::lsp::jobs::run_job`]): claimed,
    /// cancellable, reported as progress when the client takes it.
    pub async fn run_job<T, F, Fut>(&self, spec: JobSpec, body: F) -> Result<T, TaskError>
    where
        T: Send + 'static,
        F: FnOnce(JobCtx) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, TaskError>> + Send + 'static,
    {
        crate::lsp::jobs::run_job(&self.jobs, &self.client, self.client_progress(), spec, body)
            .await
    }

    /// Whether the client accepts server-created work-done progress tokens.
    pub fn client_progress(&self) -> bool {
        self.client_progress.load(Ordering::Relaxed)
    }

    /// Replace the build diagnostics (all files) and republish the files concerned.
    // `Uri` hashes and compares by its string only, so it is a sound key.
    #[allow(clippy::mutable_key_type)]
    pub async fn set_build_diagnostics(&self, diags: HashMap<Uri, Vec<Diagnostic>>) {
        let touched: Vec<Uri> = {
            let mut map = lock(&self.documents.build_diagnostics);
            let mut touched: Vec<Uri> = map.keys().cloned().collect();
            touched.extend(diags.keys().cloned());
            *map = diags;
            touched.sort();
            touched.dedup();
            touched
        };
        for uri in touched {
            self.publish(uri).await;
        }
    }

    async fn publish(&self, uri: Uri) {
        let mut diags = lock(&self.documents.build_diagnostics)
            .get(&uri)
            .cloned()
            .unwrap_or_default();
        let text = lock(&self.documents.text).get(&uri).cloned();
        if let Some(text) = text {
            if sketch::is_sketch_file(uri.as_str()) {
                let index = LineIndex::new(&text);
                diags.extend(
                    self.sketch_findings(&text)
                        .iter()
                        .map(|f| to_proto::sketch_diagnostic(&text, &index, f)),
                );
            }
        }
        self.client.publish_diagnostics(uri, diags, None).await;
    }

    /// The sketch rules on `text` with the settings known now (a panic in a rule is
    /// contained: no findings).
    fn sketch_findings(&self, text: &str) -> Vec<sketch::Finding> {
        let settings = lock(&self.settings.values).clone();
        std::panic::catch_unwind(|| sketch::findings(text, settings.as_ref())).unwrap_or_default()
    }

    /// New settings: republish every open sketch file.
    async fn set_settings(&self, configured: Configured) {
        let changed = lock(&self.settings.values).replace(configured.clone()) != Some(configured);
        if !changed {
            return;
        }
        let open: Vec<Uri> = lock(&self.documents.text)
            .keys()
            .filter(|u| sketch::is_sketch_file(u.as_str()))
            .cloned()
            .collect();
        for uri in open {
            self.publish(uri).await;
        }
    }

    /// Ask the client for the `devkitDps` section (when it answers such requests).
    async fn pull_settings(&self) {
        if !self.settings.pull.load(Ordering::Relaxed) {
            return;
        }
        let item = ConfigurationItem {
            scope_uri: None,
            section: Some(SETTINGS_SECTION.into()),
        };
        match self.client.configuration(vec![item]).await {
            Ok(values) => {
                if let Some(c) = values.first().and_then(configured_from) {
                    self.set_settings(c).await;
                }
            }
            Err(e) => tracing::debug!("workspace/configuration failed: {}", e.message),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// "Generate certificate" and "Enroll" above the registration ID; above an invalid one, a
/// lens that says so and runs nothing (no certificate can be made for it).
fn code_lenses(uri: &Uri, text: &str) -> Vec<CodeLens> {
    let settings = sketch::scan(text).settings;
    let Some(id) = settings
        .iter()
        .find(|s| s.kind == sketch::SettingKind::RegistrationId)
    else {
        return Vec::new();
    };
    let line = LineIndex::new(text).line_col(id.line_start).line;
    if !id.value.is_empty() && tasks::identity::RegistrationId::parse(&id.value).is_err() {
        return vec![CodeLens {
            range: line_start(line),
            command: Some(Command {
                title: "Invalid registration ID (lower-case a-z, 0-9 and - only): fix it to generate a certificate".into(),
                // No command: the lens is a label.
                command: String::new(),
                arguments: None,
            }),
            data: None,
        }];
    }
    let arg = serde_json::json!({
        "uri": uri.as_str(),
        "registrationId": if id.value.is_empty() { Value::Null } else { Value::String(id.value.clone()) },
    });
    let lens = |title: &str, command: &str| CodeLens {
        range: line_start(line),
        command: Some(Command {
            title: title.into(),
            command: command.into(),
            arguments: Some(vec![arg.clone()]),
        }),
        data: None,
    };
    vec![
        lens("Generate certificate", ext::CMD_GENERATE_CERT),
        lens("Enroll", ext::CMD_ENROLL),
    ]
}

/// The `workDoneToken` a client may put in any request's params.
fn work_done_token(params: &Value) -> Option<ProgressToken> {
    match params.get("workDoneToken")? {
        Value::String(s) => Some(NumberOrString::String(s.clone())),
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(NumberOrString::Number),
        _ => None,
    }
}

/// Turn a handler outcome into the JSON-RPC result. Logs the method and the outcome's code,
/// never the params or the result.
fn respond<R: Serialize>(
    jobs: &Jobs,
    method: &'static str,
    started: std::time::Instant,
    r: Result<R, TaskError>,
) -> RpcResult<Value> {
    let elapsed = started.elapsed();
    jobs.record_outcome(method, &r.as_ref().map(|_| ()));
    match r {
        Ok(v) => {
            tracing::debug!(method, ?elapsed, "ok");
            serde_json::to_value(v).map_err(|_| {
                TaskError::new(ext::codes::INTERNAL, "result could not be encoded").into()
            })
        }
        Err(e) => {
            tracing::info!(method, ?elapsed, code = e.name, "failed: {}", e.message);
            Err(e.into())
        }
    }
}

/// Declare the request entry points: `name => Marker, handler`, the marker pairing the
/// method with its params and result types ([`ext::Request`]). Each decodes its params with
/// [`decode`] (safe messages), runs `handler(&Backend, params, workDoneToken)` with panics
/// contained, and maps the outcome with [`respond`].
macro_rules! requests {
    ($($fn_name:ident => $marker:ty, $handler:path;)*) => {
        impl Backend {
            $(
                async fn $fn_name(&self, params: Value) -> RpcResult<Value> {
                    let started = std::time::Instant::now();
                    let token = work_done_token(&params);
                    let r: Result<<$marker as ext::Request>::Result, TaskError> = guarded(async move {
                        let p: <$marker as ext::Request>::Params = decode(params)?;
                        $handler(&self.ctx, p, token).await
                    })
                    .await;
                    respond(&self.jobs, <$marker as ext::Request>::METHOD, started, r)
                }
            )*
        }

        /// Register every custom request with the service builder.
        fn register(b: tower_lsp_server::LspServiceBuilder<Backend>) -> tower_lsp_server::LspServiceBuilder<Backend> {
            b $(.custom_method(<$marker as ext::Request>::METHOD, Backend::$fn_name))*
        }

        #[cfg(test)]
        const REGISTERED: &[&str] = &[$(<$marker as ext::Request>::METHOD),*];
    };
}

requests! {
    list_ports => ext::ListPorts, handlers::serial::list_ports;
    generate_cert => ext::GenerateCert, handlers::identity::generate_cert;
    inspect_cert => ext::InspectCert, handlers::identity::inspect_cert;
    identity => ext::Identity, handlers::identity::identity;
    build => ext::Build, handlers::upload::build;
    upload => ext::Upload, handlers::upload::upload;
    device_upload => ext::DeviceUpload, handlers::upload::device_upload;
    set_uds => ext::SetUds, handlers::serial::set_uds;
    set_wifi => ext::SetWifi, handlers::serial::set_wifi;
    monitor_open => ext::MonitorOpen, handlers::serial::monitor_open;
    monitor_close => ext::MonitorClose, handlers::serial::monitor_close;
    monitor_send => ext::MonitorSend, handlers::serial::monitor_send;
    enroll => ext::Enroll, handlers::dps::enroll;
    enroll_batch => ext::EnrollBatch, handlers::enroll_batch::enroll_batch;
    enroll_group => ext::EnrollGroup, handlers::dps::enroll_group;
    provision => ext::Provision, handlers::dps::provision;
    check_setup => ext::CheckSetup, handlers::setup::check_setup;
    sim_config_mode => ext::SimConfigMode, handlers::sim::sim_config_mode;
    sim_reset => ext::SimReset, handlers::sim::sim_reset;
    sim_start => ext::SimStart, handlers::sim::sim_start;
    sim_stop => ext::SimStop, handlers::sim::sim_stop;
    validate_input => ext::ValidateInput, handlers::validate::validate_input;
    find_build => ext::FindBuild, handlers::validate::find_build;
    registration_id => ext::RegistrationId, handlers::validate::registration_id;
}

impl Backend {
    async fn work_done_progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        self.jobs.cancel_by_progress_token(&params.token);
    }
}

/// The service with every method registered.
pub fn build_service(
    shutdown: Arc<AtomicBool>,
) -> (LspService<Backend>, tower_lsp_server::ClientSocket) {
    let b = LspService::build(|client| Backend::new(client, shutdown)).custom_method(
        "window/workDoneProgress/cancel",
        Backend::work_done_progress_cancel,
    );
    register(b).finish()
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> RpcResult<InitializeResult> {
        let progress = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false);
        self.client_progress.store(progress, Ordering::Relaxed);
        let workspace = params.capabilities.workspace.as_ref();
        self.settings.pull.store(
            workspace.and_then(|w| w.configuration).unwrap_or(false),
            Ordering::Relaxed,
        );
        self.settings.register.store(
            workspace
                .and_then(|w| w.did_change_configuration.as_ref())
                .and_then(|d| d.dynamic_registration)
                .unwrap_or(false),
            Ordering::Relaxed,
        );
        // The extension sends the DPS settings it starts with (flat names).
        if let Some(Value::Object(o)) = &params.initialization_options {
            let get = |k: &str| o.get(k).and_then(Value::as_str);
            if ["globalEndpoint", "idScope", "registrationId"]
                .iter()
                .any(|k| o.contains_key(*k))
            {
                *lock(&self.settings.values) = Some(Configured::new(
                    get("globalEndpoint"),
                    get("idScope"),
                    get("registrationId"),
                ));
            }
        }
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::FULL,
                )),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
                        ..Default::default()
                    },
                )),
                experimental: Some(serde_json::json!({
                    "devkitRequests": ext::REQUESTS,
                    "devkitNotifications": ext::NOTIFICATIONS,
                    "devkitErrorCodes": ext::codes::ALL.iter().map(|(code, name)| (name.to_string(), Value::from(*code))).collect::<serde_json::Map<_, _>>(),
                })),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "devkit".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        tracing::info!("client initialized");
        self.jobs.start_status(self.client.clone());
        // Off the notification's path: these wait for the client's answers.
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            if ctx.settings.register.load(Ordering::Relaxed) {
                let registration = Registration {
                    id: "devkit-settings".into(),
                    method: "workspace/didChangeConfiguration".into(),
                    register_options: Some(serde_json::json!({ "section": SETTINGS_SECTION })),
                };
                if let Err(e) = ctx.client.register_capability(vec![registration]).await {
                    tracing::debug!("registering didChangeConfiguration failed: {}", e.message);
                }
            }
            ctx.pull_settings().await;
        });
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        if self.settings.pull.load(Ordering::Relaxed) {
            let ctx = self.ctx.clone();
            tokio::spawn(async move { ctx.pull_settings().await });
        } else {
            // A client that pushes its settings instead.
            let section = params
                .settings
                .get(SETTINGS_SECTION)
                .unwrap_or(&params.settings);
            if let Some(c) = configured_from(section) {
                self.set_settings(c).await;
            }
        }
    }

    async fn code_action(&self, params: CodeActionParams) -> RpcResult<Option<CodeActionResponse>> {
        let uri = params.text_document.uri;
        if !sketch::is_sketch_file(uri.as_str()) {
            return Ok(None);
        }
        let Some(text) = lock(&self.documents.text).get(&uri).cloned() else {
            return Ok(None);
        };
        let (first, last) = (params.range.start.line, params.range.end.line);
        let index = LineIndex::new(&text);
        let actions = self
            .sketch_findings(&text)
            .iter()
            .filter(|f| (first..=last).contains(&index.line_col(f.range.start).line))
            .flat_map(|f| to_proto::code_actions(&uri, &text, &index, f))
            .map(CodeActionOrCommand::CodeAction)
            .collect();
        Ok(Some(actions))
    }

    async fn shutdown(&self) -> RpcResult<()> {
        self.shutdown.store(true, Ordering::SeqCst);
        self.jobs.stop_status();
        self.state.shutdown().await;
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let uri = params.text_document.uri;
        lock(&self.documents.text).insert(uri.clone(), params.text_document.text);
        self.publish(uri).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        // Full sync: the last change holds the whole text.
        if let Some(change) = params.content_changes.into_iter().last() {
            lock(&self.documents.text).insert(uri.clone(), change.text);
        }
        self.publish(uri).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        lock(&self.documents.text).remove(&uri);
        self.publish(uri).await;
    }

    async fn code_lens(&self, params: CodeLensParams) -> RpcResult<Option<Vec<CodeLens>>> {
        let uri = params.text_document.uri;
        if !sketch::is_sketch_file(uri.as_str()) {
            return Ok(None);
        }
        let text = lock(&self.documents.text).get(&uri).cloned();
        Ok(text.map(|t| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| code_lenses(&uri, &t)))
                .unwrap_or_default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_request_is_registered() {
        let mut declared = ext::REQUESTS.to_vec();
        let mut registered = REGISTERED.to_vec();
        declared.sort();
        registered.sort();
        assert_eq!(declared, registered);
    }

    #[test]
    fn code_lenses_sit_above_the_registration_id() {
        let uri: Uri = "file:///s/dps_config.h".parse().unwrap();
        let lenses = code_lenses(
            &uri,
            "#define DPS_ID_SCOPE \"0ne00000A0A\"\n#define DPS_REGISTRATION_ID \"dev-1\"\n",
        );
        assert_eq!(lenses.len(), 2);
        assert_eq!(lenses[0].range.start.line, 1);
        let cmd = lenses[0].command.as_ref().unwrap();
        assert_eq!(cmd.command, "devkit.generateCert");
        assert_eq!(
            cmd.arguments.as_ref().unwrap()[0]["registrationId"],
            "dev-1"
        );
        assert_eq!(lenses[1].command.as_ref().unwrap().command, "devkit.enroll");
    }

    #[test]
    fn an_invalid_registration_id_gets_a_lens_that_says_so_and_runs_nothing() {
        let uri: Uri = "file:///s/DevKitDPS.ino".parse().unwrap();
        let lenses = code_lenses(&uri, "#define DPS_REGISTRATION_ID \"My_DevKit\"\n");
        assert_eq!(lenses.len(), 1);
        let cmd = lenses[0].command.as_ref().unwrap();
        assert!(
            cmd.title.contains("Invalid registration ID"),
            "{}",
            cmd.title
        );
        assert_eq!(cmd.command, "");
    }

    #[test]
    fn settings_come_nested_or_dotted() {
        let nested = serde_json::json!({"dps": {"idScope": "0ne00000A0A", "globalEndpoint": ""}, "registrationId": "dev-1", "serial": {}});
        assert_eq!(
            configured_from(&nested),
            Some(Configured::new(None, Some("0ne00000A0A"), Some("dev-1")))
        );
        let dotted = serde_json::json!({"dps.idScope": "0ne00000A0A"});
        assert_eq!(
            configured_from(&dotted).unwrap().id_scope.as_deref(),
            Some("0ne00000A0A")
        );
        assert_eq!(configured_from(&Value::Null), None);
        assert_eq!(configured_from(&serde_json::json!({"serial": {}})), None);
    }
}
