//! Provisioning end to end, simulated: DPS emulator + virtual DevKit in process, the built-in
//! sample image, real TLS on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tasks::error::DomainError;
use tasks::progress::{CancellationToken, Progress, ProgressEvent};
use tasks::provision::{simulate, Fault, ProvisionError, SimulateOptions};

fn recorder() -> (Progress, Arc<Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (Progress::new(move |e| sink.lock().unwrap().push(e)), events)
}

fn texts(events: &Arc<Mutex<Vec<ProgressEvent>>>) -> String {
    events
        .lock()
        .unwrap()
        .iter()
        .map(|e| format!("{e:?}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_provisioning_reaches_assigned_and_the_hub_registry() {
    let work = tempfile::tempdir().unwrap();
    let (progress, events) = recorder();
    let opts = SimulateOptions {
        work_dir: Some(work.path().to_path_buf()),
        hub: Some("sim-hub.azure-devices.net".into()),
        ..Default::default()
    };
    let report = simulate(opts, &progress, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", texts(&events)));
    assert_eq!(report.assigned_hub, "sim-hub.azure-devices.net");
    assert!(
        report.registration_id.starts_with("az-") && report.registration_id.ends_with("v1v6v2"),
        "{report:?}"
    );
    assert_eq!(report.device_id, report.registration_id);
    assert_eq!(report.in_hub_registry, Some(true));
    // The certificate written is the one the device presented (its thumbprint line).
    let pem = std::fs::read_to_string(&report.alias_cert).unwrap();
    let der = tasks::identity::pem::decode(&pem, Some("CERTIFICATE")).unwrap();
    assert_eq!(
        tasks::identity::sha256_thumbprint(&der),
        report.sha256_thumbprint
    );
    let log = texts(&events);
    assert!(
        log.contains(&format!(
            "alias certificate SHA-256 {}",
            report.sha256_thumbprint
        )),
        "{log}"
    );
    assert!(
        log.contains("device: assigned to sim-hub.azure-devices.net"),
        "{log}"
    );
    // The UDS is never in the progress output.
    let uds_in_eeprom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("devkit/eeprom.json")).unwrap())
            .unwrap();
    let uds = uds_in_eeprom["dps_uds"].as_str().unwrap();
    assert_eq!(uds.len(), 64);
    assert!(!log.to_ascii_lowercase().contains(&uds.to_ascii_lowercase()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_uds_fails_with_401002_and_the_hint() {
    let (progress, events) = recorder();
    let opts = SimulateOptions {
        fault: Some(Fault::WrongUds),
        ..Default::default()
    };
    let err = simulate(opts, &progress, &CancellationToken::new())
        .await
        .unwrap_err();
    match &err {
        ProvisionError::Registration {
            error_code,
            http_status,
            hint,
            ..
        } => {
            assert_eq!(
                (*error_code, *http_status),
                (Some(401002), Some(401)),
                "{}",
                texts(&events)
            );
            // Explained, not just named: the enrollment (from another UDS) was never
            // generated here, and re-enrolling the current certificate fixes it.
            assert!(
                hint.contains("never generated") && hint.contains("re-enroll"),
                "{hint}"
            );
        }
        other => panic!("{other}\n{}", texts(&events)),
    }
    assert_eq!(
        err.next_actions(),
        vec![tasks::error::NextStep::new(
            tasks::error::NextAction::Enroll
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_enrollment_fails_with_an_enable_hint() {
    let (progress, events) = recorder();
    let opts = SimulateOptions {
        fault: Some(Fault::DisabledEnrollment),
        ..Default::default()
    };
    match simulate(opts, &progress, &CancellationToken::new())
        .await
        .unwrap_err()
    {
        ProvisionError::Registration {
            hint, next_actions, ..
        } => {
            assert!(hint.contains("disabled"), "{hint}");
            assert_eq!(
                next_actions,
                [tasks::error::NextStep::new(
                    tasks::error::NextAction::Enroll
                )]
            );
        }
        other => panic!("{other}\n{}", texts(&events)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_provisioning_over_the_tcp_transport_reaches_assigned() {
    // The virtual DevKit as on Windows: console and control channel on loopback TCP.
    let (progress, events) = recorder();
    let opts = SimulateOptions {
        transport: tasks::sim::SimTransport::Tcp { port: 0 },
        ..Default::default()
    };
    let report = simulate(opts, &progress, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", texts(&events)));
    assert_eq!(report.assigned_hub, tasks::dps::emulator::DEFAULT_HUB);
    assert_eq!(report.in_hub_registry, Some(true));
    let log = texts(&events);
    assert!(
        log.contains("tcp://127.0.0.1:"),
        "the virtual DevKit was on TCP: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_to_success() {
    let (progress, events) = recorder();
    let opts = SimulateOptions {
        fault: Some(Fault::Throttle),
        ..Default::default()
    };
    let report = simulate(opts, &progress, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", texts(&events)));
    assert_eq!(report.assigned_hub, tasks::dps::emulator::DEFAULT_HUB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_the_running_job() {
    // The run is cancelled from inside: at its third progress event, mid-run.
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress = {
        let (cancel, seen) = (cancel.clone(), seen.clone());
        Progress::new(move |e| {
            let mut seen = seen.lock().unwrap();
            seen.push(e);
            if seen.len() == 3 {
                cancel.cancel();
            }
        })
    };
    let opts = SimulateOptions {
        registration_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let r = tokio::time::timeout(Duration::from_secs(30), simulate(opts, &progress, &cancel))
        .await
        .expect("bounded");
    assert!(matches!(r, Err(ProvisionError::Cancelled)), "{r:?}");
    assert!(cancel.is_cancelled(), "cancelled while running");
    // It stopped before the device was assigned.
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(
        !seen.iter().any(|e| format!("{e:?}").contains("assigned")),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_simulated_run_in_the_same_work_dir_is_the_same_device_and_reset_starts_over() {
    let work = tempfile::tempdir().unwrap();
    let opts = || SimulateOptions {
        work_dir: Some(work.path().to_path_buf()),
        ..Default::default()
    };
    let first = simulate(opts(), &Progress::none(), &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("first run: {e}"));
    let (progress, events) = recorder();
    let second = simulate(opts(), &progress, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("second run: {e}\n{}", texts(&events)));
    assert_eq!(
        second.registration_id, first.registration_id,
        "same virtual DevKit"
    );
    assert_eq!(
        second.sha256_thumbprint, first.sha256_thumbprint,
        "same identity: the UDS in its chip was kept"
    );
    std::fs::write(work.path().join("keep.txt"), "not ours").unwrap();
    assert!(tasks::provision::reset_simulated(work.path()).unwrap());
    assert!(
        !work.path().join("devkit").exists()
            && !work.path().join("certs").exists()
            && !work.path().join("dps").exists()
    );
    assert!(
        work.path().join("keep.txt").exists(),
        "only the simulated run's folders are removed"
    );
    assert!(
        !tasks::provision::reset_simulated(work.path()).unwrap(),
        "nothing left to reset"
    );
    let third = simulate(opts(), &Progress::none(), &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("after reset: {e}"));
    assert_ne!(
        third.sha256_thumbprint, first.sha256_thumbprint,
        "a reset virtual DevKit is a new device"
    );
}
