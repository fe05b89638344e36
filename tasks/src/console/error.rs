//! Errors talking to the console. None of them carries a secret.

use super::reply::ReplyKind;
use super::transport::OpenFailure;
use super::GUIDANCE;
use crate::error::{DomainError, ErrorKind, Input, InvalidInput, NextAction, NextStep};
use crate::identity::IdentityError;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Invalid input, refused before anything was sent (the CLI exits 2).
    #[error("{0} (nothing was sent)")]
    Refused(InvalidInput),
    #[error("cannot open serial port {port}: {source}")]
    Open {
        port: String,
        #[source]
        source: serialport::Error,
    },
    #[error("{GUIDANCE} (waited {waited_secs} s on {port})")]
    NotInConfigMode { port: String, waited_secs: u64 },
    #[error("no answer to `{command}` from {port} within {waited_secs} s; is the DevKit still in configuration mode?")]
    Timeout {
        port: String,
        command: String,
        waited_secs: u64,
    },
    #[error("serial port {port} went away while waiting for the answer to `{command}` ({detail}); was the DevKit unplugged or reset? Nothing was confirmed")]
    PortGone {
        port: String,
        command: String,
        detail: String,
    },
    #[error("serial port {port}: {source}")]
    Io {
        port: String,
        #[source]
        source: io::Error,
    },
    #[error("the DevKit refused `{command}`: {}", describe(kind, reply))]
    Rejected {
        command: String,
        kind: ReplyKind,
        reply: String,
    },
    #[error("unexpected answer from the DevKit to `{command}`: {detail}")]
    Protocol { command: String, detail: String },
    /// A generated UDS could not be saved (nothing was sent).
    #[error("cannot save the generated UDS (nothing was sent): {0}")]
    SaveUds(#[source] IdentityError),
    /// The generated UDS was sent but not confirmed: the device may hold it, its file keeps it.
    #[error("{source}; the UDS sent is kept in {}", path.display())]
    UdsKept {
        path: PathBuf,
        #[source]
        source: Box<ConsoleError>,
    },
    #[error("cancelled")]
    Cancelled,
}

impl ConsoleError {
    pub(crate) fn refused(input: Input, reason: impl Into<String>) -> Self {
        ConsoleError::Refused(InvalidInput::new(input, reason))
    }
}

impl DomainError for ConsoleError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConsoleError::Refused(_) => ErrorKind::InvalidInput,
            ConsoleError::Open { source, .. } => OpenFailure::of(source).kind(),
            ConsoleError::SaveUds(e) => e.kind(),
            ConsoleError::UdsKept { source, .. } => source.kind(),
            ConsoleError::Cancelled => ErrorKind::Cancelled,
            _ => ErrorKind::Device,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            ConsoleError::Refused(i) => Some(i),
            ConsoleError::SaveUds(e) => e.invalid_input(),
            _ => None,
        }
    }
    fn input(&self) -> Option<Input> {
        match self {
            ConsoleError::Open { source, .. } => OpenFailure::of(source).input(),
            ConsoleError::SaveUds(e) => e.input(),
            e => e.invalid_input().map(|i| i.input),
        }
    }
    fn next_actions(&self) -> Vec<NextStep> {
        match self {
            ConsoleError::NotInConfigMode { .. } | ConsoleError::Timeout { .. } => vec![
                NextStep::new(NextAction::EnterConfigMode),
                NextStep::new(NextAction::Retry),
            ],
            ConsoleError::Open { source, .. } => OpenFailure::of(source).next_actions(),
            ConsoleError::PortGone { .. } => vec![NextStep::new(NextAction::SelectPort)],
            ConsoleError::SaveUds(e) => e.next_actions(),
            ConsoleError::UdsKept { source, .. } => source.next_actions(),
            _ => Vec::new(),
        }
    }
}

fn describe(kind: &ReplyKind, reply: &str) -> String {
    let what = match kind {
        ReplyKind::Usage => "missing or malformed argument".to_string(),
        ReplyKind::InvalidValue => "the value is invalid for the device".to_string(),
        ReplyKind::EepromWrite { zone } => format!(
            "writing the secure chip failed (zone {})",
            zone.map_or("?".into(), |z| format!("0x{z:02x}"))
        ),
        ReplyKind::EepromVerify => "the secure chip did not read back what was written".into(),
        ReplyKind::SyntaxError => "syntax error (unterminated quote)".into(),
        ReplyKind::InvalidCommand { name } => format!("unknown command `{name}` (older firmware?)"),
        ReplyKind::BufferOverflow => "the line overflowed the device's input buffer".into(),
        ReplyKind::Success | ReplyKind::Output => "unexpected".into(),
    };
    let reply = reply.trim().replace("\r\n", " / ");
    if reply.is_empty() {
        what
    } else {
        format!("{what} (device said: {reply})")
    }
}
