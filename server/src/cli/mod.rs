//! One module per subcommand: argument parsing and rendering only; the work is in `tasks`.

pub mod build;
pub mod device_upload;
pub mod doctor;
pub mod dps_emulator;
pub mod enroll;
pub mod generate_cert;
pub mod inspect_cert;
pub mod logs;
pub mod lsp;
pub mod monitor;
pub mod ports;
pub mod provision;
pub mod set_uds;
pub mod set_wifi;
pub mod sim;
pub mod upload;

/// A subcommand's failure, classified for the exit code.
#[derive(Debug)]
pub enum CliError {
    /// Invalid input: exit 2. The message names the input and what is allowed.
    Invalid(anyhow::Error),
    /// Anything else: exit 1.
    Failed(anyhow::Error),
}

impl CliError {
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        CliError::Invalid(anyhow::anyhow!("{msg}"))
    }
    /// Print the error to stderr and return the exit code.
    pub fn report(&self) -> i32 {
        match self {
            CliError::Invalid(e) => {
                eprintln!("error: {e:#}");
                2
            }
            CliError::Failed(e) => {
                eprintln!("error: {e:#}");
                1
            }
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Failed(e)
    }
}

impl From<tasks::identity::IdentityError> for CliError {
    fn from(e: tasks::identity::IdentityError) -> Self {
        if e.is_invalid_input() {
            CliError::Invalid(e.into())
        } else {
            CliError::Failed(e.into())
        }
    }
}

pub type CliResult = Result<(), CliError>;

/// A UDS from a file or stdin through `tasks::identity::read_uds` (the one reader): warnings
/// go to stderr; a refused published sample ends with `sample_hint` (what to do instead).
pub fn read_uds(source: tasks::identity::UdsSource<'_>, input: &str, allow_sample: bool, sample_hint: &str) -> Result<tasks::identity::Uds, CliError> {
    use tasks::identity::{IdentityError, SAMPLE_UDS_REFUSAL};
    let read = tasks::identity::read_uds(source, input, allow_sample).map_err(|e| match e {
        IdentityError::Invalid { input, reason } if reason == SAMPLE_UDS_REFUSAL => {
            CliError::invalid(format!("invalid {input}: {reason}; {sample_hint}"))
        }
        e => e.into(),
    })?;
    for w in &read.warnings {
        eprintln!("warning: {w}");
    }
    Ok(read.uds)
}

/// A secret text (Wi-Fi password, connection string) from a file or stdin through
/// `tasks::fsutil::read_secret_text` (bounded; one trailing line ending removed).
pub fn read_secret_text(source: tasks::fsutil::SecretSource<'_>, input: &str) -> Result<zeroize::Zeroizing<String>, CliError> {
    tasks::fsutil::read_secret_text(source, input).map_err(|e| CliError::Invalid(e.into()))
}

/// A small input file (certificate, CA bundle) read within `limit` bytes, as text.
pub fn read_text_file(path: &std::path::Path, input: &str, limit: u64) -> Result<String, CliError> {
    let bytes = tasks::fsutil::read_bounded(path, input, limit).map_err(|e| CliError::Invalid(e.into()))?;
    String::from_utf8(bytes).map_err(|_| CliError::invalid(format!("invalid {input}: is not UTF-8 text")))
}

/// A tokio runtime for subcommands that do async work (built only when needed, so that
/// quick commands such as `generate-cert` pay nothing for it).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Ctrl-C, or SIGTERM on Unix (tokio has no SIGTERM on Windows): how long-running
/// subcommands (sim, monitor, dps-emulator, provision) learn to stop cleanly.
pub async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
