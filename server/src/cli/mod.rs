//! One module per subcommand: argument parsing and rendering only; the work is in `tasks`.

use tasks::error::DomainError;

pub mod build;
pub mod device_upload;
pub mod doctor;
pub mod dps_emulator;
pub mod enroll;
pub mod enroll_batch;
pub mod generate_cert;
pub mod inspect_cert;
pub mod logs;
pub mod lsp;
pub mod monitor;
pub mod ports;
pub mod provision;
pub mod render;
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

/// An error and its causes, `: `-joined, leaving out a cause the text already says (domain
/// messages often embed their source: "cannot open serial port X: No such file or directory").
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let cause = s.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = s.source();
    }
    text
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

impl CliError {
    /// The one conversion from a task error: the exit code from its kind, an invalid input
    /// named by its flag, next actions rendered as the commands and flags that do them.
    pub fn from_domain<E: DomainError + Send + Sync + 'static>(e: E) -> Self {
        let code = e.exit_code();
        let next: Vec<String> = e
            .next_actions()
            .iter()
            .map(tasks::error::NextStep::cli_hint)
            .collect();
        let cli_message = e.invalid_input().map(|i| i.cli_message());
        let flag = e.input().map(|i| i.flag());
        let text = match (cli_message, flag) {
            (Some(m), _) => m,
            // A missing input file: name the flag it came from.
            (None, Some(flag)) => format!("invalid {flag}: {}", chain_text(&e)),
            (None, None) => chain_text(&e),
        };
        // The cause first, then what it usually means, then what to do.
        let text = match e.hint() {
            Some(hint) => format!("{text}\nhint: {hint}"),
            None => text,
        };
        let err = if next.is_empty() {
            anyhow::anyhow!(text)
        } else {
            anyhow::anyhow!("{text}\nnext: {}", next.join("; or "))
        };
        match code {
            2 => CliError::Invalid(err),
            _ => CliError::Failed(err),
        }
    }
}

macro_rules! from_domain {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::from_domain(e)
            }
        }
    )*};
}

tasks::for_each_domain_error!(from_domain);

pub type CliResult = Result<(), CliError>;

/// A UDS from a file or stdin through `tasks::identity::read_uds` (the one reader): warnings
/// go to stderr; a refused published sample ends with `sample_hint` (what to do instead).
pub fn read_uds(
    source: tasks::identity::UdsSource<'_>,
    input: &str,
    allow_sample: bool,
    sample_hint: &str,
) -> Result<tasks::identity::Uds, CliError> {
    use tasks::identity::IdentityError;
    let read = tasks::identity::read_uds(source, input, allow_sample).map_err(|e| match e {
        IdentityError::SampleUds(i) => {
            CliError::invalid(format!("{}; {sample_hint}", i.cli_message()))
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
pub fn read_secret_text(
    source: tasks::fsutil::SecretSource<'_>,
    input: &str,
) -> Result<zeroize::Zeroizing<String>, CliError> {
    tasks::fsutil::read_secret_text(source, input).map_err(|e| CliError::Invalid(e.into()))
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

#[cfg(test)]
mod tests {
    use super::{chain_text, CliError};
    use tasks::build::{BuildError, BuildTool};
    use tasks::error::{Input, InvalidInput};

    fn text(e: &CliError) -> String {
        match e {
            CliError::Invalid(e) | CliError::Failed(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_cause_the_message_already_says_is_not_repeated() {
        #[derive(Debug)]
        struct E(&'static str, std::io::Error);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.1)
            }
        }
        let missing =
            || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = E(
            "cannot open serial port /dev/x: No such file or directory",
            missing(),
        );
        assert_eq!(
            chain_text(&e),
            "cannot open serial port /dev/x: No such file or directory"
        );
        let e = E("reading the state", std::io::Error::other("denied"));
        assert_eq!(chain_text(&e), "reading the state: denied");
    }

    #[test]
    fn exit_codes_and_flags_come_from_the_error_model() {
        let e = CliError::from(BuildError::from(InvalidInput::new(
            Input::IdScope,
            "is required",
        )));
        assert!(matches!(e, CliError::Invalid(_)));
        assert!(
            text(&e).starts_with("invalid --id-scope: is required"),
            "{}",
            text(&e)
        );
        let e = CliError::from(BuildError::ToolNotFound {
            tool: BuildTool::ArduinoCli,
            configured: None,
        });
        assert!(matches!(e, CliError::Failed(_)));
        assert!(
            text(&e).contains("\nnext: ") && text(&e).contains("--arduino-cli FILE"),
            "{}",
            text(&e)
        );
        // arduino-builder chosen and missing: named, with the Debian package, its flag as the
        // next step; a configured path that does not exist is the caller's input (exit 2).
        let e = CliError::from(BuildError::ToolNotFound {
            tool: BuildTool::ArduinoBuilder,
            configured: Some("/nope/arduino-builder".into()),
        });
        assert!(matches!(e, CliError::Invalid(_)));
        let t = text(&e);
        assert!(
            t.starts_with("invalid --arduino-builder: arduino-builder not found: the configured arduino-builder /nope/arduino-builder does not exist")
                && t.contains("apt-get install arduino-builder")
                && t.contains("--arduino-builder FILE")
                && !t.contains("arduino-cli not found"),
            "{t}"
        );
    }
}
