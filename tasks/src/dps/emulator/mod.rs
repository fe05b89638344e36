//! A local DPS emulator, the way Azurite serves Azure Storage users: the documented service and
//! device wire protocols (dps-api.md) over real TLS on loopback, plus the registry of every
//! IoT hub it assigns devices to.
//!
//! - Service endpoint (`https://IP:PORT`): the DPS service API, authenticated by SAS against
//!   the emulator's own key (connection string in the banner), and the IoT Hub registry API
//!   for hub `H` under the path prefix `/iothubs/H` (`GET /iothubs/H/devices/{deviceId}`,
//!   SAS with resource `H`, policy `iothubowner`, same key).
//! - Device endpoint (`IP:PORT`): `PUT /{scope}/registrations/{id}/register` and the
//!   operation polls, authenticated by TLS client certificate as dps-api.md §3 says: the
//!   individual enrollment's certificate, or a chain leading to an X.509 CA enrollment
//!   group's certificate ([`chain`]); a device matching neither gets 401 / 401002, as DPS
//!   answers it.
//! - State (`devkit dps-emulator --emulator-dir`): `state.json` (enrollments, enrollment
//!   groups, registrations, hub registries), `secrets.json` (SAS key, CA key; mode 0600),
//!   `ca.pem` (the CA to trust). All atomic writes.

mod api;
mod certs;
pub(crate) mod chain;
mod state;
mod verifier;

pub use api::{Behaviour, HUB_POLICY, SERVICE_POLICY};
pub use certs::{make_test_device_cert, TestCa};
pub use state::StateError;

use crate::dps::connection_string::ConnectionString;
use crate::dps::tls;
use api::{Core, Reply, Request};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

/// Hub assigned when neither `--hub` nor the enrollment names one.
pub const DEFAULT_HUB: &str = "devkit-emulated-hub.azure-devices.net";
/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Service API address (port 0 = any free port). On port 443 the device API shares it
    /// (unless `device_listen` is given), as Microsoft's SDKs only dial 443.
    pub service_listen: SocketAddr,
    /// Device API address; `None` = the service listener on port 443, else the service IP
    /// with any free port.
    pub device_listen: Option<SocketAddr>,
    /// The DNS name clients use (connection string `HostName`, device endpoint, server
    /// certificate SAN); `None` = `localhost` for 127.0.0.1 on port 443, else the IP.
    pub host_name: Option<String>,
    pub state_dir: PathBuf,
    /// Hub for enrollments that name none; `None` = [`DEFAULT_HUB`].
    pub hub: Option<String>,
    /// Answer the first N service requests and the first N device registrations with 429.
    pub inject_429: u32,
    /// `Retry-After` seconds on 202 and 429 answers.
    pub retry_after_secs: u32,
    /// Polls answered 202 "assigning" before the result.
    pub assigning_polls: u32,
    /// Limits that keep slow or idle clients from holding the emulator (slowloris).
    pub limits: ConnectionLimits,
}

/// Per-connection time limits and the bound on open connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// TLS handshake, then each request's header (also the idle wait between keep-alive
    /// requests), and each request's body: each must arrive within this time.
    pub read_timeout: std::time::Duration,
    /// No connection lives longer than this.
    pub max_lifetime: std::time::Duration,
    /// Connections served at once per listener; more wait in the accept queue.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            read_timeout: std::time::Duration::from_secs(10),
            max_lifetime: std::time::Duration::from_secs(300),
            max_connections: 128,
        }
    }
}

impl EmulatorConfig {
    pub fn new(service_listen: SocketAddr, state_dir: impl Into<PathBuf>) -> Self {
        EmulatorConfig {
            service_listen,
            device_listen: None,
            host_name: None,
            state_dir: state_dir.into(),
            hub: None,
            inject_429: 0,
            retry_after_secs: 1,
            assigning_polls: 1,
            limits: ConnectionLimits::default(),
        }
    }
}

/// Errors starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(transparent)]
    Invalid(#[from] crate::error::InvalidInput),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("emulator certificates: {0}")]
    Certificates(String),
}

impl crate::error::DomainError for EmulatorError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            EmulatorError::Invalid(_) => crate::error::ErrorKind::InvalidInput,
            _ => crate::error::ErrorKind::Failed,
        }
    }
    fn invalid_input(&self) -> Option<&crate::error::InvalidInput> {
        match self {
            EmulatorError::Invalid(i) => Some(i),
            _ => None,
        }
    }
}

/// A running emulator. Stops when [`Emulator::shutdown`] is called or it is dropped.
pub struct Emulator {
    service_addr: SocketAddr,
    device_addr: SocketAddr,
    /// `HostName` of the connection string (`host` on port 443, else `host:port`).
    service_host: String,
    /// The device API's `host[:port]`.
    device_host: String,
    id_scope: String,
    default_hub: String,
    ca_path: PathBuf,
    ca_pem: String,
    service_key: Zeroizing<Vec<u8>>,
    core: Arc<Mutex<Core>>,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// `name` as clients dial it on `port`: port-less on 443 (what Microsoft's SDKs require).
fn dial_name(name: &str, port: u16) -> String {
    let bracketed = if name.contains(':') {
        format!("[{name}]")
    } else {
        name.to_string()
    };
    if port == 443 {
        bracketed
    } else {
        format!("{bracketed}:{port}")
    }
}

/// Which API a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Service,
    Device,
    /// Both on one port: the service paths (`/enrollments`, `/registrations/{id}`, `/iothubs`,
    /// `/devices`) go to the service API, everything else (`/{idScope}/...`) to the device API.
    Both,
}

fn is_service_path(path: &str) -> bool {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(
        first.as_str(),
        "enrollments" | "enrollmentgroups" | "registrations" | "iothubs" | "devices"
    )
}

fn valid_hub(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

impl Emulator {
    /// Load or create the state in `config.state_dir`, bind both endpoints and start serving.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let default_hub = config
            .hub
            .clone()
            .unwrap_or_else(|| DEFAULT_HUB.to_string());
        if !valid_hub(&default_hub) {
            return Err(EmulatorError::Invalid(crate::error::InvalidInput::new(
                crate::error::Input::Hub,
                "must be a host name such as myhub.azure-devices.net",
            )));
        }
        let dir = config.state_dir.clone();
        let (persisted, secrets, ca_pem) = load_or_create(&dir)?;
        let ca = certs::P256Signer::from_pkcs8(&secrets.ca_key_pkcs8).ok_or_else(|| {
            StateError::Corrupt {
                path: state::secrets_file(&dir),
                reason: "the CA key is not a P-256 PKCS#8 key".into(),
            }
        })?;

        let service_listener =
            TcpListener::bind(config.service_listen)
                .await
                .map_err(|source| EmulatorError::Listen {
                    addr: config.service_listen,
                    source,
                })?;
        let service_addr =
            service_listener
                .local_addr()
                .map_err(|source| EmulatorError::Listen {
                    addr: config.service_listen,
                    source,
                })?;
        let shared = config.device_listen.is_none() && service_addr.port() == 443;
        let device_listener = match (shared, config.device_listen) {
            (true, _) => None,
            (false, d) => {
                let bind = d.unwrap_or(SocketAddr::new(config.service_listen.ip(), 0));
                Some(
                    TcpListener::bind(bind)
                        .await
                        .map_err(|source| EmulatorError::Listen { addr: bind, source })?,
                )
            }
        };
        let device_addr = match &device_listener {
            Some(l) => l.local_addr().map_err(|source| EmulatorError::Listen {
                addr: service_addr,
                source,
            })?,
            None => service_addr,
        };
        let host_name = match &config.host_name {
            Some(h) if valid_hub(h) || h.parse::<std::net::IpAddr>().is_ok() => {
                h.to_ascii_lowercase()
            }
            Some(_) => {
                return Err(EmulatorError::Invalid(crate::error::InvalidInput::new(
                    crate::error::Input::HostName,
                    "must be a DNS name that resolves to the listen address, e.g. localhost",
                )))
            }
            None if service_addr.ip() == std::net::Ipv4Addr::LOCALHOST
                && service_addr.port() == 443 =>
            {
                "localhost".to_string()
            }
            None if service_addr.ip().is_unspecified() => "127.0.0.1".to_string(),
            None => service_addr.ip().to_string(),
        };
        let service_host = dial_name(&host_name, service_addr.port());
        let device_host = if shared {
            service_host.clone()
        } else if config.host_name.is_some() {
            dial_name(&host_name, device_addr.port())
        } else {
            host_port(device_addr)
        };

        let mut hosts = vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            "::1".to_string(),
            host_name.clone(),
        ];
        for ip in [service_addr.ip(), device_addr.ip()] {
            if !ip.is_unspecified() {
                hosts.push(ip.to_string());
            }
        }
        let (server_der, server_key) = certs::make_server_cert(&ca, &hosts)
            .map_err(|e| EmulatorError::Certificates(e.to_string()))?;
        let ca_der = tls::certs_from_pem(&ca_pem)
            .map_err(|e| EmulatorError::Certificates(e.to_string()))?
            .remove(0);
        let chain = vec![CertificateDer::from(server_der), ca_der];
        let key = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.to_vec()));
        let cert_error = |e: rustls::Error| EmulatorError::Certificates(e.to_string());
        let service_tls = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(cert_error)?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key())
            .map_err(cert_error)?;
        let device_tls = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(cert_error)?
            .with_client_cert_verifier(Arc::new(verifier::PossessionVerifier {
                mandatory: !shared,
            }))
            .with_single_cert(chain, key())
            .map_err(cert_error)?;

        let mut service_hosts = vec![
            service_host.clone(),
            host_port(service_addr),
            format!("localhost:{}", service_addr.port()),
        ];
        if service_addr.ip().is_unspecified() {
            service_hosts.push(format!("127.0.0.1:{}", service_addr.port()));
        }
        let id_scope = persisted.id_scope.clone();
        let behaviour = Behaviour {
            retry_after_secs: config.retry_after_secs,
            assigning_polls: config.assigning_polls,
            default_hub: default_hub.clone(),
        };
        let mut core = Core::new(
            dir.clone(),
            persisted,
            secrets.service_key.clone(),
            service_hosts,
            behaviour,
        );
        core.throttle_service = config.inject_429;
        core.throttle_device = config.inject_429;
        let core = Arc::new(Mutex::new(core));
        let cancel = CancellationToken::new();
        let limits = Arc::new(config.limits.clone());
        let tasks = match device_listener {
            None => vec![tokio::spawn(serve(
                service_listener,
                Arc::new(device_tls),
                core.clone(),
                Api::Both,
                limits,
                cancel.clone(),
            ))],
            Some(device_listener) => vec![
                tokio::spawn(serve(
                    service_listener,
                    Arc::new(service_tls),
                    core.clone(),
                    Api::Service,
                    limits.clone(),
                    cancel.clone(),
                )),
                tokio::spawn(serve(
                    device_listener,
                    Arc::new(device_tls),
                    core.clone(),
                    Api::Device,
                    limits,
                    cancel.clone(),
                )),
            ],
        };
        Ok(Emulator {
            service_addr,
            device_addr,
            service_host,
            device_host,
            id_scope,
            default_hub,
            ca_path: std::path::absolute(state::ca_file(&dir))
                .unwrap_or_else(|_| state::ca_file(&dir)),
            ca_pem,
            service_key: secrets.service_key.clone(),
            core,
            cancel,
            tasks,
        })
    }

    /// `https://HOST[:PORT]` of the service API.
    pub fn service_endpoint(&self) -> String {
        format!("https://{}", self.service_host)
    }
    /// `HOST[:PORT]` of the device API (what goes in the device's global endpoint setting):
    /// port-less when it is 443.
    pub fn device_endpoint(&self) -> String {
        self.device_host.clone()
    }
    /// The socket address the device API listens on.
    pub fn device_socket_addr(&self) -> SocketAddr {
        self.device_addr
    }
    /// The socket address the service API listens on.
    pub fn service_socket_addr(&self) -> SocketAddr {
        self.service_addr
    }
    pub fn id_scope(&self) -> &str {
        &self.id_scope
    }
    pub fn default_hub(&self) -> &str {
        &self.default_hub
    }
    pub fn ca_certificate_path(&self) -> &Path {
        &self.ca_path
    }
    pub fn ca_certificate_pem(&self) -> &str {
        &self.ca_pem
    }
    /// The DPS service connection string (a secret).
    pub fn connection_string(&self) -> ConnectionString {
        ConnectionString::new(self.service_host.clone(), SERVICE_POLICY, &self.service_key)
    }
    /// An IoT Hub connection string for `hub` (a secret); use it with [`Emulator::hub_base_url`].
    pub fn hub_connection_string(&self, hub: &str) -> ConnectionString {
        ConnectionString::new(hub, HUB_POLICY, &self.service_key)
    }
    /// Where the emulator serves hub `hub`'s registry API.
    pub fn hub_base_url(&self, hub: &str) -> String {
        format!("{}/iothubs/{}", self.service_endpoint(), hub)
    }
    /// The start-up lines, one per line, exactly as `devkit dps-emulator` prints them
    /// (the second holds the connection string: a secret).
    pub fn banner(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "service endpoint: {}\nconnection string: {}\nid scope: {}\ndevice endpoint: {}\nca certificate: {}\n",
            self.service_endpoint(),
            self.connection_string().to_secret_string().as_str(),
            self.id_scope,
            self.device_endpoint(),
            self.ca_path.display()
        ))
    }
    /// Answer the next `n` service requests and `n` device registrations with 429.
    pub fn inject_429(&self, n: u32) {
        if let Ok(mut c) = self.core.lock() {
            c.throttle_service = n;
            c.throttle_device = n;
        }
    }
    /// Stop serving and wait for the listeners to close.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn load_or_create(dir: &Path) -> Result<(state::Persisted, state::Secrets, String), EmulatorError> {
    let persisted = state::Persisted::load(dir)?;
    let secrets = state::Secrets::load(dir)?;
    let ca_pem = match state::read_optional(&state::ca_file(dir))? {
        Some(b) => Some(String::from_utf8(b.to_vec()).map_err(|_| StateError::Read {
            path: state::ca_file(dir),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
        })?),
        None => None,
    };
    match (persisted, secrets, ca_pem) {
        (Some(p), Some(s), Some(ca)) => Ok((p, s, ca)),
        (None, None, None) => {
            let ca = certs::P256Signer::generate();
            let ca_der =
                certs::make_ca_cert(&ca).map_err(|e| EmulatorError::Certificates(e.to_string()))?;
            let ca_pem = crate::dps::cert::pem_encode(&ca_der);
            let secrets = state::Secrets {
                service_key: Zeroizing::new(rand::random::<[u8; 32]>().to_vec()),
                ca_key_pkcs8: ca.pkcs8(),
            };
            let persisted = state::Persisted {
                id_scope: format!("0ne{}", hex::encode_upper(rand::random::<[u8; 4]>())),
                ..Default::default()
            };
            secrets.save(dir)?;
            crate::fsutil::write_atomic(
                &state::ca_file(dir),
                ca_pem.as_bytes(),
                crate::fsutil::Mode::Public,
            )
            .map_err(StateError::from)?;
            persisted.save(dir)?;
            Ok((persisted, secrets, ca_pem))
        }
        _ => Err(StateError::Corrupt {
            path: dir.to_path_buf(),
            reason: "state.json, secrets.json and ca.pem must all be present or all absent".into(),
        }
        .into()),
    }
}

async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    core: Arc<Mutex<Core>>,
    api: Api,
    limits: Arc<ConnectionLimits>,
    cancel: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    // At most `max_connections` at once: beyond that, clients wait in the accept queue until
    // a connection ends (every one ends within the read timeout or the lifetime).
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = cancel.cancelled() => return,
        };
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = cancel.cancelled() => return,
        };
        let acceptor = acceptor.clone();
        let core = core.clone();
        let cancel = cancel.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let lifetime = tokio::time::sleep(limits.max_lifetime);
            let tls = tokio::select! {
                r = tokio::time::timeout(limits.read_timeout, acceptor.accept(tcp)) => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!("TLS handshake refused: {e}");
                        return;
                    }
                    Err(_) => return,
                },
                _ = cancel.cancelled() => return,
            };
            // The client's certificate, then the chain it sent (enrollment groups).
            let peer: Arc<Vec<Vec<u8>>> = Arc::new(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.to_vec()).collect())
                    .unwrap_or_default(),
            );
            let read_timeout = limits.read_timeout;
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let core = core.clone();
                let peer = peer.clone();
                let device_api = match api {
                    Api::Service => false,
                    Api::Device => true,
                    Api::Both => !is_service_path(req.uri().path()),
                };
                async move {
                    Ok::<_, std::convert::Infallible>(
                        handle(req, core, peer, device_api, read_timeout).await,
                    )
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.read_timeout)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                r = conn => if let Err(e) = r { tracing::debug!("connection: {e}") },
                _ = lifetime => tracing::debug!("connection closed: lifetime reached"),
                _ = cancel.cancelled() => {}
            }
        });
    }
}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    core: Arc<Mutex<Core>>,
    peer: Arc<Vec<Vec<u8>>>,
    device_api: bool,
    read_timeout: std::time::Duration,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let reply =
        match tokio::time::timeout(read_timeout, Limited::new(body, MAX_BODY).collect()).await {
            Err(_) => Reply::error(408, 408000, "Request body not received in time"),
            Ok(Err(_)) => Reply::error(413, 413000, "Request body too large"),
            Ok(Ok(b)) => {
                let body = b.to_bytes();
                let request = Request {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query: parts.uri.query(),
                    headers: &parts.headers,
                    body: &body,
                    peer_cert: peer.first().map(Vec::as_slice),
                    peer_chain: peer.get(1..).unwrap_or_default(),
                };
                match core.lock() {
                    Ok(mut core) if device_api => core.handle_device(&request),
                    Ok(mut core) => core.handle_service(&request),
                    Err(_) => Reply::error(500, 500000, "Internal error"),
                }
            }
        };
    let mut builder = hyper::Response::builder().status(reply.status);
    for (k, v) in reply.headers {
        builder = builder.header(k, v);
    }
    builder
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}
