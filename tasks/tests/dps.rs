//! DPS capability: the service client and the device client against the local emulator, over
//! real TLS on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tasks::dps::device::{
    register_like_device, DeviceRegistrationConfig, DeviceRegistrationError, RegistrationOutcome,
};
use tasks::dps::emulator::{make_test_device_cert, Emulator, EmulatorConfig};
use tasks::dps::hub::HubClient;
use tasks::dps::retry::RetryPolicy;
use tasks::dps::{
    BulkMode, ClientOptions, ConnectionString, DpsError, IfMatch, IndividualEnrollment,
    ProvisioningStatus, ServiceClient,
};
use zeroize::Zeroizing;

async fn emulator(dir: &std::path::Path) -> Emulator {
    let mut config = EmulatorConfig::new("127.0.0.1:0".parse().unwrap(), dir);
    config.retry_after_secs = 0;
    Emulator::start(config).await.unwrap()
}

fn options(emu: &Emulator) -> ClientOptions {
    ClientOptions {
        ca_pem: Some(emu.ca_certificate_pem().to_string()),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
        },
        ..Default::default()
    }
}

fn client(emu: &Emulator) -> ServiceClient {
    ServiceClient::new(emu.connection_string(), options(emu)).unwrap()
}

fn device(emu: &Emulator, id: &str, cert: &[u8], key: &[u8]) -> DeviceRegistrationConfig {
    DeviceRegistrationConfig {
        global_endpoint: emu.device_endpoint(),
        id_scope: emu.id_scope().to_string(),
        registration_id: id.to_string(),
        alias_cert_der: cert.to_vec(),
        alias_key_pkcs8: Zeroizing::new(key.to_vec()),
        trusted_ca_pem: Some(emu.ca_certificate_pem().to_string()),
    }
}

async fn register(
    config: DeviceRegistrationConfig,
) -> (
    Result<RegistrationOutcome, DeviceRegistrationError>,
    Vec<String>,
) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let mut log = move |l: String| sink.lock().unwrap().push(l);
    let r = register_like_device(config, &mut log).await;
    let lines = lines.lock().unwrap().clone();
    (r, lines)
}

#[tokio::test]
async fn enrollment_crud_query_and_bulk() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let c = client(&emu);
    let (cert, _) = make_test_device_cert("dev-1").unwrap();
    let mut e = IndividualEnrollment::x509("dev-1", &cert);
    e.iot_hubs = Some(vec!["hub-a.azure-devices.net".into()]);
    let created = c.upsert(&e).await.unwrap();
    assert!(created.etag.is_some());
    assert_eq!(
        created.sha256_thumbprint().unwrap(),
        tasks::identity::sha256_thumbprint(&cert)
    );
    let got = c.get("dev-1").await.unwrap();
    assert_eq!(got.etag, created.etag);
    // upsert again: reads the ETag and updates under it.
    let updated = c.upsert(&e).await.unwrap();
    assert_ne!(updated.etag, created.etag);

    let many: Vec<_> = (0..12)
        .map(|i| IndividualEnrollment::x509(&format!("bulk-{i:02}"), &cert))
        .collect();
    let r = c.bulk(BulkMode::Create, &many).await.unwrap();
    assert!(r.is_successful, "{r:?}");
    // creating again fails per item, in both chunks
    let r = c.bulk(BulkMode::Create, &many).await.unwrap();
    assert!(!r.is_successful);
    assert_eq!(r.errors.len(), 12);

    let page = c.query_page(Some(5), None).await.unwrap();
    assert_eq!(page.items.len(), 5);
    assert!(page.continuation.is_some());
    let all = c.query_all(Some(5)).await.unwrap();
    assert_eq!(all.len(), 13);

    c.delete("dev-1", IfMatch::None).await.unwrap();
    assert!(matches!(c.get("dev-1").await, Err(DpsError::NotFound(_))));
    assert!(c.get_optional("dev-1").await.unwrap().is_none());
    let r = c.bulk(BulkMode::Delete, &many).await.unwrap();
    assert!(r.is_successful);
    assert!(c.query_all(None).await.unwrap().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn stale_etag_is_a_412_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let c = client(&emu);
    let (cert, _) = make_test_device_cert("dev-etag").unwrap();
    let e = IndividualEnrollment::x509("dev-etag", &cert);
    let first = c.create_or_update(&e, IfMatch::None).await.unwrap();
    let stale = first.etag.clone().unwrap();
    c.create_or_update(&e, IfMatch::Etag(stale.clone()))
        .await
        .unwrap();
    let err = c
        .create_or_update(&e, IfMatch::Etag(stale.clone()))
        .await
        .unwrap_err();
    match &err {
        DpsError::EtagMismatch(s) => assert_eq!(s.status, 412),
        other => panic!("expected a 412, got {other:?}"),
    }
    assert!(err.to_string().contains("412"), "{err}");
    assert!(matches!(
        c.delete("dev-etag", IfMatch::Etag(stale)).await,
        Err(DpsError::EtagMismatch(_))
    ));
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_sas_key_is_401_and_never_shows_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let good = emu.connection_string();
    let bad = ConnectionString::new(
        good.host_name(),
        good.key_name(),
        b"canary-wrong-key-0123456789",
    );
    let c = ServiceClient::new(bad, options(&emu)).unwrap();
    let err = c.get("anything").await.unwrap_err();
    match &err {
        DpsError::Unauthorized(s) => assert_eq!(s.status, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("canary") && !shown.contains("Y2FuYXJ5"),
        "{shown}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn throttled_429_is_retried_after_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmulatorConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.retry_after_secs = 1;
    config.inject_429 = 1;
    let emu = Emulator::start(config).await.unwrap();
    let c = client(&emu);
    let (cert, key) = make_test_device_cert("dev-429").unwrap();
    // First request answered 429 + Retry-After: 1, the retry succeeds.
    let created = c
        .upsert(&IndividualEnrollment::x509("dev-429", &cert))
        .await
        .unwrap();
    assert!(created.etag.is_some());
    // Without retries, the 429 surfaces as Throttled.
    emu.inject_429(1);
    let no_retry = ServiceClient::new(
        emu.connection_string(),
        ClientOptions {
            retry: RetryPolicy::none(),
            ..options(&emu)
        },
    )
    .unwrap();
    assert!(matches!(
        no_retry.get("dev-429").await,
        Err(DpsError::Throttled(_))
    ));
    // The device retries a throttled registration too (the device counter is still armed).
    let (r, lines) = register(device(&emu, "dev-429", &cert, &key)).await;
    assert!(
        matches!(r.unwrap(), RegistrationOutcome::Assigned { .. }),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"HTTP Status: 429".to_string()),
        "{lines:#?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn retries_stop_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmulatorConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.retry_after_secs = 3600;
    config.inject_429 = 5;
    let emu = Emulator::start(config).await.unwrap();
    let opts = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 5,
            max_delay: Duration::from_secs(3600),
            ..Default::default()
        },
        ..options(&emu)
    };
    let cancel = opts.cancel.clone();
    let c = ServiceClient::new(emu.connection_string(), opts).unwrap();
    let task = tokio::spawn(async move { c.get("x").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    let r = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("cancel must stop the retry wait")
        .unwrap();
    assert!(matches!(r, Err(DpsError::Cancelled)), "{r:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn device_registers_polls_and_lands_in_the_hub_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmulatorConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.retry_after_secs = 0;
    config.assigning_polls = 2;
    config.hub = Some("my-hub.azure-devices.net".into());
    let emu = Emulator::start(config).await.unwrap();
    let (cert, key) = make_test_device_cert("dev-ok").unwrap();
    client(&emu)
        .upsert(&IndividualEnrollment::x509("dev-ok", &cert))
        .await
        .unwrap();
    let (r, lines) = register(device(&emu, "dev-ok", &cert, &key)).await;
    assert_eq!(
        r.unwrap(),
        RegistrationOutcome::Assigned {
            assigned_hub: "my-hub.azure-devices.net".into(),
            device_id: "dev-ok".into()
        }
    );
    let scope = emu.id_scope();
    for expected in [
        "Info: >>>Provisioning Status: PROV_DEVICE_REG_STATUS_CONNECTED".to_string(),
        "Registration status: REGISTERING".to_string(),
        "Registration status: ASSIGNING".to_string(),
        format!(
            "PUT /{scope}/registrations/dev-ok/register?api-version=2018-09-01-preview HTTP/1.1"
        ),
        "HTTP Status: 202".to_string(),
        "HTTP Status: 200".to_string(),
        "Registration Information received from service: my-hub.azure-devices.net!".to_string(),
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in {lines:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('{')
                && l.contains("\"assignedHub\":\"my-hub.azure-devices.net\"")),
        "{lines:#?}"
    );
    let hub = "my-hub.azure-devices.net";
    let hub_client = HubClient::with_base_url(
        emu.hub_connection_string(hub),
        emu.hub_base_url(hub),
        options(&emu),
    )
    .unwrap();
    let dev = hub_client
        .get_device("dev-ok")
        .await
        .unwrap()
        .expect("device in the hub registry");
    assert_eq!(dev.device_id, "dev-ok");
    assert!(hub_client
        .get_device("someone-else")
        .await
        .unwrap()
        .is_none());
    // The hub API checks the SAS too.
    let bad = HubClient::with_base_url(
        emu.hub_connection_string("other.azure-devices.net"),
        emu.hub_base_url(hub),
        options(&emu),
    )
    .unwrap();
    assert!(matches!(
        bad.get_device("dev-ok").await,
        Err(DpsError::Unauthorized(_))
    ));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_different_certificate_gets_401002() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let (enrolled, _) = make_test_device_cert("dev-x").unwrap();
    let (other, other_key) = make_test_device_cert("dev-x").unwrap();
    client(&emu)
        .upsert(&IndividualEnrollment::x509("dev-x", &enrolled))
        .await
        .unwrap();
    let (r, lines) = register(device(&emu, "dev-x", &other, &other_key)).await;
    match r.unwrap() {
        RegistrationOutcome::Failed {
            http_status,
            error_code,
            message,
        } => {
            assert_eq!((http_status, error_code), (Some(401), Some(401002)));
            assert_eq!(message, "Invalid certificate");
        }
        o => panic!("{o:?}"),
    }
    assert!(lines.contains(&"HTTP Status: 401".to_string()));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"errorCode\":401002") && l.contains("Invalid certificate")),
        "{lines:#?}"
    );
    assert!(lines.contains(&"Failure encountered on registration!".to_string()));
    // CN must equal the registration ID even when the DER is the enrolled one.
    let (cn_other, cn_key) = make_test_device_cert("someone-else").unwrap();
    client(&emu)
        .upsert(&IndividualEnrollment::x509("dev-y", &cn_other))
        .await
        .unwrap();
    let (r, _) = register(device(&emu, "dev-y", &cn_other, &cn_key)).await;
    assert!(matches!(
        r.unwrap(),
        RegistrationOutcome::Failed {
            error_code: Some(401002),
            ..
        }
    ));
    emu.shutdown().await;
}

#[tokio::test]
async fn disabled_enrollment_fails_registration() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let (cert, key) = make_test_device_cert("dev-off").unwrap();
    let mut e = IndividualEnrollment::x509("dev-off", &cert);
    e.provisioning_status = Some(ProvisioningStatus::Disabled);
    client(&emu).upsert(&e).await.unwrap();
    let (r, lines) = register(device(&emu, "dev-off", &cert, &key)).await;
    match r.unwrap() {
        RegistrationOutcome::Failed { message, .. } => {
            assert!(message.contains("disabled"), "{message}")
        }
        o => panic!("{o:?}"),
    }
    assert!(lines.contains(&"Failure encountered on registration!".to_string()));
    emu.shutdown().await;
}

#[tokio::test]
async fn enrolled_certificate_without_its_private_key_fails_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let (cert, _) = make_test_device_cert("dev-stolen").unwrap();
    let (_, thief_key) = make_test_device_cert("thief").unwrap();
    client(&emu)
        .upsert(&IndividualEnrollment::x509("dev-stolen", &cert))
        .await
        .unwrap();
    let (r, lines) = register(device(&emu, "dev-stolen", &cert, &thief_key)).await;
    assert!(
        matches!(r, Err(DeviceRegistrationError::Connect { .. })),
        "{r:?} {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("HTTP Status")),
        "no HTTP exchange may happen: {lines:#?}"
    );
    emu.shutdown().await;
}

/// Proof of possession is checked in both TLS versions: a raw handshake with the right key
/// succeeds and with another key fails, for TLS 1.2 and for TLS 1.3.
#[tokio::test]
async fn handshake_signature_is_verified_in_tls12_and_tls13() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let (cert, key) = make_test_device_cert("dev-tls").unwrap();
    let (_, wrong_key) = make_test_device_cert("dev-tls").unwrap();
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        for (k, should_work) in [(&key, true), (&wrong_key, false)] {
            let base =
                tasks::dps::tls::client_config_with_cert(Some(emu.ca_certificate_pem()), &cert, k)
                    .unwrap();
            let config = rustls::ClientConfig::builder_with_protocol_versions(&[version])
                .with_root_certificates(
                    tasks::dps::tls::root_store(Some(emu.ca_certificate_pem())).unwrap(),
                )
                .with_client_cert_resolver(base.client_auth_cert_resolver.clone());
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tcp = tokio::net::TcpStream::connect(emu.device_endpoint())
                .await
                .unwrap();
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            // In TLS 1.2 the server refuses inside the handshake; in TLS 1.3 the client finishes
            // before the server has checked its signature, so the refusal arrives on the first read.
            let served = match connector.connect(name, tcp).await {
                Err(e) => {
                    assert!(!should_work, "{version:?}: {e}");
                    false
                }
                Ok(mut tls) => {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let _ = tls.write_all(b"GET /x?api-version=2019-03-31 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
                    let mut buf = Vec::new();
                    let read = tls.read_to_end(&mut buf).await;
                    read.is_ok() && buf.starts_with(b"HTTP/1.1 404")
                }
            };
            assert_eq!(served, should_work, "{version:?} right key = {should_work}");
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let (scope, ca) = (
        emu.id_scope().to_string(),
        emu.ca_certificate_pem().to_string(),
    );
    let (cert, _) = make_test_device_cert("dev-keep").unwrap();
    client(&emu)
        .upsert(&IndividualEnrollment::x509("dev-keep", &cert))
        .await
        .unwrap();
    emu.shutdown().await;
    let emu = emulator(dir.path()).await;
    assert_eq!(
        (emu.id_scope(), emu.ca_certificate_pem()),
        (scope.as_str(), ca.as_str())
    );
    assert!(client(&emu)
        .get_optional("dev-keep")
        .await
        .unwrap()
        .is_some());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("secrets.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let banner = emu.banner();
    let lines: Vec<&str> = banner.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("service endpoint: https://127.0.0.1:"));
    assert!(lines[1].starts_with("connection string: HostName=127.0.0.1:"));
    assert_eq!(lines[2], format!("id scope: {scope}"));
    assert!(lines[3].starts_with("device endpoint: 127.0.0.1:"));
    assert!(lines[4].starts_with("ca certificate: ") && lines[4].ends_with("ca.pem"));
    emu.shutdown().await;
}

/// The real thing: a DICE/RIoT alias certificate (not RFC 5280-valid) and its derived key.
#[tokio::test]
async fn a_real_riot_alias_identity_registers() {
    use tasks::identity::{derive, FirmwareImage, RegistrationId, Uds};
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dice-vectors/explicit-id-small");
    let image = FirmwareImage::load(
        &fixtures.join("DevKitDPS.ino.bin"),
        &fixtures.join("DevKitDPS.ino.map"),
    )
    .unwrap();
    let id = RegistrationId::parse("my-devkit-01").unwrap();
    let identity = derive(&Uds::generate(), &image, &id).unwrap();
    let other = derive(&Uds::generate(), &image, &id).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    client(&emu)
        .upsert(&IndividualEnrollment::x509(
            id.as_str(),
            &identity.alias_cert_der,
        ))
        .await
        .unwrap();
    let (r, lines) = register(device(
        &emu,
        id.as_str(),
        &identity.alias_cert_der,
        &identity.alias_key_pkcs8_der(),
    ))
    .await;
    assert!(
        matches!(r.unwrap(), RegistrationOutcome::Assigned { .. }),
        "{lines:#?}"
    );
    // Same image and registration ID, another UDS: another alias certificate -> 401002.
    let (r, _) = register(device(
        &emu,
        id.as_str(),
        &other.alias_cert_der,
        &other.alias_key_pkcs8_der(),
    ))
    .await;
    assert!(matches!(
        r.unwrap(),
        RegistrationOutcome::Failed {
            error_code: Some(401002),
            ..
        }
    ));
    // The enrolled alias certificate with the other device's key: refused in the handshake.
    let (r, _) = register(device(
        &emu,
        id.as_str(),
        &identity.alias_cert_der,
        &other.alias_key_pkcs8_der(),
    ))
    .await;
    assert!(
        matches!(r, Err(DeviceRegistrationError::Connect { .. })),
        "{r:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_server_outside_the_trusted_ca_is_refused_by_the_device() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (emu, other) = (emulator(a.path()).await, emulator(b.path()).await);
    let (cert, key) = make_test_device_cert("dev-ca").unwrap();
    let mut config = device(&emu, "dev-ca", &cert, &key);
    config.trusted_ca_pem = Some(other.ca_certificate_pem().to_string());
    let (r, lines) = register(config).await;
    match r {
        Err(DeviceRegistrationError::Connect { reason, .. }) => assert!(
            reason.to_ascii_lowercase().contains("certificate"),
            "{reason}"
        ),
        other => panic!("{other:?} {lines:#?}"),
    }
    emu.shutdown().await;
    other.shutdown().await;
}

/// Slowloris: clients that connect and then stall (before the TLS handshake, or trickling a
/// request header after it) are closed after the read timeout, at most `max_connections` are
/// held at once, and a fresh client is served meanwhile.
#[tokio::test]
async fn slow_clients_are_closed_and_a_fresh_client_is_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmulatorConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.limits.read_timeout = Duration::from_millis(400);
    config.limits.max_connections = 8;
    let emu = Emulator::start(config).await.unwrap();
    let addr = emu.service_socket_addr();
    let tls = Arc::new(tasks::dps::tls::client_config(Some(emu.ca_certificate_pem())).unwrap());
    let started = std::time::Instant::now();

    let mut slow = Vec::new();
    for i in 0..24 {
        let tls = tls.clone();
        slow.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            // Ends when the server closes the connection (EOF or reset), or never.
            async fn closed(mut s: impl AsyncReadExt + Unpin) {
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
            }
            if i % 2 == 0 {
                // Stall before the TLS handshake.
                closed(tcp).await;
            } else {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let Ok(mut s) = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await else { return };
                // Trickle a header that never ends, one byte every 100 ms.
                let (mut r, mut w) = tokio::io::split(&mut s);
                let trickle = async {
                    for b in b"GET /enrollments/x?api-version=2021-10-01 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".iter().cycle() {
                        if w.write_all(&[*b]).await.is_err() || w.flush().await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                tokio::select! {
                    _ = trickle => {}
                    _ = closed(&mut r) => {}
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A fresh client is served while the slow ones hold (or wait for) every slot.
    let served = tokio::time::timeout(
        Duration::from_secs(10),
        client(&emu).query_page(Some(1), None),
    )
    .await;
    assert!(
        matches!(served, Ok(Ok(_))),
        "fresh client not served: {served:?}"
    );
    // Every slow connection was closed by the server (far before the test's own limit).
    for s in slow {
        tokio::time::timeout(Duration::from_secs(20), s)
            .await
            .expect("a slow connection was never closed")
            .unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    emu.shutdown().await;
}

/// A server certificate the client does not trust is not retried: retrying cannot fix it.
#[tokio::test]
async fn untrusted_server_certificates_are_not_retried() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (emu, other) = (emulator(a.path()).await, emulator(b.path()).await);
    let options = ClientOptions {
        ca_pem: Some(other.ca_certificate_pem().to_string()),
        // A retry would wait 60 s: the test's 20 s limit tells whether one happened.
        retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(60),
        },
        ..Default::default()
    };
    let c = ServiceClient::new(emu.connection_string(), options).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), c.get_optional("nobody"))
        .await
        .expect("a certificate error was retried");
    match r {
        Err(DpsError::Transport { reason, .. }) => assert!(
            reason.to_ascii_lowercase().contains("certificate"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    emu.shutdown().await;
    other.shutdown().await;
}

/// Issue 20 item 6: once DPS holds the enrollment, a project state that cannot be written
/// (here `.devkit` is a file, which fails as root too) is a warning with a retry, the ETag is
/// kept, and enrolling again once the state can be written records it.
#[tokio::test]
async fn enroll_survives_a_state_that_cannot_be_saved_and_recovers_on_the_next_run() {
    use tasks::dps::enroll::{self, EnrollRequest};
    use tasks::error::NextAction;
    use tasks::identity::{self, RegistrationId};
    use tasks::progress::{CancellationToken, Progress};
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(&dir.path().join("emulator")).await;
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let uds = identity::Uds::parse(&"3c".repeat(32)).unwrap();
    let image = tasks::provision::sample::image().unwrap();
    let d = identity::derive(&uds, &image, &RegistrationId::parse("full-disk-1").unwrap()).unwrap();
    let cert = identity::files::write_identity(&d, dir.path(), Default::default()).unwrap()[0]
        .path
        .clone();
    std::fs::write(project.join(".devkit"), "not a directory").unwrap();
    let request = || EnrollRequest {
        connection_string: Some(emu.connection_string().to_secret_string()),
        ca_file: Some(emu.ca_certificate_path().to_path_buf()),
        cert: Some(cert.clone()),
        project_dir: project.clone(),
        ..Default::default()
    };
    let run = |r: EnrollRequest| async move {
        enroll::run(
            r.plan().unwrap(),
            &Progress::none(),
            &CancellationToken::new(),
        )
        .await
    };
    let first = run(request()).await.unwrap();
    assert!(
        first.warnings.iter().any(|w| w.contains("state.json")),
        "{:?}",
        first.warnings
    );
    assert_eq!(first.next_actions[0].action, NextAction::Retry);
    let held = client(&emu).get("full-disk-1").await.unwrap();
    assert_eq!(
        first.etag.as_deref(),
        held.etag.as_deref().map(|e| e.trim_matches('"'))
    );
    assert_eq!(first.sha256_thumbprint, d.sha256_thumbprint());
    // The next run, with the state writable: recorded, no warning.
    std::fs::remove_file(project.join(".devkit")).unwrap();
    let second = run(request()).await.unwrap();
    assert!(second.warnings.is_empty() && second.next_actions.is_empty());
    let state = tasks::project::ProjectState::load(&project).unwrap();
    assert_eq!(
        state.last_enrolled.unwrap().sha256_thumbprint,
        d.sha256_thumbprint()
    );
    emu.shutdown().await;
}
