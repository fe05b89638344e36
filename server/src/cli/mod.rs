//! One module per subcommand: argument parsing and rendering only; the work is in `tasks`.

use tasks::error::{DomainError, ErrorKind, Input, NextStep};
use vocab::{CliMessage, Flag, Hint};

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
pub mod vocab;

/// A subcommand's failure, classified for the exit code.
#[derive(Debug)]
pub enum CliError {
    /// Invalid input found by the adapter (a flag combination): exit 2. The message names
    /// the input and what is allowed.
    Invalid(anyhow::Error),
    /// Anything else the adapter found: exit 1.
    Failed(anyhow::Error),
    /// A task's error, with what the error model says about it (kind, input, hint, next
    /// actions); its exit code is the error's.
    Task(Box<TaskFailure>),
}

/// A task error as the CLI shows it: built once in [`CliError::from_domain`], rendered for a
/// terminal (stderr) or as the JSON error object (stdout, with `--json`).
#[derive(Debug)]
pub struct TaskFailure {
    pub exit_code: i32,
    pub kind: ErrorKind,
    pub input: Option<Input>,
    /// The message, an invalid input named by its flag.
    pub message: String,
    pub hint: Option<String>,
    pub next_actions: Vec<NextStep>,
    /// Members printed next to `error` in the JSON object (a failed compile's diagnostics,
    /// the checks of an incomplete setup).
    pub output: serde_json::Map<String, serde_json::Value>,
}

/// The JSON error object's `error` member (`--json`): the daemon's vocabulary (`kind` is the
/// daemon's `data.code`, `input` its `data.field`).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonError<'a> {
    pub kind: &'static str,
    pub input: Option<&'static str>,
    pub message: &'a str,
    pub hint: Option<&'a str>,
    pub next_actions: &'a [NextStep],
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

    /// The exit code: 2 for invalid input, 1 for anything else (the task error's own).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Invalid(_) => 2,
            CliError::Failed(_) => 1,
            CliError::Task(t) => t.exit_code,
        }
    }

    /// The error as a terminal shows it (without the `error: ` prefix): the message, then the
    /// hint and the next actions as the commands that do them.
    pub fn text(&self) -> String {
        match self {
            CliError::Invalid(e) | CliError::Failed(e) => format!("{e:#}"),
            CliError::Task(t) => {
                let mut text = t.message.clone();
                if let Some(h) = &t.hint {
                    text = format!("{text}\nhint: {h}");
                }
                if !t.next_actions.is_empty() {
                    let next: Vec<String> = t.next_actions.iter().map(Hint::hint).collect();
                    text = format!("{text}\nnext: {}", next.join("; or "));
                }
                text
            }
        }
    }

    /// The JSON error object `--json` prints on stdout:
    /// `{"error": {"kind", "input", "message", "hint", "nextActions"}}` (plus the command's
    /// own output members, such as a failed compile's `diagnostics`).
    pub fn json(&self) -> serde_json::Value {
        let (kind, message) = match self {
            CliError::Invalid(e) => (ErrorKind::InvalidInput, format!("{e:#}")),
            CliError::Failed(e) => (ErrorKind::Failed, format!("{e:#}")),
            CliError::Task(t) => (t.kind, t.message.clone()),
        };
        let (input, hint, next, output) = match self {
            CliError::Task(t) => (
                t.input,
                t.hint.as_deref(),
                &t.next_actions[..],
                Some(&t.output),
            ),
            _ => (None, None, &[][..], None),
        };
        let error = JsonError {
            kind: kind.code_name(),
            input: input.map(crate::lsp::vocab::field),
            message: &message,
            hint,
            next_actions: next,
        };
        let mut object = output.cloned().unwrap_or_default();
        object.insert(
            "error".into(),
            serde_json::to_value(error).unwrap_or_default(),
        );
        serde_json::Value::Object(object)
    }

    /// Print the error to stderr (and with `json`, the JSON error object to stdout) and
    /// return the exit code.
    pub fn report(&self, json: bool) -> i32 {
        eprintln!("error: {}", self.text());
        if json {
            println!("{}", self.json());
        }
        self.exit_code()
    }

    /// The same error with a hint (when it has none yet).
    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        if let (CliError::Task(t), Some(h)) = (&mut self, hint) {
            t.hint.get_or_insert(h);
        }
        self
    }

    /// The same error with `key` printed next to `error` in the JSON object.
    pub fn with_output(mut self, key: &str, value: serde_json::Value) -> Self {
        if let CliError::Failed(e) | CliError::Invalid(e) = &self {
            let code = self.exit_code();
            self = CliError::Task(Box::new(TaskFailure {
                exit_code: code,
                kind: if code == 2 {
                    ErrorKind::InvalidInput
                } else {
                    ErrorKind::Failed
                },
                input: None,
                message: format!("{e:#}"),
                hint: None,
                next_actions: Vec::new(),
                output: serde_json::Map::new(),
            }));
        }
        if let CliError::Task(t) = &mut self {
            t.output.insert(key.into(), value);
        }
        self
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Failed(e)
    }
}

impl CliError {
    /// The one conversion from a task error: the exit code and kind from the error model, an
    /// invalid input named by its flag, its hint and next actions (rendered as the commands
    /// and flags that do them, or as typed actions in JSON).
    pub fn from_domain<E: DomainError + Send + Sync + 'static>(e: E) -> Self {
        let input = e.input();
        let message = match (e.invalid_input(), input) {
            (Some(i), _) => i.cli_message(),
            // A missing input file: name the flag it came from.
            (None, Some(input)) => format!("invalid {}: {}", input.flag(), chain_text(&e)),
            (None, None) => chain_text(&e),
        };
        CliError::Task(Box::new(TaskFailure {
            exit_code: e.exit_code(),
            kind: e.kind(),
            input,
            message,
            hint: e.hint(),
            next_actions: e.next_actions(),
            output: serde_json::Map::new(),
        }))
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
            CliError::from(i).with_hint(Some(sample_hint.to_string()).filter(|h| !h.is_empty()))
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
/// End the process with `e`'s exit code when its JSON error object was already written into
/// the command's own streamed `--json` document: the human error on stderr only.
pub fn exit_after_document(e: &CliError) -> ! {
    eprintln!("error: {}", e.text());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(e.exit_code())
}

/// The exit status when standard output was closed under us: 128 + SIGPIPE, as a shell reports
/// a Unix tool that stopped because its reader (`| head -1`) went away.
pub const STDOUT_CLOSED: i32 = 141;

/// End the process because writing to standard output failed: quietly ([`STDOUT_CLOSED`])
/// when its reader went away, else with a one-line error and exit 1 (`> /dev/full`). For the
/// commands that write as they go (`logs`, `monitor`), and for a failing `print!` (main.rs).
pub fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(STDOUT_CLOSED);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1)
}

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
        e.text()
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
        assert_eq!(e.exit_code(), 2);
        assert!(
            text(&e).starts_with("invalid --id-scope: is required"),
            "{}",
            text(&e)
        );
        let e = CliError::from(BuildError::ToolNotFound {
            tool: BuildTool::ArduinoCli,
            configured: None,
        });
        assert_eq!(e.exit_code(), 1);
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
        assert_eq!(e.exit_code(), 2);
        let t = text(&e);
        assert!(
            t.starts_with("invalid --arduino-builder: arduino-builder not found: the configured arduino-builder /nope/arduino-builder does not exist")
                && t.contains("apt-get install arduino-builder")
                && t.contains("--arduino-builder FILE")
                && !t.contains("arduino-cli not found"),
            "{t}"
        );
        // An Arduino15 folder without the platform: the flag is named only when it was given.
        let missing = |configured| {
            CliError::from(BuildError::ArduinoDataMissing {
                data: Some("/home/me/.arduino15".into()),
                configured,
                cli_missing: !configured,
            })
        };
        let e = missing(true);
        assert_eq!(e.exit_code(), 2);
        assert!(
            text(&e).starts_with("invalid --arduino-data: "),
            "{}",
            text(&e)
        );
        let e = missing(false);
        let t = text(&e);
        assert_eq!(e.exit_code(), 1);
        assert!(
            !t.contains("invalid --arduino-data")
                && t.contains(
                    "the default Arduino data folder, /home/me/.arduino15, does not exist"
                )
                && t.contains("\nnext: install arduino-cli and the AZ3166 platform"),
            "{t}"
        );
    }

    /// `--json`: one object, `error` holding the kind, the input's param name, the message,
    /// the hint and the typed next actions.
    #[test]
    fn the_json_error_object_carries_the_error_model() {
        let e = CliError::from(BuildError::from(InvalidInput::new(
            Input::IdScope,
            "is required",
        )));
        let v = e.json();
        assert_eq!(
            v,
            serde_json::json!({"error": {
                "kind": "invalidParams",
                "input": "idScope",
                "message": "invalid --id-scope: is required",
                "hint": null,
                "nextActions": [{"action": "configureDps"}]
            }})
        );
        let e = CliError::invalid("--a and --b conflict").with_output("x", 1.into());
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.json()["error"]["kind"], "invalidParams");
        assert_eq!(e.json()["error"]["input"], serde_json::Value::Null);
        assert_eq!(e.json()["x"], 1);
        let e = CliError::Failed(anyhow::anyhow!("boom")).with_hint(Some("h".into()));
        assert_eq!(e.json()["error"]["kind"], "taskFailed");
        assert_eq!(e.json()["error"]["nextActions"], serde_json::json!([]));
        // The terminal: message, hint, then the next actions as commands.
        let e = CliError::from(BuildError::from(InvalidInput::new(Input::IdScope, "x")))
            .with_hint(Some("try this".into()));
        assert_eq!(
            e.text(),
            "invalid --id-scope: x\nhint: try this\nnext: give the DPS settings with --id-scope and --global-endpoint"
        );
        assert_eq!(e.json()["error"]["hint"], "try this");
    }
}
