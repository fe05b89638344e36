//! `device-upload` orchestration: build (stand-in arduino-cli) -> identity drift guard ->
//! pause the monitor -> flash -> resume. No probe is attached on the test machines, so the
//! probe-rs flash step fails with "no probe": everything before it, and the resume after it,
//! is what these tests check.
//!
//! Unix-only: the arduino-cli stand-in is a shell script.
#![cfg(unix)]

#[path = "fixtures/arduino-cli-standin/project.rs"]
mod standin;

use standin::{recorder, vector, Project};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tasks::flash::{Backend, FlashError};
use tasks::identity::{self, FirmwareImage, RegistrationId, Uds};
use tasks::progress::{CancellationToken, ProgressEvent};
use tasks::project::{IdentityRecord, IdentitySource, ProjectState};
use tasks::upload::{check_drift, device_upload, DeviceUploadOptions, PortPause, UploadError};

/// A monitor stand-in counting pauses and resumes (its guard resumes on drop).
#[derive(Default, Clone)]
struct CountingMonitor {
    paused: Arc<AtomicUsize>,
    resumed: Arc<AtomicUsize>,
}

struct Resume(Arc<AtomicUsize>);
impl Drop for Resume {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl PortPause for CountingMonitor {
    type Guard = Resume;
    async fn pause(&self, port: &str) -> Result<Resume, String> {
        assert_eq!(port, "/dev/ttyACM7");
        self.paused.fetch_add(1, Ordering::SeqCst);
        Ok(Resume(self.resumed.clone()))
    }
}

struct Vector {
    image: FirmwareImage,
    uds: Uds,
    reg: RegistrationId,
}

fn load(case: &str) -> Vector {
    let dir = vector(case);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap();
    Vector {
        image: FirmwareImage::load(
            &dir.join("DevKitDPS.ino.bin"),
            &dir.join("DevKitDPS.ino.map"),
        )
        .unwrap(),
        uds: Uds::parse(json["inputs"]["uds"].as_str().unwrap()).unwrap(),
        reg: RegistrationId::parse(json["inputs"]["registration_id"].as_str().unwrap()).unwrap(),
    }
}

/// Record in the project that `case`'s identity was generated (as `generate-cert` does).
fn record_generated(p: &Project, case: &str) -> IdentityRecord {
    let v = load(case);
    let id = identity::derive(&v.uds, &v.image, &v.reg).unwrap();
    let rec =
        identity::files::generated_record(&id, &p.root().join(format!("{}.pem", v.reg.as_str())));
    ProjectState::update(p.root(), |s| s.last_generated = Some(rec.clone())).unwrap();
    rec
}

fn options(p: &Project) -> DeviceUploadOptions {
    DeviceUploadOptions {
        project_root: p.root().to_path_buf(),
        build: p.options("0ne0001A2B3"),
        backend: Backend::ProbeRs { probe: None },
        port: Some("/dev/ttyACM7".into()),
    }
}

#[tokio::test]
async fn drift_is_warned_before_flashing_with_the_new_thumbprint_and_the_monitor_resumes() {
    let p = Project::new(true);
    // The project's certificate was generated for the small image; the new build is the medium
    // one, whose .riot_fw differs.
    let old = record_generated(&p, "explicit-id-small");
    p.wrapper("1.2.2", "explicit-id-medium-crlf");
    let medium = load("explicit-id-medium-crlf");
    let small = load("explicit-id-small");
    assert_ne!(medium.image.fwid(), small.image.fwid());
    let expected_thumb = identity::derive(&small.uds, &medium.image, &small.reg)
        .unwrap()
        .sha256_thumbprint();

    let monitor = CountingMonitor::default();
    let (progress, events) = recorder();
    let r = device_upload(
        &options(&p),
        Some(&small.uds),
        &monitor,
        &progress,
        &CancellationToken::new(),
    )
    .await;
    let events = events.lock().unwrap().clone();

    // No probe here: the flash step fails, after the drift warning and with the monitor resumed.
    assert!(
        matches!(r, Err(UploadError::Flash(FlashError::NoProbe { .. }))),
        "{r:?}"
    );
    assert_eq!(monitor.paused.load(Ordering::SeqCst), 1);
    assert_eq!(monitor.resumed.load(Ordering::SeqCst), 1);
    let warn_at = events
        .iter()
        .position(|e| matches!(e, ProgressEvent::Warning { message } if message.contains("changes the device identity")))
        .expect("drift warning");
    let flash_at = events
        .iter()
        .position(|e| matches!(e, ProgressEvent::Begin { title } if title.starts_with("Flashing")))
        .expect("flash began");
    assert!(warn_at < flash_at, "warned before flashing");
    let ProgressEvent::Warning { message } = &events[warn_at] else {
        unreachable!()
    };
    assert!(message.contains(&expected_thumb), "{message}");
    assert!(
        message.contains(&old.fwid) && message.contains(&hex::encode(medium.image.fwid())),
        "{message}"
    );
    assert!(message.contains("my-devkit-01"), "{message}");
    // The medium image's .riot_core differs too: the guard says the DeviceID key changes.
    assert!(
        message.contains("RIoT core digest")
            && message.contains(&hex::encode(medium.image.core_digest())),
        "{message}"
    );
    assert!(
        message.contains("regenerated") && message.contains("enrollment"),
        "{message}"
    );
}

#[test]
fn the_guard_says_which_digest_changed() {
    let p = Project::new(true);
    let old = record_generated(&p, "explicit-id-small");
    let state = ProjectState::load(p.root()).unwrap();
    let (small, medium) = (load("explicit-id-small"), load("explicit-id-medium-crlf"));

    // Both regions differ: FWID and core digest; with the UDS, the DeviceID key is known to change.
    let d = check_drift(&state, &medium.image, None, Some(&small.uds)).unwrap();
    assert_eq!((d.fwid_changed, d.core_digest_changed), (true, Some(true)));
    assert_eq!(d.device_id_key_changed, Some(true));
    assert_eq!(
        d.previous_core_digest.as_deref(),
        Some(hex::encode(small.image.core_digest()).as_str())
    );
    assert!(
        d.message.contains("FWID") && d.message.contains("DeviceID key changes"),
        "{}",
        d.message
    );

    // Only the core digest differs (FWID recorded equal): still drift, and said so.
    let mut rec = old.clone();
    rec.fwid = hex::encode(medium.image.fwid());
    let only_core = ProjectState {
        last_generated: Some(rec),
        ..Default::default()
    };
    let d = check_drift(&only_core, &medium.image, None, None).unwrap();
    assert_eq!((d.fwid_changed, d.core_digest_changed), (false, Some(true)));
    assert!(
        !d.message.contains("FWID (SHA-256") && d.message.contains("RIoT core digest"),
        "{}",
        d.message
    );

    // Only FWID differs: the DeviceID key stays.
    let mut rec = old.clone();
    rec.core_digest = Some(hex::encode(medium.image.core_digest()));
    let only_fw = ProjectState {
        last_generated: Some(rec),
        ..Default::default()
    };
    let d = check_drift(&only_fw, &medium.image, None, None).unwrap();
    assert_eq!((d.fwid_changed, d.core_digest_changed), (true, Some(false)));
    assert!(!d.message.contains("DeviceID key changes"), "{}", d.message);

    // A record from before the core digest was kept: FWID decides, and the message says the rest is unknown.
    let mut rec = old;
    rec.core_digest = None;
    let legacy = ProjectState {
        last_generated: Some(rec),
        ..Default::default()
    };
    assert_eq!(check_drift(&legacy, &small.image, None, None), None);
    let d = check_drift(&legacy, &medium.image, None, None).unwrap();
    assert_eq!(d.core_digest_changed, None);
    assert!(d.message.contains("not recorded"), "{}", d.message);
}

#[tokio::test]
async fn same_fwid_is_not_drift_and_without_uds_the_next_actions_are_typed() {
    let p = Project::new(true);
    record_generated(&p, "explicit-id-small");
    let small = load("explicit-id-small");
    let state = ProjectState::load(p.root()).unwrap();
    assert_eq!(
        check_drift(&state, &small.image, None, Some(&small.uds)),
        None
    );
    // Changes outside .riot_fw keep FWID: the medium images of two cases share it.
    assert_eq!(
        load("explicit-id-medium-crlf").image.fwid(),
        load("uppercase-uds-medium").image.fwid()
    );

    let medium = load("explicit-id-medium-crlf");
    let d = check_drift(&state, &medium.image, None, None).unwrap();
    assert_eq!(d.new_sha256_thumbprint, None);
    assert!(
        d.message
            .contains("Regenerate the certificate for this build with the device's UDS")
            && !d.message.contains("devkit "),
        "{}",
        d.message
    );
    assert_eq!(
        d.next_actions,
        [
            tasks::error::NextStep::new(tasks::error::NextAction::RegenerateCert),
            tasks::error::NextStep::new(tasks::error::NextAction::Enroll)
        ]
    );
    assert_eq!(d.reference, IdentitySource::Generated);

    // An enrollment takes precedence over a generated certificate.
    let mut enrolled = state.last_generated.clone().unwrap();
    enrolled.source = IdentitySource::Enrolled;
    enrolled.fwid = hex::encode(medium.image.fwid());
    enrolled.core_digest = Some(hex::encode(medium.image.core_digest()));
    let state = ProjectState {
        last_enrolled: Some(enrolled),
        ..state
    };
    assert_eq!(check_drift(&state, &medium.image, None, None), None);
    assert_eq!(
        check_drift(&state, &small.image, None, None)
            .unwrap()
            .reference,
        IdentitySource::Enrolled
    );
}

#[tokio::test]
async fn nothing_recorded_means_no_drift_and_a_bad_build_never_pauses_the_monitor() {
    let p = Project::new(false); // no platform: the build fails
    let monitor = CountingMonitor::default();
    let (progress, _) = recorder();
    let r = device_upload(
        &options(&p),
        None,
        &monitor,
        &progress,
        &CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(
            r,
            Err(UploadError::Build(
                tasks::build::BuildError::PlatformMissing { .. }
            ))
        ),
        "{r:?}"
    );
    assert_eq!(monitor.paused.load(Ordering::SeqCst), 0);

    let state = ProjectState::load(p.root()).unwrap();
    let small = load("explicit-id-small");
    assert_eq!(check_drift(&state, &small.image, None, None), None);
}

#[tokio::test]
async fn a_corrupt_project_state_warns_and_does_not_block_the_upload() {
    let p = Project::new(true);
    std::fs::create_dir_all(p.root().join(".devkit")).unwrap();
    std::fs::write(p.root().join(".devkit/state.json"), b"{not json").unwrap();
    let (progress, events) = recorder();
    let r = device_upload(
        &options(&p),
        None,
        &CountingMonitor::default(),
        &progress,
        &CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(r, Err(UploadError::Flash(FlashError::NoProbe { .. }))),
        "{r:?}"
    );
    let events = events.lock().unwrap().clone();
    assert!(
        events.iter().any(
            |e| matches!(e, ProgressEvent::Warning { message } if message.contains("state.json"))
        ),
        "{events:?}"
    );
}
