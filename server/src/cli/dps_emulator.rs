//! `devkit dps-emulator --listen ADDR --emulator-dir DIR [--hub HOST]`: a local DPS (service and
//! device APIs over TLS, plus the registry of every hub it assigns to). Prints, one per line,
//! `service endpoint: ...`, `connection string: ...`, `id scope: ...`, `device endpoint: ...`,
//! `ca certificate: ...`, then serves until interrupted (Ctrl-C / SIGTERM).

use super::{CliError, CliResult};
use anyhow::Context;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use tasks::dps::emulator::{Emulator, EmulatorConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Service API address, e.g. 127.0.0.1:8443 (port 0: any free port). On port 443 the
    /// device API shares it and the connection string is port-less (what Microsoft's SDKs need).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: String,
    /// Device API address [default: the --listen address on port 443, else the --listen IP
    /// with any free port].
    #[arg(long, value_name = "ADDR")]
    device_listen: Option<String>,
    /// Host name clients use (connection string HostName, device endpoint, server certificate)
    /// [default: localhost for 127.0.0.1:443, else the --listen IP]. It must resolve to the
    /// listen address.
    #[arg(long, value_name = "NAME")]
    host_name: Option<String>,
    /// The emulator's own directory: enrollments, registrations, hub registries, the CA and
    /// the SAS key (not a virtual DevKit's `--sim-dir`).
    // `--state-dir`: the old name, kept as a hidden alias.
    #[arg(long = "emulator-dir", alias = "state-dir", value_name = "DIR")]
    emulator_dir: PathBuf,
    /// IoT hub host name assigned when an enrollment names none.
    #[arg(long, value_name = "HOST")]
    hub: Option<String>,
    /// Answer the first N service requests and the first N device registrations with 429.
    #[arg(long, value_name = "N", default_value_t = 0)]
    inject_429: u32,
    /// Retry-After seconds on 202 (assigning) and 429 answers.
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    retry_after: u32,
}

fn addr(flag: &str, text: &str) -> Result<SocketAddr, CliError> {
    text.parse().map_err(|_| {
        CliError::invalid(format!(
            "invalid {flag} {text:?}: expected IP:PORT, e.g. 127.0.0.1:8443"
        ))
    })
}

pub fn run(args: Args) -> CliResult {
    let mut config = EmulatorConfig::new(addr("--listen", &args.listen)?, &args.emulator_dir);
    config.device_listen = args
        .device_listen
        .as_deref()
        .map(|d| addr("--device-listen", d))
        .transpose()?;
    config.hub = args.hub.clone();
    config.host_name = args.host_name.clone();
    config.inject_429 = args.inject_429;
    config.retry_after_secs = args.retry_after;
    if !config.service_listen.ip().is_loopback() {
        eprintln!(
            "warning: listening on {}, not loopback: the emulator is for local development only",
            config.service_listen.ip()
        );
    }
    super::runtime().block_on(async move {
        let emulator = Emulator::start(config).await.map_err(|e| {
            if tasks::error::DomainError::is_invalid_input(&e) {
                CliError::Invalid(e.into())
            } else {
                CliError::Failed(anyhow::Error::new(e).context("cannot start the DPS emulator"))
            }
        })?;
        {
            let mut out = std::io::stdout().lock();
            out.write_all(emulator.banner().as_bytes())
                .and_then(|_| out.flush())
                .context("stdout")?;
        }
        eprintln!(
            "DPS emulator running (hub {}); Ctrl-C to stop",
            emulator.default_hub()
        );
        super::wait_for_shutdown().await;
        emulator.shutdown().await;
        Ok(())
    })
}
