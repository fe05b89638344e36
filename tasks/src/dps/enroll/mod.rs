//! Enrolling a device's alias certificate: the one task behind `devkit enroll` and the
//! daemon's `devkit/enroll`, and the rules `devkit provision` shares with it.
//!
//! [`EnrollRequest`] (the inputs as an adapter received them) → [`EnrollRequest::plan`] (every
//! input checked, nothing sent) → [`run`] (the enrollment written, then recorded in the project
//! state) → [`EnrollReport`] (what `--json` prints and the daemon returns). The adapters only
//! map their flags or params to the request and render the report, so that they cannot drift
//! apart again (they did: one failed where the other warned, one could not re-enable).
//!
//! - [`certificate`]: which certificate (the one named, else the one `generate-cert` last wrote
//!   for the project), that it is an alias certificate (users enrolling the DeviceID
//!   certificate is a known failure) whose CN is a registration ID DPS accepts, and recording
//!   what was enrolled.
//! - [`settings`]: what the individual enrollment holds besides the certificate, and the
//!   read-modify-write through the REST API.
//! - [`target`]: REST or `az`, and which DPS.
//! - [`group`]: X.509 CA enrollment groups (`--group`), refusing the RIoT certificates as CA.
//! - [`task`]: request, plan, run, report.

pub mod batch;
pub mod certificate;
pub mod group;
pub mod journal;
pub mod settings;
pub mod target;
pub mod task;

pub use batch::{run_batch, BatchEnrollPlan, BatchEnrollReport, BatchEnrollRequest};
pub use certificate::{record_enrolled, resolve_certificate, EnrollCertificate};
pub use group::{run_group, GroupEnrollPlan, GroupEnrollReport, GroupEnrollRequest};
pub use settings::{enroll_rest, EnrollmentSettings};
pub use target::{select_target, EnrollBackend, EnrollVia};
pub use task::{run, EnrollPlan, EnrollReport, EnrollRequest};

use super::DpsError;
use crate::error::{DomainError, ErrorKind, Input, InvalidInput, NextAction, NextStep};
use crate::project::ProjectError;
use std::path::PathBuf;

/// Errors of an enrollment. Messages never contain secrets (a certificate is public; a
/// connection string is only ever named).
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("the project at {0} has no generated certificate: generate the certificate first, or name the certificate to enroll")]
    NoGeneratedCertificate(PathBuf),
    #[error("cannot read the certificate {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    InvalidCertificate { path: PathBuf, reason: String },
    #[error("{value:?}: {reason}")]
    InvalidSetting {
        input: Input,
        value: String,
        reason: &'static str,
    },
    /// Both "disable" and "enable" were asked for.
    #[error("the enrollment cannot be both disabled and enabled: ask for one")]
    ContradictoryStatus,
    /// A connection string, CA file or DPS name was refused.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// DPS (or `az`) refused or failed: nothing was enrolled.
    #[error(transparent)]
    Dps(#[from] DpsError),
    /// A batch's journal or report could not be written (what DPS confirmed before is kept).
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DomainError for EnrollError {
    fn kind(&self) -> ErrorKind {
        match self {
            EnrollError::Unreadable { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ErrorKind::NotFound
            }
            EnrollError::Project(e) => e.kind(),
            EnrollError::Dps(e) => e.kind(),
            EnrollError::Write { .. } => ErrorKind::Failed,
            _ => ErrorKind::InvalidInput,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            EnrollError::Invalid(i) => Some(i),
            EnrollError::Dps(e) => e.invalid_input(),
            _ => None,
        }
    }
    /// The input the error is about, when it is the caller's input.
    fn input(&self) -> Option<Input> {
        match self {
            EnrollError::NoGeneratedCertificate(_)
            | EnrollError::Unreadable { .. }
            | EnrollError::InvalidCertificate { .. } => Some(Input::Cert),
            EnrollError::InvalidSetting { input, .. } => Some(*input),
            EnrollError::Invalid(i) => Some(i.input),
            EnrollError::Dps(e) => e.input(),
            EnrollError::ContradictoryStatus
            | EnrollError::Project(_)
            | EnrollError::Write { .. } => None,
        }
    }
    fn next_actions(&self) -> Vec<NextStep> {
        match self {
            EnrollError::NoGeneratedCertificate(_) => vec![NextAction::RegenerateCert.into()],
            EnrollError::Dps(e) => e.next_actions(),
            EnrollError::Write { .. } => vec![NextAction::Retry.into()],
            _ => Vec::new(),
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            EnrollError::Dps(e) => e.hint(),
            _ => None,
        }
    }
}
