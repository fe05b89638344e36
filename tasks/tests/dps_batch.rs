//! Batch enrollment (`devkit enroll --batch`) against the local emulator: bulk requests, 429s,
//! an interrupted run resumed from the journal, re-runs that change nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tasks::dps::emulator::{Emulator, EmulatorConfig};
use tasks::dps::enroll::batch::RowResult;
use tasks::dps::enroll::{run_batch, BatchEnrollReport, BatchEnrollRequest, EnrollError};
use tasks::dps::retry::RetryPolicy;
use tasks::dps::{ClientOptions, DpsError, ServiceClient};
use tasks::identity::{self, RegistrationId};
use tasks::progress::{CancellationToken, Progress, ProgressEvent};
use zeroize::Zeroizing;

async fn emulator(dir: &Path) -> Emulator {
    let mut config = EmulatorConfig::new("127.0.0.1:0".parse().unwrap(), dir);
    config.retry_after_secs = 0;
    Emulator::start(config).await.unwrap()
}

fn client(emu: &Emulator) -> ServiceClient {
    let options = ClientOptions {
        ca_pem: Some(emu.ca_certificate_pem().to_string()),
        ..Default::default()
    };
    ServiceClient::new(emu.connection_string(), options).unwrap()
}

/// A factory line: `n` devices, their alias certificates in `certs/`, the manifest listing them.
struct Line {
    dir: tempfile::TempDir,
    ids: Vec<String>,
}

impl Line {
    fn new(n: usize) -> Line {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..n).map(|i| format!("line-dev-{i:03}")).collect();
        let mut manifest = String::from("uds_file,registration_id\n");
        for (i, id) in ids.iter().enumerate() {
            manifest.push_str(&format!("uds/{id}.uds,{id}\n"));
            write_cert(dir.path(), id, i as u8);
        }
        std::fs::write(dir.path().join("line.csv"), manifest).unwrap();
        Line { dir, ids }
    }
    fn manifest(&self) -> PathBuf {
        self.dir.path().join("line.csv")
    }
    fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }
}

/// `certs/<id>.pem` from a UDS made of `seed`.
fn write_cert(dir: &Path, id: &str, seed: u8) {
    let uds = identity::Uds::parse(&format!("{:02x}", seed.wrapping_add(1)).repeat(32)).unwrap();
    let image = tasks::provision::sample::image().unwrap();
    let d = identity::derive(&uds, &image, &RegistrationId::parse(id).unwrap()).unwrap();
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join(format!("{id}.pem")), d.alias_cert_pem()).unwrap();
}

fn request(emu: &Emulator, line: &Line) -> BatchEnrollRequest {
    BatchEnrollRequest {
        connection_string: Some(Zeroizing::new(
            emu.connection_string()
                .to_secret_string()
                .as_str()
                .to_string(),
        )),
        ca_file: Some(emu.ca_certificate_path().to_path_buf()),
        manifest: line.manifest(),
        cert_dir: line.certs(),
        requests_per_minute: Some(0),
        ..Default::default()
    }
}

async fn run(
    emu: &Emulator,
    line: &Line,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<BatchEnrollReport, EnrollError> {
    let mut plan = request(emu, line).plan().unwrap();
    plan.retry = RetryPolicy {
        max_attempts: 6,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    };
    run_batch(plan, progress, cancel).await
}

async fn run_all(emu: &Emulator, line: &Line) -> BatchEnrollReport {
    run(emu, line, &Progress::none(), &CancellationToken::new())
        .await
        .unwrap()
}

fn counts(r: &BatchEnrollReport) -> [usize; 5] {
    [r.created, r.updated, r.unchanged, r.skipped, r.failed]
}

async fn etags(emu: &Emulator, ids: &[String]) -> Vec<Option<String>> {
    let c = client(emu);
    let mut out = Vec::new();
    for id in ids {
        out.push(c.get(id).await.unwrap().etag);
    }
    out
}

#[tokio::test]
async fn a_batch_goes_out_in_bulk_through_429s_and_a_rerun_sends_nothing() {
    let state = tempfile::tempdir().unwrap();
    let emu = emulator(state.path()).await;
    let line = Line::new(25);
    // More 429s than the client's 6 attempts: the batch waits throttling out, it does not fail.
    emu.inject_429(8);
    let r = run_all(&emu, &line).await;
    assert_eq!(counts(&r), [25, 0, 0, 0, 0], "{r:?}");
    assert_eq!(
        r.requests, 3,
        "25 rows are three bulk requests of at most 10"
    );
    let csv = std::fs::read_to_string(&r.report_csv).unwrap();
    assert_eq!(csv.lines().count(), 26, "{csv}");
    assert!(csv.starts_with("registration_id,sha256_thumbprint,result,error_code"));
    assert!(
        csv.contains("line-dev-024,") && csv.contains(",created,"),
        "{csv}"
    );
    let journal = std::fs::read_to_string(&r.journal).unwrap();
    assert_eq!(journal.lines().count(), 25);
    let before = etags(&emu, &line.ids).await;

    // Nothing changed: every row is skipped from the journal, nothing is sent.
    let again = run_all(&emu, &line).await;
    assert_eq!(counts(&again), [0, 0, 0, 25, 0]);
    assert_eq!(again.requests, 0);
    assert!(again.warnings.iter().any(|w| w.contains("25 rows skipped")));

    // Without the journal: DPS is asked, and enrollments holding the same certificate are
    // not rewritten (their ETags stay).
    std::fs::remove_file(&r.journal).unwrap();
    let unjournaled = run_all(&emu, &line).await;
    assert_eq!(counts(&unjournaled), [0, 0, 25, 0, 0]);
    assert_eq!(etags(&emu, &line.ids).await, before);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_new_certificate_is_updated_read_modify_write_and_failures_are_rows() {
    let state = tempfile::tempdir().unwrap();
    let emu = emulator(state.path()).await;
    let line = Line::new(12);
    run_all(&emu, &line).await;
    // Someone pinned a device ID on one enrollment; its certificate is then regenerated.
    let c = client(&emu);
    let mut e = c.get("line-dev-003").await.unwrap();
    e.device_id = Some("kitchen-3".into());
    e.attestation = tasks::dps::IndividualEnrollment::x509(
        "line-dev-003",
        &tasks::dps::cert::der_from_pem_or_base64(
            &std::fs::read_to_string(line.certs().join("line-dev-003.pem")).unwrap(),
        )
        .unwrap(),
    )
    .attestation;
    c.create_or_update(&e, tasks::dps::IfMatch::Any)
        .await
        .unwrap();
    write_cert(line.dir.path(), "line-dev-003", 200);
    // And one certificate is missing.
    std::fs::remove_file(line.certs().join("line-dev-007.pem")).unwrap();
    let r = run_all(&emu, &line).await;
    assert_eq!(counts(&r), [0, 1, 0, 10, 1], "{r:?}");
    let updated = c.get("line-dev-003").await.unwrap();
    let pem = std::fs::read_to_string(line.certs().join("line-dev-003.pem")).unwrap();
    let der = tasks::dps::cert::der_from_pem_or_base64(&pem).unwrap();
    assert_eq!(
        updated.sha256_thumbprint().unwrap(),
        identity::sha256_thumbprint(&der)
    );
    assert_eq!(updated.device_id.as_deref(), Some("kitchen-3"), "kept");
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].registration_id, "line-dev-007");
    let csv = std::fs::read_to_string(&r.report_csv).unwrap();
    assert!(
        csv.contains("line-dev-003,") && csv.contains(",updated,"),
        "{csv}"
    );
    assert!(csv.contains("line-dev-007,,failed,"), "{csv}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_run_resumes_where_dps_confirmed() {
    let state = tempfile::tempdir().unwrap();
    let emu = emulator(state.path()).await;
    let line = Line::new(35);
    let cancel = CancellationToken::new();
    let chunks = Arc::new(AtomicUsize::new(0));
    let progress = {
        let (cancel, chunks) = (cancel.clone(), chunks.clone());
        Progress::new(move |e| {
            if let ProgressEvent::Report { .. } = e {
                if chunks.fetch_add(1, Ordering::SeqCst) == 1 {
                    cancel.cancel();
                }
            }
        })
    };
    let e = run(&emu, &line, &progress, &cancel).await.unwrap_err();
    assert!(matches!(e, EnrollError::Dps(DpsError::Cancelled)), "{e}");
    let journal = tasks::dps::enroll::journal::journal_path(&line.manifest());
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap().lines().count(),
        20
    );
    let r = run_all(&emu, &line).await;
    assert_eq!(counts(&r), [15, 0, 0, 20, 0], "{r:?}");
    assert_eq!(RowResult::Skipped.as_str(), "skipped");
    // All 35 are in DPS.
    assert_eq!(client(&emu).query_all(Some(100)).await.unwrap().len(), 35);
    emu.shutdown().await;
}

#[test]
fn the_plan_refuses_duplicates_and_a_missing_cert_dir_before_sending() {
    let line = Line::new(2);
    let cs = "HostName=127.0.0.1:9;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=Y2FuYXJ5LWtleQ==";
    let req = |manifest: PathBuf, certs: PathBuf| BatchEnrollRequest {
        connection_string: Some(Zeroizing::new(cs.into())),
        manifest,
        cert_dir: certs,
        ..Default::default()
    };
    use tasks::error::{DomainError, Input};
    let dup = line.dir.path().join("dup.csv");
    std::fs::write(&dup, "a.uds,dev-a\nb.uds,dev-b\nc.uds,dev-a\n").unwrap();
    let e = req(dup, line.certs()).plan().err().unwrap();
    assert_eq!(e.input(), Some(Input::Manifest));
    assert!(
        e.to_string().contains("line 3") && e.to_string().contains("line 1"),
        "{e}"
    );
    let e = req(line.manifest(), line.dir.path().join("nope"))
        .plan()
        .err()
        .unwrap();
    assert_eq!(e.input(), Some(Input::CertDir));
    let plan = req(line.manifest(), line.certs()).plan().unwrap();
    assert_eq!(plan.rows.len(), 2);
    assert!(plan.report_csv.ends_with("line.csv.enroll-report.csv"));
}
