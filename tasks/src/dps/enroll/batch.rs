//! Enrolling a factory batch: every registration ID of a `generate-cert --batch` manifest with
//! its `<cert dir>/<registration id>.pem`, through DPS bulk enrollment operations.
//!
//! [`BatchEnrollRequest`] → [`BatchEnrollRequest::plan`] (the manifest, every registration ID
//! and the connection string checked; nothing sent) → [`run_batch`] → [`BatchEnrollReport`].
//!
//! Per chunk of at most [`BULK_CHUNK`] rows (DPS's bulk limit):
//! 1. rows the journal says DPS confirmed with the same certificate are skipped;
//! 2. the rest go out as one bulk `create`: a new enrollment costs one tenth of a request;
//! 3. the ones that exist (409) are read: the same certificate (and nothing else asked to
//!    change) is left as it is, so its ETag stays; another certificate is replaced
//!    read-modify-write ([`EnrollmentSettings::apply_to`], as single enroll does) in one bulk
//!    `updateIfMatchETag`, so a concurrent change is a 412 for that row, never overwritten;
//! 4. what DPS confirmed is appended to the [journal](super::journal) and synced, then the
//!    rows go to the report CSV.
//!
//! 429 and 5xx answers are retried by the client after `Retry-After` (DPS's quota is 1,000
//! service operations per minute per unit; a bulk request of ten is one request). A chunk whose
//! answer never came (cancelled, killed) is not journaled: the next run sends it again, and
//! step 3 makes that harmless.

use super::journal::{journal_path, Journal};
use super::{resolve_certificate, EnrollCertificate, EnrollError, EnrollmentSettings};
use crate::dps::enrollment::{BulkMode, IndividualEnrollment};
use crate::dps::retry::RetryPolicy;
use crate::dps::service::BULK_CHUNK;
use crate::dps::{ClientOptions, ConnectionString, DpsError, ServiceClient};
use crate::error::{Input, InvalidInput, NextAction, NextStep};
use crate::identity::batch::parse_manifest;
use crate::progress::{CancellationToken, Progress};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// DPS's documented quota: 1,000 service operations per minute per unit (dps-api.md §5).
/// A batch paces its requests to it by default, so that it is not throttled at all.
pub const DPS_REQUESTS_PER_MINUTE: u32 = 1000;

/// At most this many failed rows are listed in the report (all are in the report CSV).
pub const REPORT_FAILURES: usize = 100;

/// A batch enrollment as an adapter receives it.
#[derive(Default)]
pub struct BatchEnrollRequest {
    /// The DPS service connection string text (its first non-empty line is used).
    pub connection_string: Option<Zeroizing<String>>,
    /// A CA certificate file to trust for the service (the DPS emulator's).
    pub ca_file: Option<PathBuf>,
    /// The `generate-cert --batch` manifest.
    pub manifest: PathBuf,
    /// Where `<registration id>.pem` of every row is.
    pub cert_dir: PathBuf,
    /// The report CSV; `None`: `<manifest>.enroll-report.csv` next to the manifest.
    pub report_csv: Option<PathBuf>,
    /// What every enrollment holds besides its certificate.
    pub settings: EnrollmentSettings,
    /// Requests sent per minute at most; `None`: [`DPS_REQUESTS_PER_MINUTE`] (one unit's quota),
    /// `Some(0)`: no pacing (429s are still honoured).
    pub requests_per_minute: Option<u32>,
}

/// A checked batch: nothing has been sent or written yet.
pub struct BatchEnrollPlan {
    pub manifest: PathBuf,
    pub cert_dir: PathBuf,
    pub journal: PathBuf,
    pub report_csv: PathBuf,
    /// `(manifest line, registration ID)` in manifest order, each ID once.
    pub rows: Vec<(usize, String)>,
    pub settings: EnrollmentSettings,
    pub warnings: Vec<String>,
    /// How patiently throttling is waited out (a batch waits longer than a single enroll).
    pub retry: RetryPolicy,
    /// The least time between two requests (zero: no pacing).
    pub request_interval: Duration,
    cs: ConnectionString,
    ca_pem: Option<String>,
}

impl BatchEnrollRequest {
    /// Check every input; nothing is sent or written. Reads the manifest and the CA file
    /// (blocking: the daemon calls it on `spawn_blocking`). Certificates are read per chunk
    /// as the run goes, so a missing one fails its row, not the batch.
    pub fn plan(self) -> Result<BatchEnrollPlan, EnrollError> {
        let cs = match self.connection_string.as_deref() {
            Some(text) => ConnectionString::parse_file_text(text)
                .map_err(|e| InvalidInput::new(Input::ConnectionString, e.to_string()))?,
            None => {
                return Err(InvalidInput::new(
                    Input::ConnectionString,
                    "is required: the DPS service connection string",
                )
                .into())
            }
        };
        self.settings.validate()?;
        let ca_pem = match &self.ca_file {
            Some(path) => Some(super::task::read_ca(path)?),
            None => None,
        };
        let name = format!("manifest {:?}", self.manifest.display().to_string());
        let text = crate::fsutil::read_text_bounded(
            &self.manifest,
            &name,
            crate::fsutil::limits::MANIFEST,
        )
        .map_err(|e| e.into_invalid(Input::Manifest))?;
        let base = self.manifest.parent().unwrap_or(Path::new("."));
        let parsed = parse_manifest(&text, base, &name).map_err(invalid_manifest)?;
        let mut first_line: HashMap<String, usize> = HashMap::with_capacity(parsed.len());
        let mut rows = Vec::with_capacity(parsed.len());
        for row in &parsed {
            let id = row.registration_id().map_err(invalid_manifest)?.to_string();
            if let Some(first) = first_line.insert(id.clone(), row.line) {
                return Err(InvalidInput::new(
                    Input::Manifest,
                    format!(
                        "manifest line {}: registration ID {id} already used on manifest line {first}",
                        row.line
                    ),
                )
                .into());
            }
            rows.push((row.line, id));
        }
        if !self.cert_dir.is_dir() {
            return Err(InvalidInput::new(
                Input::CertDir,
                format!(
                    "{} is not a directory (the --out-dir of generate-cert --batch)",
                    self.cert_dir.display()
                ),
            )
            .into());
        }
        let manifest = std::path::absolute(&self.manifest).unwrap_or(self.manifest);
        let report_csv = self.report_csv.unwrap_or_else(|| {
            let mut n = manifest.file_name().unwrap_or_default().to_os_string();
            n.push(".enroll-report.csv");
            manifest.with_file_name(n)
        });
        let per_minute = self.requests_per_minute.unwrap_or(DPS_REQUESTS_PER_MINUTE);
        let request_interval = match per_minute {
            0 => Duration::ZERO,
            n => Duration::from_secs(60) / n,
        };
        Ok(BatchEnrollPlan {
            request_interval,
            journal: journal_path(&manifest),
            manifest,
            cert_dir: self.cert_dir,
            report_csv,
            rows,
            settings: self.settings,
            warnings: Vec::new(),
            retry: RetryPolicy {
                max_attempts: 12,
                initial_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(60),
            },
            cs,
            ca_pem,
        })
    }
}

fn invalid_manifest(e: crate::identity::IdentityError) -> EnrollError {
    use crate::error::DomainError;
    match e.invalid_input() {
        Some(i) => EnrollError::Invalid(i.clone()),
        None => InvalidInput::new(Input::Manifest, e.to_string()).into(),
    }
}

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RowResult {
    /// A new enrollment.
    Created,
    /// The enrollment held another certificate: replaced read-modify-write.
    Updated,
    /// The enrollment already held this certificate: not rewritten (its ETag stays).
    Unchanged,
    /// The journal says an earlier run enrolled this certificate: nothing sent.
    Skipped,
    /// Not enrolled: the certificate could not be read, or DPS refused it.
    Failed,
}

impl RowResult {
    /// The word in the report CSV and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            RowResult::Created => "created",
            RowResult::Updated => "updated",
            RowResult::Unchanged => "unchanged",
            RowResult::Skipped => "skipped",
            RowResult::Failed => "failed",
        }
    }
}

/// A row that was not enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchEnrollFailure {
    pub line: usize,
    pub registration_id: String,
    /// DPS's error code, when DPS refused it.
    pub error_code: Option<u32>,
    pub message: String,
}

/// What a batch did: what `devkit enroll --batch --json` prints and `devkit/enroll` with a
/// batch returns. Counts, not rows: the rows are in the report CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchEnrollReport {
    pub manifest: PathBuf,
    /// The journal of what DPS confirmed (a re-run skips those rows).
    pub journal: PathBuf,
    /// Registration ID, thumbprint, result and DPS error code of every row.
    pub report_csv: PathBuf,
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rows an earlier run enrolled (from the journal): nothing was sent for them.
    pub skipped: usize,
    pub failed: usize,
    /// Bulk and read requests sent (retries not counted).
    pub requests: usize,
    /// The first [`REPORT_FAILURES`] failed rows.
    pub failures: Vec<BatchEnrollFailure>,
    pub warnings: Vec<String>,
    pub next_actions: Vec<NextStep>,
}

/// One row of the chunk being enrolled.
struct Pending {
    line: usize,
    id: String,
    cert: EnrollCertificate,
}

/// The report CSV, written as rows finish and renamed into place at the end.
struct ReportCsv {
    tmp: tempfile::NamedTempFile,
    out: std::io::BufWriter<std::fs::File>,
}

impl ReportCsv {
    fn create(path: &Path) -> std::io::Result<ReportCsv> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".devkit-report")
            .tempfile_in(dir)?;
        let mut out = std::io::BufWriter::new(tmp.as_file().try_clone()?);
        writeln!(
            out,
            "registration_id,sha256_thumbprint,result,error_code,message"
        )?;
        Ok(ReportCsv { tmp, out })
    }

    fn row(
        &mut self,
        id: &str,
        thumbprint: &str,
        result: RowResult,
        error_code: Option<u32>,
        message: &str,
    ) -> std::io::Result<()> {
        let code = error_code.map(|c| c.to_string()).unwrap_or_default();
        // Messages are ours or DPS's: quote them, doubling quotes (RFC 4180).
        let message = message.replace('"', "\"\"").replace(['\r', '\n'], " ");
        writeln!(
            self.out,
            "{id},{thumbprint},{},{code},\"{message}\"",
            result.as_str()
        )
    }

    fn finish(mut self, path: &Path) -> std::io::Result<()> {
        self.out.flush()?;
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Counts and the listed failures, as rows finish.
struct Tally {
    report: BatchEnrollReport,
    csv: ReportCsv,
}

impl Tally {
    fn row(
        &mut self,
        line: usize,
        id: &str,
        thumbprint: &str,
        result: RowResult,
        failure: Option<(Option<u32>, String)>,
    ) -> Result<(), EnrollError> {
        let r = &mut self.report;
        match result {
            RowResult::Created => r.created += 1,
            RowResult::Updated => r.updated += 1,
            RowResult::Unchanged => r.unchanged += 1,
            RowResult::Skipped => r.skipped += 1,
            RowResult::Failed => r.failed += 1,
        }
        let (code, message) = failure.unwrap_or((None, String::new()));
        self.csv
            .row(id, thumbprint, result, code, &message)
            .map_err(|e| io_error(&r.report_csv, e))?;
        if result == RowResult::Failed && r.failures.len() < REPORT_FAILURES {
            r.failures.push(BatchEnrollFailure {
                line,
                registration_id: id.to_string(),
                error_code: code,
                message,
            });
        }
        Ok(())
    }
}

fn io_error(path: &Path, source: std::io::Error) -> EnrollError {
    EnrollError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Enroll the batch. Blocking file work (certificates, journal, report) is small per chunk and
/// done inline; the daemon runs this on its own task. Cancellation is honoured between chunks
/// and inside requests; what DPS confirmed before is in the journal, so the next run resumes.
pub async fn run_batch(
    plan: BatchEnrollPlan,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<BatchEnrollReport, EnrollError> {
    let BatchEnrollPlan {
        manifest,
        cert_dir,
        journal: journal_file,
        report_csv,
        rows,
        settings,
        warnings,
        retry,
        request_interval,
        cs,
        ca_pem,
    } = plan;
    if cancel.is_cancelled() {
        return Err(DpsError::Cancelled.into());
    }
    let host = cs.host_name().to_string();
    let client = ServiceClient::new(
        cs,
        ClientOptions {
            ca_pem,
            retry,
            cancel: cancel.clone(),
            ..Default::default()
        },
    )?;
    let mut journal =
        Journal::open(&journal_file, &host).map_err(|e| io_error(&journal_file, e))?;
    let csv = ReportCsv::create(&report_csv).map_err(|e| io_error(&report_csv, e))?;
    let total = rows.len();
    let mut pacer = Pacer {
        interval: request_interval,
        next: tokio::time::Instant::now(),
        cancel: cancel.clone(),
        sent: 0,
    };
    let mut tally = Tally {
        report: BatchEnrollReport {
            manifest,
            journal: journal_file.clone(),
            report_csv: report_csv.clone(),
            rows: total,
            created: 0,
            updated: 0,
            unchanged: 0,
            skipped: 0,
            failed: 0,
            requests: 0,
            failures: Vec::new(),
            warnings,
            next_actions: Vec::new(),
        },
        csv,
    };
    progress.begin(format!("Enrolling {total} devices"));
    let mut last_percent = None;
    let mut finished = 0usize;
    for chunk in rows.chunks(BULK_CHUNK) {
        if cancel.is_cancelled() {
            return Err(DpsError::Cancelled.into());
        }
        // The chunk's certificates, off the async threads.
        let certs = {
            let (dir, ids) = (cert_dir.clone(), chunk.to_vec());
            blocking(move || {
                ids.iter()
                    .map(|(_, id)| read_row_cert(&dir, id))
                    .collect::<Vec<_>>()
            })
            .await
        };
        let mut pending = Vec::with_capacity(chunk.len());
        for ((line, id), cert) in chunk.iter().zip(certs) {
            match cert {
                Ok(cert) if journal.is_done(id, &cert.info.sha256_thumbprint) => {
                    let thumbprint = &cert.info.sha256_thumbprint;
                    tally.row(*line, id, thumbprint, RowResult::Skipped, None)?;
                }
                Ok(cert) => pending.push(Pending {
                    line: *line,
                    id: id.clone(),
                    cert,
                }),
                Err(message) => {
                    tally.row(*line, id, "", RowResult::Failed, Some((None, message)))?
                }
            }
        }
        if !pending.is_empty() {
            let outcomes = enroll_chunk(&client, &settings, &pending, &mut pacer).await?;
            tally.report.requests = pacer.sent;
            let confirmed: Vec<(String, String, &'static str)> = pending
                .iter()
                .zip(&outcomes)
                .filter(|(_, (result, _))| *result != RowResult::Failed)
                .map(|(p, (result, _))| {
                    let thumbprint = p.cert.info.sha256_thumbprint.clone();
                    (p.id.clone(), thumbprint, result.as_str())
                })
                .collect();
            // What DPS confirmed is durable before the rows are reported (one sync per chunk).
            journal = blocking(move || -> std::io::Result<Journal> {
                for (id, thumbprint, result) in &confirmed {
                    journal.record(id, thumbprint, result)?;
                }
                journal.sync()?;
                Ok(journal)
            })
            .await
            .map_err(|e| io_error(&journal_file, e))?;
            for (p, (result, failure)) in pending.iter().zip(outcomes) {
                let thumbprint = &p.cert.info.sha256_thumbprint;
                tally.row(p.line, &p.id, thumbprint, result, failure)?;
            }
        }
        finished += chunk.len();
        let percent = (finished * 100 / total.max(1)) as u32;
        if last_percent != Some(percent) {
            last_percent = Some(percent);
            progress.report(format!("{finished} of {total} rows"), Some(percent));
        }
    }
    let Tally { mut report, csv } = tally;
    csv.finish(&report_csv)
        .map_err(|e| io_error(&report_csv, e))?;
    if report.skipped > 0 {
        report.warnings.push(format!(
            "{} rows skipped: an earlier run enrolled them (journal {})",
            report.skipped,
            journal_file.display()
        ));
    }
    if report.failed > 0 {
        report.next_actions.push(NextStep::new(NextAction::Retry));
    }
    progress.end(format!(
        "{} created, {} updated, {} unchanged, {} skipped, {} failed",
        report.created, report.updated, report.unchanged, report.skipped, report.failed
    ));
    Ok(report)
}

/// Spaces requests to stay within the service quota.
struct Pacer {
    interval: Duration,
    next: tokio::time::Instant,
    cancel: CancellationToken,
    /// Requests sent (retries not counted).
    sent: usize,
}

impl Pacer {
    /// Wait for the next request's slot.
    async fn wait(&mut self) -> Result<(), DpsError> {
        let now = tokio::time::Instant::now();
        if self.next > now {
            tokio::select! {
                _ = tokio::time::sleep_until(self.next) => {}
                _ = self.cancel.cancelled() => return Err(DpsError::Cancelled),
            }
        }
        self.next = self.next.max(now) + self.interval;
        self.sent += 1;
        Ok(())
    }
}

/// DPS's 429 says "later", not "no": a batch waits throttling out for as long as it lasts
/// (the client already waited `Retry-After` between its attempts; another round starts after
/// at least a second). Cancelling stops it, and the journal keeps what is done.
async fn patiently<T, Fut>(pacer: &Pacer, mut call: impl FnMut() -> Fut) -> Result<T, DpsError>
where
    Fut: std::future::Future<Output = Result<T, DpsError>>,
{
    loop {
        match call().await {
            Err(DpsError::Throttled(_)) => {
                tracing::debug!("still throttled after the client's retries: waiting");
                if !crate::dps::retry::sleep_cancellable(Duration::from_secs(1), &pacer.cancel)
                    .await
                {
                    return Err(DpsError::Cancelled);
                }
            }
            other => return other,
        }
    }
}

/// Run blocking file work on the blocking pool (a panic there stays a panic).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Row `id`'s certificate `<dir>/<id>.pem`, checked like single enroll's, or why not.
fn read_row_cert(dir: &Path, id: &str) -> Result<EnrollCertificate, String> {
    let path = dir.join(format!("{id}.pem"));
    let cert = resolve_certificate(dir, Some(&path)).map_err(|e| e.to_string())?;
    if cert.registration_id.as_str() != id {
        return Err(format!(
            "{}: its CN is {}, not the manifest's registration ID",
            path.display(),
            cert.registration_id
        ));
    }
    Ok(cert)
}

type Outcome = (RowResult, Option<(Option<u32>, String)>);

/// Whether a bulk error code says the enrollment exists (409201 in DPS and the emulator).
fn is_conflict(code: Option<u32>) -> bool {
    matches!(code, Some(c) if c == 409 || c / 1000 == 409)
}

/// Errors that end the batch (the journal keeps what is done): the credentials, the network,
/// cancellation. Anything else is about one row.
fn ends_the_batch(e: &DpsError) -> bool {
    matches!(
        e,
        DpsError::Unauthorized(_)
            | DpsError::Transport { .. }
            | DpsError::Protocol { .. }
            | DpsError::Tls(_)
            | DpsError::Cancelled
    )
}

/// One chunk: bulk create, then read the ones that exist and bulk-update those holding
/// another certificate. One outcome per pending row, in order.
async fn enroll_chunk(
    client: &ServiceClient,
    settings: &EnrollmentSettings,
    pending: &[Pending],
    pacer: &mut Pacer,
) -> Result<Vec<Outcome>, EnrollError> {
    let fresh: Vec<IndividualEnrollment> = pending
        .iter()
        .map(|p| settings.individual_enrollment(&p.id, &p.cert.der))
        .collect();
    pacer.wait().await?;
    let created = patiently(pacer, || client.bulk(BulkMode::Create, &fresh)).await?;
    let errors: HashMap<&str, (Option<u32>, String)> = created
        .errors
        .iter()
        .map(|e| {
            (
                e.registration_id.as_str(),
                (e.error_code, e.error_status.clone().unwrap_or_default()),
            )
        })
        .collect();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(pending.len());
    // Index into `pending` and the enrollment to write, for rows holding another certificate.
    let mut updates: Vec<(usize, IndividualEnrollment)> = Vec::new();
    for (i, p) in pending.iter().enumerate() {
        match errors.get(p.id.as_str()) {
            None => outcomes.push((RowResult::Created, None)),
            Some((code, _)) if is_conflict(*code) => {
                pacer.wait().await?;
                match patiently(pacer, || client.get(&p.id)).await {
                    Ok(existing) => {
                        if holds(&existing, &p.cert, settings) {
                            outcomes.push((RowResult::Unchanged, None));
                        } else {
                            updates.push((i, settings.apply_to(existing, &p.cert.der)));
                            outcomes.push((RowResult::Updated, None));
                        }
                    }
                    Err(e) if ends_the_batch(&e) => return Err(e.into()),
                    Err(e) => outcomes.push(failed(&e)),
                }
            }
            Some((code, message)) => {
                outcomes.push((RowResult::Failed, Some((*code, message.clone()))))
            }
        }
    }
    if !updates.is_empty() {
        let docs: Vec<IndividualEnrollment> = updates.iter().map(|(_, e)| e.clone()).collect();
        pacer.wait().await?;
        let updated = patiently(pacer, || client.bulk(BulkMode::UpdateIfMatchETag, &docs)).await?;
        for err in updated.errors {
            if let Some((i, _)) = updates
                .iter()
                .find(|(_, e)| e.registration_id == err.registration_id)
            {
                outcomes[*i] = (
                    RowResult::Failed,
                    Some((err.error_code, err.error_status.unwrap_or_default())),
                );
            }
        }
    }
    Ok(outcomes)
}

fn failed(e: &DpsError) -> Outcome {
    let code = e.service_error().and_then(|s| s.error_code);
    (RowResult::Failed, Some((code, e.to_string())))
}

/// Whether `existing` already is what enrolling `cert` with `settings` would make it: the same
/// certificate, and nothing the settings ask for differs. Then it is not rewritten.
fn holds(
    existing: &IndividualEnrollment,
    cert: &EnrollCertificate,
    settings: &EnrollmentSettings,
) -> bool {
    let same_cert = existing
        .sha256_thumbprint()
        .is_some_and(|t| t.eq_ignore_ascii_case(&cert.info.sha256_thumbprint));
    let device_id = settings
        .device_id
        .as_ref()
        .is_none_or(|d| existing.device_id.as_ref() == Some(d));
    let hub = settings.iot_hub.as_ref().is_none_or(|h| {
        existing.iot_hubs.as_deref() == Some(std::slice::from_ref(h))
            && existing.allocation_policy.as_deref() == Some("static")
    });
    let status = settings
        .status()
        .is_none_or(|s| existing.provisioning_status.unwrap_or(s) == s);
    same_cert && device_id && hub && status
}
