//! X.509 CA enrollment groups in the DPS emulator: the service API (through
//! `tasks::dps::ServiceClient` and raw requests) and devices registering through a group with
//! the chain they present over TLS (a leaf signed by an intermediate signed by the group's
//! root, made in the test).

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::Duration;
use tasks::dps::emulator::{make_test_device_cert, Emulator, EmulatorConfig, TestCa};
use tasks::dps::enrollment_group::EnrollmentGroup;
use tasks::dps::retry::RetryPolicy;
use tasks::dps::{
    tls, ClientOptions, DpsError, IfMatch, IndividualEnrollment, ProvisioningStatus, ServiceClient,
};

async fn emulator(dir: &std::path::Path) -> Emulator {
    let mut config = EmulatorConfig::new("127.0.0.1:0".parse().unwrap(), dir);
    config.retry_after_secs = 0;
    Emulator::start(config).await.unwrap()
}

fn client(emu: &Emulator) -> ServiceClient {
    let options = ClientOptions {
        ca_pem: Some(emu.ca_certificate_pem().to_string()),
        retry: RetryPolicy {
            max_attempts: 2,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        },
        ..Default::default()
    };
    ServiceClient::new(emu.connection_string(), options).unwrap()
}

/// A device presenting `chain` (leaf first) with the leaf's key: registers as `id` and polls
/// until DPS's final answer, returned as (HTTP status, body).
async fn register(
    emu: &Emulator,
    id: &str,
    chain: &[&[u8]],
    key_pkcs8: &[u8],
) -> (u16, serde_json::Value) {
    let provider = tls::provider();
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key_pkcs8.to_vec(),
        )))
        .unwrap();
    let certs = chain
        .iter()
        .map(|c| CertificateDer::from(c.to_vec()))
        .collect();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(tls::root_store(Some(emu.ca_certificate_pem())).unwrap())
        .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
            rustls::sign::CertifiedKey::new(certs, key),
        )));
    let http = tls::http_client(config, Duration::from_secs(10)).unwrap();
    let base = format!(
        "https://{}/{}/registrations/{id}",
        emu.device_endpoint(),
        emu.id_scope()
    );
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (
            status,
            r.json::<serde_json::Value>().await.unwrap_or_default(),
        )
    };
    let (mut status, mut body) = answer(
        http.put(format!("{base}/register?api-version=2019-03-31"))
            .json(&serde_json::json!({ "registrationId": id }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    for _ in 0..10 {
        if status != 202 {
            break;
        }
        let op = body["operationId"].as_str().unwrap().to_string();
        (status, body) = answer(
            http.get(format!("{base}/operations/{op}?api-version=2019-03-31"))
                .send()
                .await
                .unwrap(),
        )
        .await;
    }
    (status, body)
}

#[tokio::test]
async fn group_crud_under_etags() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let dps = client(&emu);
    let root = TestCa::root("fleet root").unwrap();
    let created = dps
        .create_or_update_group(
            &EnrollmentGroup::x509_ca("fleet-1", &root.der),
            IfMatch::None,
        )
        .await
        .unwrap();
    let etag = created.etag.clone().unwrap();
    let json = serde_json::to_value(&created).unwrap();
    let signing = &json["attestation"]["x509"]["signingCertificates"]["primary"];
    assert!(signing.get("certificate").is_none(), "{json}");
    assert_eq!(
        signing["info"]["subjectName"].as_str(),
        Some("CN=fleet root"),
        "{json}"
    );
    assert_eq!(json["provisioningStatus"], "enabled");

    // Read-modify-write keeps the stored certificate; a stale ETag is refused.
    let mut got = dps.get_group("fleet-1").await.unwrap();
    got.provisioning_status = Some(ProvisioningStatus::Disabled);
    let updated = dps
        .create_or_update_group(&got, IfMatch::Etag(etag.clone()))
        .await
        .unwrap();
    assert_ne!(updated.etag.as_deref(), Some(etag.as_str()));
    assert!(matches!(
        dps.create_or_update_group(&got, IfMatch::Etag(etag.clone()))
            .await,
        Err(DpsError::EtagMismatch(_))
    ));
    assert!(matches!(
        dps.delete_group("fleet-1", IfMatch::Etag(etag)).await,
        Err(DpsError::EtagMismatch(_))
    ));
    dps.delete_group("fleet-1", IfMatch::Any).await.unwrap();
    assert!(matches!(
        dps.get_group("fleet-1").await,
        Err(DpsError::NotFound(_))
    ));
    emu.shutdown().await;
}

#[tokio::test]
async fn devices_register_through_their_group_chain() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let dps = client(&emu);
    let root = TestCa::root("fleet root").unwrap();
    let intermediate = root.intermediate("fleet intermediate", Some(0)).unwrap();
    let mut group = EnrollmentGroup::x509_ca("fleet-2", &root.der);
    group.iot_hubs = Some(vec!["fleet-hub.azure-devices.net".into()]);
    dps.create_or_update_group(&group, IfMatch::None)
        .await
        .unwrap();

    // Leaf + intermediate, the intermediate signed by the group's root: assigned.
    let leaf = intermediate.leaf("fleet-dev-1").unwrap();
    let (status, body) = register(
        &emu,
        "fleet-dev-1",
        &[&leaf.der, &intermediate.der],
        &leaf.key_pkcs8(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "assigned", "{body}");
    assert_eq!(
        body["registrationState"]["assignedHub"],
        "fleet-hub.azure-devices.net"
    );
    assert_eq!(body["registrationState"]["deviceId"], "fleet-dev-1");

    // Without the intermediate, under another CN, or from another CA: 401002.
    let (status, body) = register(&emu, "fleet-dev-1", &[&leaf.der], &leaf.key_pkcs8()).await;
    assert_eq!((status, body["errorCode"].as_u64()), (401, Some(401002)));
    let (status, _) = register(
        &emu,
        "fleet-dev-9",
        &[&leaf.der, &intermediate.der],
        &leaf.key_pkcs8(),
    )
    .await;
    assert_eq!(status, 401, "the leaf's CN is the registration ID");
    let stranger_root = TestCa::root("fleet root").unwrap();
    let stranger = stranger_root.leaf("fleet-dev-2").unwrap();
    let (status, body) =
        register(&emu, "fleet-dev-2", &[&stranger.der], &stranger.key_pkcs8()).await;
    assert_eq!((status, body["errorCode"].as_u64()), (401, Some(401002)));

    // An individual enrollment wins over the group.
    let (own, own_key) = make_test_device_cert("fleet-dev-3").unwrap();
    dps.upsert(&IndividualEnrollment::x509("fleet-dev-3", &own))
        .await
        .unwrap();
    let leaf3 = intermediate.leaf("fleet-dev-3").unwrap();
    let (status, _) = register(
        &emu,
        "fleet-dev-3",
        &[&leaf3.der, &intermediate.der],
        &leaf3.key_pkcs8(),
    )
    .await;
    assert_eq!(
        status, 401,
        "the individual enrollment's certificate is required"
    );
    let (status, body) = register(&emu, "fleet-dev-3", &[&own], &own_key).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("assigned")));

    // Registration states per group: only the group's devices, paged.
    let cs = emu.connection_string();
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(emu.ca_certificate_pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let query = |continuation: Option<String>| {
        let mut r = http
            .post(format!(
                "https://{}/registrations/fleet-2/query?api-version=2021-10-01",
                cs.host_name()
            ))
            .header(
                "authorization",
                cs.sas_token(Duration::from_secs(60)).as_str(),
            )
            .header("x-ms-max-item-count", "1")
            .json(&serde_json::json!({"query": "*"}));
        if let Some(c) = continuation {
            r = r.header("x-ms-continuation", c);
        }
        r.send()
    };
    let first = query(None).await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(
        first.headers().get("x-ms-continuation").is_none(),
        "one device in the group"
    );
    let states: serde_json::Value = first.json().await.unwrap();
    assert_eq!(states.as_array().map(Vec::len), Some(1), "{states}");
    assert_eq!(states[0]["registrationId"], "fleet-dev-1");

    // A disabled group: the device gets `disabled`.
    let mut got = dps.get_group("fleet-2").await.unwrap();
    got.provisioning_status = Some(ProvisioningStatus::Disabled);
    dps.create_or_update_group(&got, IfMatch::Any)
        .await
        .unwrap();
    let leaf4 = intermediate.leaf("fleet-dev-4").unwrap();
    let (status, body) = register(
        &emu,
        "fleet-dev-4",
        &[&leaf4.der, &intermediate.der],
        &leaf4.key_pkcs8(),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("disabled")),
        "{body}"
    );
    emu.shutdown().await;
}

/// The leniency the RIoT certificates need, and only that: the DevKit's alias certificate
/// (its critical subjectAltName is not RFC 5280-valid) registers through a group whose
/// certificate is its issuer, with the alias key proving possession in TLS. (A test-only
/// anchor: a DeviceID certificate must never be a real group's CA.)
#[tokio::test]
async fn a_riot_alias_certificate_chains_to_its_issuer() {
    use tasks::identity::{self, FirmwareImage, RegistrationId, Uds};
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let dps = client(&emu);
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-firmware");
    let image = FirmwareImage::from_parts(
        std::fs::read(assets.join("sample.bin")).unwrap(),
        &std::fs::read_to_string(assets.join("sample.map")).unwrap(),
    )
    .unwrap();
    let d = identity::derive(
        &Uds::generate(),
        &image,
        &RegistrationId::parse("riot-dev-1").unwrap(),
    )
    .unwrap();
    dps.create_or_update_group(
        &EnrollmentGroup::x509_ca("riot-test-group", &d.device_cert_der),
        IfMatch::None,
    )
    .await
    .unwrap();
    let key = d.alias_key_pkcs8_der();
    for chain in [
        vec![d.alias_cert_der.as_slice(), d.device_cert_der.as_slice()],
        vec![d.alias_cert_der.as_slice()],
    ] {
        let (status, body) = register(&emu, "riot-dev-1", &chain, &key).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("assigned")),
            "{body}"
        );
    }
    // Another device's alias certificate (another UDS) does not chain to it.
    let other = identity::derive(
        &Uds::generate(),
        &image,
        &RegistrationId::parse("riot-dev-1").unwrap(),
    )
    .unwrap();
    let (status, _) = register(
        &emu,
        "riot-dev-1",
        &[&other.alias_cert_der],
        &other.alias_key_pkcs8_der(),
    )
    .await;
    assert_eq!(status, 401);
    emu.shutdown().await;
}
