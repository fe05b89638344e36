//! `generate-cert` as one task, for the CLI and the daemon alike: a [`GenerateRequest`] (the
//! inputs as an adapter receives them) is validated into a [`GeneratePlan`] (nothing written),
//! [`run`] derives the identity, writes its files (backing up another identity's) and records
//! it in the project state, and returns the [`GenerateReport`] that `--json` prints and the
//! daemon returns. Factory batches are the same shape: [`BatchRequest`] → [`BatchPlan`] →
//! [`run_batch`] → [`BatchReport`].
//!
//! Rules decided here once (the adapters used to disagree): a project state that cannot be
//! saved after the certificate was written is a warning (the certificate exists); an
//! enrollment that now holds another certificate is a warning with the next action `enroll`;
//! the published sample UDS is the typed refusal [`IdentityError::SampleUds`].

use super::batch::{self, ManifestRow};
use super::files::{self, FileKind, FileOptions, PlannedWrite, WrittenFile};
use super::{derive, read_uds, FirmwareImage, IdentityError, RegistrationId, Uds, UdsSource};
use crate::error::{DomainError, Input, InvalidInput, NextAction, NextStep};
use crate::progress::{CancellationToken, Progress};
use crate::project::ProjectState;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the UDS comes from. Never the command line: the CLI reads a file or stdin, the daemon
/// receives the text in a param.
pub enum UdsInput {
    /// A file holding 64 hex digits (bounded; a file others can read is warned about).
    File(PathBuf),
    /// The first line of standard input.
    Stdin,
    /// Text already in memory (a request param).
    Text(Zeroizing<String>),
}

impl UdsInput {
    /// How messages name it (adapters rename it: the CLI by its flag).
    fn name(&self) -> String {
        match self {
            UdsInput::File(p) => format!("UDS file {:?}", p.display().to_string()),
            UdsInput::Stdin => "UDS from standard input".into(),
            UdsInput::Text(_) => Input::Uds.label().into(),
        }
    }
    fn source(&self) -> UdsSource<'_> {
        match self {
            UdsInput::File(p) => UdsSource::File(p),
            UdsInput::Stdin => UdsSource::Stdin,
            UdsInput::Text(t) => UdsSource::Text(t),
        }
    }
}

/// The firmware image: `bin` with `map`, else the one pair in `build_dir`.
#[derive(Debug, Clone, Default)]
pub struct ImageInput {
    pub bin: Option<PathBuf>,
    pub map: Option<PathBuf>,
    pub build_dir: Option<PathBuf>,
}

impl ImageInput {
    /// Read and check the image (bounded; the RIoT regions located). An image found in a
    /// build directory is that directory's problem when it is unusable.
    pub fn load(&self) -> Result<FirmwareImage, IdentityError> {
        match (&self.bin, &self.map, &self.build_dir) {
            (Some(bin), Some(map), _) => FirmwareImage::load(bin, map),
            (_, _, Some(dir)) => {
                let (bin, map) = crate::build::find_image_and_map(dir)?;
                FirmwareImage::load(&bin, &map).map_err(|e| e.about_input(Input::BuildDir))
            }
            (Some(_), None, None) => Err(IdentityError::invalid(
                Input::Map,
                "is required with the image (the build's .map file)",
            )),
            (None, Some(_), None) => Err(IdentityError::invalid(
                Input::Bin,
                "is required with the map (the build's .bin file)",
            )),
            (None, None, None) => Err(IdentityError::invalid(
                Input::BuildDir,
                "is required: give the image and its map, or the build directory",
            )),
        }
    }
}

/// One device's certificate, as the adapters receive the inputs.
#[derive(Default)]
pub struct GenerateRequest {
    pub image: ImageInput,
    /// Required.
    pub uds: Option<UdsInput>,
    /// The registration ID (it wins), else `mac` with `firmware_version`.
    pub registration_id: Option<String>,
    pub mac: Option<String>,
    pub firmware_version: Option<String>,
    /// [default: [`files::default_out_dir`] of `project_dir`]
    pub out_dir: Option<PathBuf>,
    /// Also write `device-cert.pem` and `device-id-pub.pem`.
    pub device_cert: bool,
    /// Also write the alias private key `alias-key.pem` (mode 0600), only on request.
    pub alias_key: bool,
    /// Accept the published sample UDS (its keys are public: tests only).
    pub allow_sample_uds: bool,
    /// The project whose state records the identity (none: nothing recorded).
    pub project_dir: Option<PathBuf>,
}

/// A validated [`GenerateRequest`]: what will be derived and where it goes.
pub struct GeneratePlan {
    uds: Uds,
    image: FirmwareImage,
    registration_id: RegistrationId,
    out_dir: PathBuf,
    files: FileOptions,
    project_dir: Option<PathBuf>,
    /// What the user should know before it runs (a UDS file others can read, the sample).
    pub warnings: Vec<String>,
}

impl GeneratePlan {
    pub fn registration_id(&self) -> &RegistrationId {
        &self.registration_id
    }
    /// Where the alias certificate `<registration-id>.pem` is written.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }
}

impl GenerateRequest {
    /// Validate every input (registration ID, UDS, image); nothing is written. Reads the UDS
    /// and the image (blocking; stdin for [`UdsInput::Stdin`]).
    pub fn plan(self) -> Result<GeneratePlan, IdentityError> {
        let registration_id = RegistrationId::from_inputs(
            self.registration_id.as_deref(),
            self.mac.as_deref(),
            self.firmware_version.as_deref(),
        )?;
        let mut warnings = Vec::new();
        if self.registration_id.is_some() && (self.mac.is_some() || self.firmware_version.is_some())
        {
            warnings.push(
                "the registration ID was given: the MAC address and firmware version were not used"
                    .into(),
            );
        }
        let uds = self.uds.as_ref().ok_or_else(|| {
            IdentityError::invalid(Input::Uds, "is required (64 hexadecimal digits)")
        })?;
        let read = read_uds(uds.source(), &uds.name(), self.allow_sample_uds)?;
        warnings.extend(read.warnings);
        let image = self.image.load()?;
        let out_dir = self
            .out_dir
            .unwrap_or_else(|| files::default_out_dir(self.project_dir.as_deref()));
        Ok(GeneratePlan {
            uds: read.uds,
            image,
            registration_id,
            out_dir,
            files: FileOptions {
                device_cert: self.device_cert,
                alias_key: self.alias_key,
                per_device_dir: false,
            },
            project_dir: self.project_dir,
            warnings,
        })
    }
}

/// What `generate-cert` did: the daemon's `devkit/generateCert` result and what
/// `generate-cert --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateReport {
    pub registration_id: String,
    /// Absolute path of the alias certificate PEM.
    pub alias_cert: PathBuf,
    /// The alias certificate itself (64-column PEM; public).
    pub alias_cert_pem: String,
    /// The DeviceID certificate, when asked for.
    pub device_cert: Option<PathBuf>,
    pub device_cert_pem: Option<String>,
    /// The DeviceID public key PEM, written with the DeviceID certificate.
    pub device_id_public_key: Option<PathBuf>,
    /// The alias private key (mode 0600), when asked for.
    pub alias_key: Option<PathBuf>,
    /// Upper-case hex.
    pub sha1_thumbprint: String,
    pub sha256_thumbprint: String,
    /// SHA-256 of `.riot_fw`, lower-case hex.
    pub fwid: String,
    /// Every file and what happened to it (written, unchanged, replaced with a backup).
    pub files: Vec<WrittenFile>,
    pub warnings: Vec<String>,
    /// `enroll` when the enrollment of this registration ID holds another certificate.
    pub next_actions: Vec<NextStep>,
    /// The fixed-nonce weakness ([`super::FIXED_NONCE_WARNING`]), with every certificate.
    pub note: String,
}

/// Derive the identity, write its files, record it in the project state. Blocking (files).
/// Nothing is written once `cancel` fired.
pub fn run(
    plan: GeneratePlan,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<GenerateReport, IdentityError> {
    progress.report(
        format!("Deriving the identity of {}", plan.registration_id),
        None,
    );
    let identity = derive(&plan.uds, &plan.image, &plan.registration_id)?;
    drop(plan.uds);
    if cancel.is_cancelled() {
        return Err(IdentityError::Cancelled);
    }
    let written = files::write_identity(&identity, &plan.out_dir, plan.files)
        .map_err(IdentityError::Write)?;
    let mut warnings = plan.warnings;
    warnings.extend(written.iter().filter_map(WrittenFile::warning));
    let path_of = |kind| {
        written
            .iter()
            .find(|f| f.kind == kind)
            .map(|f| f.path.clone())
    };
    let alias_cert = path_of(FileKind::AliasCert).unwrap_or_default();
    let mut next_actions = Vec::new();
    if let Some(dir) = &plan.project_dir {
        let record = files::generated_record(&identity, &alias_cert);
        match ProjectState::update(dir, |s| s.last_generated = Some(record)) {
            Ok(state) if state.enrollment_is_stale() => {
                warnings.push(format!(
                    "the enrollment of {} holds a different certificate: enroll again",
                    identity.registration_id
                ));
                next_actions.push(NextStep::new(NextAction::Enroll));
            }
            Ok(_) => {}
            Err(e) => warnings.push(format!(
                "the certificate was written but the project state was not updated: {e}"
            )),
        }
    }
    Ok(GenerateReport {
        registration_id: identity.registration_id.to_string(),
        alias_cert,
        alias_cert_pem: identity.alias_cert_pem(),
        device_cert: path_of(FileKind::DeviceCert),
        device_cert_pem: plan.files.device_cert.then(|| identity.device_cert_pem()),
        device_id_public_key: path_of(FileKind::DeviceIdPublicKey),
        alias_key: path_of(FileKind::AliasKey),
        sha1_thumbprint: identity.sha1_thumbprint(),
        sha256_thumbprint: identity.sha256_thumbprint(),
        fwid: identity.fwid_hex(),
        files: written,
        warnings,
        next_actions,
        note: super::FIXED_NONCE_WARNING.into(),
    })
}

// ---- Factory batches ---------------------------------------------------------------------------

/// How many manifest rows are written (and synced) together: one atomic, durable write per
/// chunk instead of one fsync per file, which would bound a factory batch by disk latency.
/// It also bounds memory: at most two chunks are in flight (one being derived while the
/// previous one is written), whatever the manifest's length.
pub const BATCH_COMMIT_ROWS: usize = 256;

/// A factory batch: one image, one identity per manifest row ([`batch`]).
#[derive(Default)]
pub struct BatchRequest {
    pub image: ImageInput,
    /// CSV `uds_file,registration_id` or `uds_file,mac,firmware_version`.
    pub manifest: PathBuf,
    /// [default: [`files::default_out_dir`] of `project_dir`]
    pub out_dir: Option<PathBuf>,
    pub device_cert: bool,
    pub alias_key: bool,
    pub allow_sample_uds: bool,
    /// Only for the default output directory: a batch records no project identity.
    pub project_dir: Option<PathBuf>,
}

/// A validated batch: the image, and a manifest whose every line was checked (each row's
/// UDS and ID are checked when it runs: a bad row fails alone). The rows themselves are not
/// kept: [`run_batch_streaming`] reads the manifest again, a chunk at a time.
pub struct BatchPlan {
    image: FirmwareImage,
    manifest: PathBuf,
    manifest_name: String,
    /// How many device rows the manifest lists.
    pub rows: usize,
    out_dir: PathBuf,
    files: FileOptions,
    allow_sample_uds: bool,
    chunk_rows: usize,
    workers: usize,
    pub warnings: Vec<String>,
}

impl BatchPlan {
    /// Rows per chunk (default [`BATCH_COMMIT_ROWS`]; at least 1).
    pub fn with_chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows.max(1);
        self
    }
    /// Threads deriving certificates (default: every core this process may use; at least 1).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }
}

fn open_manifest(path: &Path, name: &str) -> Result<impl std::io::BufRead, IdentityError> {
    let file = crate::fsutil::open_bounded(path, name, crate::fsutil::limits::MANIFEST)
        .map_err(|e| IdentityError::Invalid(e.into_invalid(Input::Manifest)))?;
    Ok(std::io::BufReader::with_capacity(64 * 1024, file))
}

impl BatchRequest {
    /// Check every line of the manifest (streamed: nothing of it is kept but the row count)
    /// and read the image; nothing is written.
    pub fn plan(self) -> Result<BatchPlan, IdentityError> {
        let name = format!("manifest {:?}", self.manifest.display().to_string());
        let base = self.manifest.parent().unwrap_or(Path::new("."));
        let mut rows = 0;
        for row in batch::ManifestReader::new(open_manifest(&self.manifest, &name)?, base, &name) {
            row?;
            rows += 1;
        }
        if rows == 0 {
            return Err(batch::empty_manifest(&name));
        }
        let image = self.image.load()?;
        let mut warnings = Vec::new();
        if self.allow_sample_uds {
            warnings.push(
                "the published sample UDS is allowed: rows that use it have public keys".into(),
            );
        }
        Ok(BatchPlan {
            image,
            manifest: self.manifest,
            manifest_name: name,
            rows,
            out_dir: self
                .out_dir
                .unwrap_or_else(|| files::default_out_dir(self.project_dir.as_deref())),
            files: FileOptions {
                device_cert: self.device_cert,
                alias_key: self.alias_key,
                per_device_dir: true,
            },
            allow_sample_uds: self.allow_sample_uds,
            chunk_rows: BATCH_COMMIT_ROWS,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            warnings,
        })
    }
}

/// One row's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCertificate {
    pub registration_id: String,
    pub alias_cert: PathBuf,
    pub sha1_thumbprint: String,
    pub sha256_thumbprint: String,
    pub fwid: String,
    pub files: Vec<WrittenFile>,
    pub warnings: Vec<String>,
}

/// Why one row failed, typed like every error object (`kind` as the daemon's `data.code`,
/// `input` as its `data.field`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<crate::error::Input>,
    pub message: String,
    #[serde(default)]
    pub next_actions: Vec<NextStep>,
}

impl RowError {
    fn from_error(e: &IdentityError) -> Self {
        RowError {
            kind: e.kind().code_name().into(),
            input: e.input(),
            message: e.to_string(),
            next_actions: e.next_actions(),
        }
    }
}

/// One manifest row: its certificate or its error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRow {
    /// 1-based line in the manifest.
    pub line: usize,
    #[serde(flatten)]
    pub certificate: Option<BatchCertificate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RowError>,
}

/// What a batch did (`generate-cert --batch --json`), rows included: [`run_batch`] collects
/// them (small batches, tests). A factory batch streams its rows ([`run_batch_streaming`]) and
/// keeps only the [`BatchSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchReport {
    /// One per manifest row, in manifest order.
    pub results: Vec<BatchRow>,
    pub ok: usize,
    pub failed: usize,
    pub warnings: Vec<String>,
    pub note: String,
}

/// What a streamed batch did: counts, not rows (each row went to the caller as it was done).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchSummary {
    pub ok: usize,
    pub failed: usize,
    pub warnings: Vec<String>,
    pub note: String,
    /// The most manifest rows held at once (read and not yet handed to the caller): at most
    /// two chunks, whatever the manifest's length.
    pub max_rows_in_flight: usize,
}

/// A row read from the manifest and checked against the rows before it, not derived yet.
enum Pending {
    Ready(ManifestRow),
    Failed(usize, RowError),
}

/// A row derived and its files planned (not written yet), or its error.
type Derived = (usize, Result<(BatchCertificate, PlannedWrite), RowError>);

/// The registration IDs already used, for the "already used on manifest line N" check: a
/// keyed 64-bit hash of each ID and its line (16 bytes per row, the batch's only per-row
/// state; two different IDs colliding is about 1 in 10^9 at a million rows).
struct SeenIds {
    hasher: std::collections::hash_map::RandomState,
    first_line: HashMap<u64, usize>,
}

impl SeenIds {
    fn check(&mut self, row: ManifestRow) -> Pending {
        use std::hash::BuildHasher;
        let line = row.line;
        let id = match row.registration_id() {
            Ok(id) => id,
            Err(e) => return Pending::Failed(line, RowError::from_error(&e)),
        };
        let key = self.hasher.hash_one(id.as_str());
        if let Some(first) = self.first_line.get(&key) {
            let e = IdentityError::Invalid(
                InvalidInput::new(
                    Input::RegistrationId,
                    format!("already used on manifest line {first}"),
                )
                .named(format!(
                    "{}: registration ID {:?}",
                    row.label(),
                    id.as_str()
                )),
            );
            return Pending::Failed(line, RowError::from_error(&e));
        }
        self.first_line.insert(key, line);
        Pending::Ready(row)
    }
}

/// One row: its UDS read, its identity derived and its files planned (not written yet).
fn batch_row(
    plan: &BatchPlan,
    row: &ManifestRow,
) -> Result<(BatchCertificate, PlannedWrite), IdentityError> {
    let (d, mut warnings) = batch::derive_row(row, &plan.image, plan.allow_sample_uds)?;
    let planned =
        files::plan_identity(&d, &plan.out_dir, plan.files).map_err(IdentityError::Write)?;
    warnings.extend(planned.files.iter().filter_map(WrittenFile::warning));
    let certificate = BatchCertificate {
        registration_id: d.registration_id.to_string(),
        alias_cert: planned.files[0].path.clone(),
        sha1_thumbprint: d.sha1_thumbprint(),
        sha256_thumbprint: d.sha256_thumbprint(),
        fwid: d.fwid_hex(),
        files: planned.files.clone(),
        warnings,
    };
    Ok((certificate, planned))
}

/// Derive a chunk's rows on `plan.workers` threads; results in the chunk's order.
fn derive_chunk(plan: &BatchPlan, chunk: Vec<Pending>) -> Vec<Derived> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let slots: Vec<std::sync::OnceLock<Derived>> = (0..chunk.len())
        .map(|_| std::sync::OnceLock::new())
        .collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(pending) = chunk.get(i) else { break };
        let derived = match pending {
            Pending::Ready(row) => (
                row.line,
                batch_row(plan, row).map_err(|e| RowError::from_error(&e)),
            ),
            Pending::Failed(line, e) => (*line, Err(e.clone())),
        };
        let _ = slots[i].set(derived);
    };
    let helpers = plan.workers.min(chunk.len()).saturating_sub(1);
    std::thread::scope(|s| {
        for _ in 0..helpers {
            s.spawn(work);
        }
        work();
    });
    slots.into_iter().filter_map(|s| s.into_inner()).collect()
}

/// Write a chunk's planned files as one durable unit; its rows in order. A failed write fails
/// every row of the chunk that had files to write.
fn commit_chunk(derived: Vec<Derived>) -> Vec<BatchRow> {
    let mut rows = Vec::with_capacity(derived.len());
    let mut writes = Vec::new();
    for (line, result) in derived {
        let (certificate, error) = match result {
            Ok((c, w)) => {
                writes.push((rows.len(), w));
                (Some(c), None)
            }
            Err(e) => (None, Some(e)),
        };
        rows.push(BatchRow {
            line,
            certificate,
            error,
        });
    }
    let (indices, plans): (Vec<usize>, Vec<PlannedWrite>) = writes.into_iter().unzip();
    if let Err(e) = files::commit(&plans) {
        let e = IdentityError::Write(e);
        for i in indices {
            let mut error = RowError::from_error(&e);
            error.message = format!("writing this row's files failed: {}", error.message);
            rows[i].certificate = None;
            rows[i].error = Some(error);
        }
    }
    drop(plans);
    rows
}

/// Every row of the batch, streamed: the manifest is read a chunk of
/// [`BATCH_COMMIT_ROWS`] rows at a time; a chunk's certificates are derived on every core while
/// the previous chunk's files are written (one durable write per chunk), and each row goes to
/// `emit` in manifest order as soon as its chunk is written. Memory stays flat: at most two
/// chunks are held. Failing rows are reported and do not stop the others. After a
/// cancellation the remaining rows fail as cancelled (what was committed stays). Blocking
/// (files).
pub fn run_batch_streaming(
    plan: BatchPlan,
    progress: &Progress,
    cancel: &CancellationToken,
    mut emit: impl FnMut(BatchRow),
) -> Result<BatchSummary, IdentityError> {
    let base = plan
        .manifest
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut reader = batch::ManifestReader::new(
        open_manifest(&plan.manifest, &plan.manifest_name)?,
        &base,
        &plan.manifest_name,
    );
    let mut seen = SeenIds {
        hasher: Default::default(),
        first_line: HashMap::new(),
    };
    let mut summary = BatchSummary {
        warnings: plan.warnings.clone(),
        note: super::FIXED_NONCE_WARNING.into(),
        ..Default::default()
    };
    let (mut read, mut emitted) = (0usize, 0usize);
    let total = plan.rows.max(1);
    let cancelled = RowError::from_error(&IdentityError::Cancelled);
    let mut hand_over = |rows: Vec<BatchRow>, summary: &mut BatchSummary, emitted: &mut usize| {
        for row in rows {
            if row.error.is_none() {
                summary.ok += 1;
            } else {
                summary.failed += 1;
            }
            *emitted += 1;
            emit(row);
        }
    };
    std::thread::scope(|s| {
        let mut writing: Option<std::thread::ScopedJoinHandle<'_, Vec<BatchRow>>> = None;
        loop {
            let mut chunk = Vec::with_capacity(plan.chunk_rows);
            while chunk.len() < plan.chunk_rows {
                match reader.next() {
                    None => break,
                    Some(Ok(row)) => chunk.push(seen.check(row)),
                    // The manifest changed since it was planned: this line fails, the
                    // reading ends.
                    Some(Err(e)) => {
                        chunk.push(Pending::Failed(reader.line(), RowError::from_error(&e)));
                        break;
                    }
                }
            }
            if chunk.is_empty() {
                break;
            }
            read += chunk.len();
            summary.max_rows_in_flight = summary.max_rows_in_flight.max(read - emitted);
            let derived = if cancel.is_cancelled() {
                chunk
                    .into_iter()
                    .map(|p| match p {
                        Pending::Ready(row) => (row.line, Err(cancelled.clone())),
                        Pending::Failed(line, _) => (line, Err(cancelled.clone())),
                    })
                    .collect()
            } else {
                progress.report(
                    format!("{emitted} of {} rows", plan.rows),
                    Some((emitted * 100 / total) as u32),
                );
                derive_chunk(&plan, chunk)
            };
            if let Some(previous) = writing.take() {
                let rows = previous
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                hand_over(rows, &mut summary, &mut emitted);
            }
            writing = Some(s.spawn(move || commit_chunk(derived)));
        }
        if let Some(last) = writing.take() {
            let rows = last.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            hand_over(rows, &mut summary, &mut emitted);
        }
    });
    Ok(summary)
}

/// [`run_batch_streaming`] with every row collected into the [`BatchReport`] (memory grows
/// with the manifest: for small batches and tests).
pub fn run_batch(
    plan: BatchPlan,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<BatchReport, IdentityError> {
    let mut results = Vec::new();
    let summary = run_batch_streaming(plan, progress, cancel, |row| results.push(row))?;
    Ok(BatchReport {
        results,
        ok: summary.ok,
        failed: summary.failed,
        warnings: summary.warnings,
        note: summary.note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::identity::PUBLISHED_SAMPLE_UDS;

    use crate::identity::test_vector as vector;

    fn image() -> ImageInput {
        ImageInput {
            build_dir: Some(vector("explicit-id-small")),
            ..Default::default()
        }
    }

    fn request(uds: &str, out: &Path) -> GenerateRequest {
        GenerateRequest {
            image: image(),
            uds: Some(UdsInput::Text(Zeroizing::new(uds.into()))),
            registration_id: Some("my-devkit-01".into()),
            out_dir: Some(out.to_path_buf()),
            ..Default::default()
        }
    }

    #[test]
    fn plan_refuses_each_bad_input_by_its_typed_input() {
        let tmp = tempfile::tempdir().unwrap();
        let input = |r: GenerateRequest| r.plan().err().and_then(|e| e.input());
        let mut r = request(&"1".repeat(64), tmp.path());
        r.registration_id = Some("Bad_Id".into());
        assert_eq!(input(r), Some(Input::RegistrationId));
        let mut r = request(&"1".repeat(64), tmp.path());
        r.registration_id = None;
        r.mac = Some("a0b1c2d3e4f5".into());
        assert_eq!(input(r), Some(Input::FirmwareVersion));
        assert_eq!(input(request("12", tmp.path())), Some(Input::Uds));
        let mut r = request(&"1".repeat(64), tmp.path());
        r.uds = None;
        assert_eq!(input(r), Some(Input::Uds));
        let mut r = request(&"1".repeat(64), tmp.path());
        r.image = ImageInput {
            bin: Some(vector("explicit-id-small").join("DevKitDPS.ino.bin")),
            ..Default::default()
        };
        assert_eq!(input(r), Some(Input::Map));
        let mut r = request(&"1".repeat(64), tmp.path());
        r.image = ImageInput {
            build_dir: Some(tmp.path().join("nothing-here")),
            ..Default::default()
        };
        assert_eq!(input(r), Some(Input::BuildDir));
        // The sample: a typed refusal (the adapters say how to allow it), then allowed on request.
        let e = request(PUBLISHED_SAMPLE_UDS, tmp.path())
            .plan()
            .err()
            .unwrap();
        assert!(matches!(e, IdentityError::SampleUds(_)), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let mut r = request(PUBLISHED_SAMPLE_UDS, tmp.path());
        r.allow_sample_uds = true;
        let plan = r.plan().unwrap();
        assert!(plan.warnings.iter().any(|w| w.contains("sample")));
        assert_eq!(plan.out_dir(), tmp.path());
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "planning writes nothing"
        );
    }

    #[test]
    fn run_writes_the_device_vector_and_records_it() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let mut r = request(PUBLISHED_SAMPLE_UDS, tmp.path());
        r.allow_sample_uds = true;
        r.device_cert = true;
        r.project_dir = Some(project.path().to_path_buf());
        let report = run(
            r.plan().unwrap(),
            &Progress::none(),
            &CancellationToken::new(),
        )
        .unwrap();
        let expected =
            std::fs::read_to_string(vector("explicit-id-small").join("my-devkit-01.pem")).unwrap();
        assert_eq!(
            crate::identity::pem::decode(&report.alias_cert_pem, None).unwrap(),
            crate::identity::pem::decode(&expected, None).unwrap()
        );
        assert_eq!(report.alias_cert, tmp.path().join("my-devkit-01.pem"));
        assert_eq!(report.device_cert, Some(tmp.path().join("device-cert.pem")));
        assert_eq!(report.alias_key, None, "the key only on request");
        assert_eq!(report.files.len(), 3);
        assert!(report.next_actions.is_empty());
        assert!(report.note.contains("fixed ECDSA nonce"));
        let state = ProjectState::load(project.path()).unwrap();
        assert_eq!(
            state.last_generated.unwrap().sha256_thumbprint,
            report.sha256_thumbprint
        );
        // The report is the wire shape: camelCase, and it reads back.
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("sha256Thumbprint").is_some() && json.get("nextActions").is_some());
        assert_eq!(
            serde_json::from_value::<GenerateReport>(json).unwrap(),
            report
        );
    }

    #[test]
    fn a_cancelled_run_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let plan = request(&"1".repeat(64), tmp.path()).plan().unwrap();
        let e = run(plan, &Progress::none(), &cancel).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
    }

    #[test]
    fn state_that_cannot_be_saved_is_a_warning_and_a_stale_enrollment_asks_to_enroll() {
        let tmp = tempfile::tempdir().unwrap();
        // A project "directory" that is a file: the state cannot be saved.
        let not_a_dir = tmp.path().join("file");
        std::fs::write(&not_a_dir, "x").unwrap();
        let mut r = request(&"1".repeat(64), &tmp.path().join("out"));
        r.project_dir = Some(not_a_dir);
        let report = run(
            r.plan().unwrap(),
            &Progress::none(),
            &CancellationToken::new(),
        )
        .unwrap();
        assert!(report.alias_cert.exists(), "the certificate exists");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("project state was not updated")),
            "{:?}",
            report.warnings
        );

        // The project enrolled another certificate for this ID: warned, next action enroll.
        let project = tempfile::tempdir().unwrap();
        let mut r = request(&"1".repeat(64), &tmp.path().join("a"));
        r.project_dir = Some(project.path().to_path_buf());
        let first = run(
            r.plan().unwrap(),
            &Progress::none(),
            &CancellationToken::new(),
        )
        .unwrap();
        ProjectState::update(project.path(), |s| {
            let mut e = s.last_generated.clone().unwrap();
            e.source = crate::project::IdentitySource::Enrolled;
            s.last_enrolled = Some(e);
        })
        .unwrap();
        let mut r = request(&"2".repeat(64), &tmp.path().join("b"));
        r.project_dir = Some(project.path().to_path_buf());
        let second = run(
            r.plan().unwrap(),
            &Progress::none(),
            &CancellationToken::new(),
        )
        .unwrap();
        assert_ne!(first.sha256_thumbprint, second.sha256_thumbprint);
        assert_eq!(second.next_actions, [NextStep::new(NextAction::Enroll)]);
        assert!(
            second
                .warnings
                .iter()
                .any(|w| w.contains("the enrollment of my-devkit-01 holds a different certificate")),
            "{:?}",
            second.warnings
        );
    }

    #[test]
    fn a_batch_writes_good_rows_and_types_the_errors_of_bad_ones() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.uds"), "1".repeat(64)).unwrap();
        std::fs::write(tmp.path().join("b.uds"), "2".repeat(64)).unwrap();
        std::fs::write(tmp.path().join("bad.uds"), "123").unwrap();
        let manifest = tmp.path().join("m.csv");
        std::fs::write(
            &manifest,
            "a.uds,dev-a\nbad.uds,dev-b\nb.uds,dev-a\nb.uds,dev-c\n",
        )
        .unwrap();
        let request = BatchRequest {
            image: image(),
            manifest: manifest.clone(),
            out_dir: Some(tmp.path().join("out")),
            device_cert: true,
            ..Default::default()
        };
        let report = run_batch(
            request.plan().unwrap(),
            &Progress::none(),
            &CancellationToken::new(),
        )
        .unwrap();
        assert_eq!((report.ok, report.failed), (2, 2));
        let lines: Vec<usize> = report.results.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 3, 4]);
        let bad = report.results[1].error.as_ref().unwrap();
        assert_eq!(
            (bad.kind.as_str(), bad.input),
            ("invalidParams", Some(crate::error::Input::Uds))
        );
        assert!(bad.message.contains("manifest line 2"), "{}", bad.message);
        let dup = report.results[2].error.as_ref().unwrap();
        assert!(
            dup.message.contains("already used on manifest line 1"),
            "{}",
            dup.message
        );
        let c = report.results[3].certificate.as_ref().unwrap();
        assert_eq!(c.alias_cert, tmp.path().join("out/dev-c.pem"));
        assert!(tmp.path().join("out/dev-c/device-cert.pem").exists());
        assert!(!tmp.path().join("out/dev-b.pem").exists());
        // Rows read back from the wire shape: a certificate or an error.
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<BatchReport>(&json).unwrap(), report);
    }

    /// A manifest of `n` rows (`dev-1`..`dev-n`, each row's UDS in its own file), every
    /// `bad`-th row with an unusable UDS.
    fn manifest_of(dir: &Path, n: usize, bad: usize) -> PathBuf {
        let mut text = String::from("uds_file,registration_id\n");
        for i in 1..=n {
            let uds = if i % bad == 0 {
                "12".to_string()
            } else {
                format!("{:064x}", i * 7919 + 1)
            };
            std::fs::write(dir.join(format!("{i}.uds")), uds).unwrap();
            text.push_str(&format!("{i}.uds,dev-{i}\n"));
        }
        let manifest = dir.join("m.csv");
        std::fs::write(&manifest, text).unwrap();
        manifest
    }

    /// Rows are handed over while the batch runs, in manifest order whatever thread derived
    /// them, and at most two chunks are held: the batch's memory does not grow with the
    /// manifest.
    #[test]
    fn a_streamed_batch_holds_two_chunks_at_most_and_keeps_manifest_order() {
        let tmp = tempfile::tempdir().unwrap();
        let (n, chunk) = (60, 4);
        let manifest = manifest_of(tmp.path(), n, 7);
        let out = tmp.path().join("out");
        let plan = BatchRequest {
            image: image(),
            manifest,
            out_dir: Some(out.clone()),
            ..Default::default()
        }
        .plan()
        .unwrap()
        .with_chunk_rows(chunk)
        .with_workers(4);
        assert_eq!(plan.rows, n);
        let mut lines = Vec::new();
        let mut last_written_at_first_row = None;
        let summary =
            run_batch_streaming(plan, &Progress::none(), &CancellationToken::new(), |row| {
                if lines.is_empty() {
                    last_written_at_first_row = Some(out.join(format!("dev-{n}.pem")).exists());
                }
                if row.line % 7 == 1 {
                    // line i+1 is row i: every 7th row's UDS is bad.
                    assert!(row.error.is_some(), "{row:?}");
                } else {
                    let c = row.certificate.as_ref().expect("a certificate");
                    assert_eq!(c.registration_id, format!("dev-{}", row.line - 1));
                }
                lines.push(row.line);
            })
            .unwrap();
        assert_eq!(lines, (2..=n + 1).collect::<Vec<_>>(), "manifest order");
        assert_eq!(summary.ok + summary.failed, n);
        assert_eq!(summary.failed, n / 7);
        assert!(
            summary.max_rows_in_flight <= 2 * chunk,
            "{} rows held at once",
            summary.max_rows_in_flight
        );
        assert_eq!(
            last_written_at_first_row,
            Some(false),
            "the first row is handed over before the last one is written"
        );
        assert!(out.join(format!("dev-{}.pem", n - 1)).exists());
    }

    /// The same rows give the same report on one thread and on several.
    #[test]
    fn every_core_gives_the_one_core_report() {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = manifest_of(tmp.path(), 24, 5);
        let report = |workers: usize, out: &str| {
            let plan = BatchRequest {
                image: image(),
                manifest: manifest.clone(),
                out_dir: Some(tmp.path().join(out)),
                ..Default::default()
            }
            .plan()
            .unwrap()
            .with_chunk_rows(5)
            .with_workers(workers);
            let mut r = run_batch(plan, &Progress::none(), &CancellationToken::new()).unwrap();
            for row in &mut r.results {
                if let Some(c) = &mut row.certificate {
                    c.alias_cert = c
                        .alias_cert
                        .strip_prefix(tmp.path().join(out))
                        .unwrap()
                        .into();
                    c.files.clear();
                }
                if let Some(e) = &mut row.error {
                    e.message = e.message.replace(&tmp.path().display().to_string(), "");
                }
            }
            r
        };
        assert_eq!(report(1, "one"), report(3, "three"));
    }

    #[test]
    fn a_cancelled_batch_writes_no_row() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.uds"), "1".repeat(64)).unwrap();
        let manifest = tmp.path().join("m.csv");
        std::fs::write(&manifest, "a.uds,dev-a\n").unwrap();
        let plan = BatchRequest {
            image: image(),
            manifest,
            out_dir: Some(tmp.path().join("out")),
            ..Default::default()
        }
        .plan()
        .unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let report = run_batch(plan, &Progress::none(), &cancel).unwrap();
        assert_eq!((report.ok, report.failed), (0, 1));
        assert_eq!(report.results[0].error.as_ref().unwrap().kind, "cancelled");
        assert!(!tmp.path().join("out").exists());
    }
}
