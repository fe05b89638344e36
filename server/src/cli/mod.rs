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

/// A tokio runtime for subcommands that do async work (built only when needed, so that
/// quick commands such as `generate-cert` pay nothing for it).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
