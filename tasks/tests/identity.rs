//! Identity capability: every device-verified vector byte for byte through the library.

use std::path::{Path, PathBuf};
use tasks::identity::{self, pem, FirmwareImage, RegistrationId, Uds};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dice-vectors")
}

struct Case {
    name: String,
    dir: PathBuf,
    json: serde_json::Value,
}

fn cases() -> Vec<Case> {
    let mut out: Vec<Case> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .map(|dir| Case {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            json: serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap(),
            dir,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(out.len(), 5, "all shared vectors are present");
    out
}

fn s<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(|v| v.as_str())
}

fn pem_file(dir: &Path, name: &str) -> Vec<u8> {
    pem::decode(&std::fs::read_to_string(dir.join(name)).unwrap(), None).unwrap()
}

fn hex_addr(text: &str) -> u32 {
    u32::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn every_vector_is_reproduced_byte_for_byte() {
    use sha2::Digest;
    for case in cases() {
        let j = &case.json;
        let name = &case.name;
        let image = FirmwareImage::load(
            &case.dir.join(s(j, &["inputs", "bin"]).unwrap()),
            &case.dir.join(s(j, &["inputs", "map"]).unwrap()),
        )
        .unwrap();
        assert_eq!(
            image.flash_origin,
            hex_addr(s(j, &["expected", "flash_origin"]).unwrap()),
            "{name}"
        );
        let core = &j["expected"]["riot_core"];
        assert_eq!(
            image.riot_core,
            hex_addr(core[0].as_str().unwrap())..hex_addr(core[1].as_str().unwrap()),
            "{name}"
        );
        let fw = &j["expected"]["riot_fw"];
        assert_eq!(
            image.riot_fw,
            hex_addr(fw[0].as_str().unwrap())..hex_addr(fw[1].as_str().unwrap()),
            "{name}"
        );
        let o = image.flash_origin;
        let core_bytes =
            &image.bin()[(image.riot_core.start - o) as usize..(image.riot_core.end - o) as usize];
        assert_eq!(
            hex::encode(sha2::Sha256::digest(core_bytes)),
            s(j, &["expected", "riot_core_sha256"]).unwrap(),
            "{name}"
        );
        assert_eq!(
            hex::encode(image.fwid()),
            s(j, &["expected", "riot_fw_sha256"]).unwrap(),
            "{name}"
        );

        let uds = Uds::parse(s(j, &["inputs", "uds"]).unwrap()).unwrap();
        assert_eq!(
            hex::encode(*identity::cdi(&uds, &image)),
            s(j, &["expected", "cdi"]).unwrap(),
            "{name}"
        );

        let id = match s(j, &["inputs", "registration_id"]) {
            Some(r) => RegistrationId::parse(r).unwrap(),
            None => RegistrationId::from_mac_and_version(
                s(j, &["inputs", "mac"]).unwrap(),
                s(j, &["inputs", "firmware_version"]).unwrap(),
            )
            .unwrap(),
        };
        assert_eq!(
            id.as_str(),
            s(j, &["expected", "registration_id"]).unwrap(),
            "{name}"
        );

        let d = identity::derive(&uds, &image, &id).unwrap();
        let alias_file = s(j, &["expected", "alias_cert_file"]).unwrap();
        assert_eq!(
            d.alias_cert_der,
            pem_file(&case.dir, alias_file),
            "{name}: alias certificate"
        );
        assert_eq!(
            d.device_cert_der,
            pem_file(&case.dir, "device-cert.pem"),
            "{name}: DeviceID certificate"
        );
        assert_eq!(
            pem::decode(&d.device_id_public_pem(), None).unwrap(),
            pem_file(&case.dir, "device-id-pub.pem"),
            "{name}: DeviceID public key"
        );
        assert_eq!(
            pem::decode(&d.alias_key_pem(), None).unwrap(),
            pem_file(&case.dir, "alias-key.pem"),
            "{name}: alias key"
        );
        assert_eq!(
            pem::decode(&d.alias_cert_pem(), Some("CERTIFICATE")).unwrap(),
            d.alias_cert_der
        );
        assert_eq!(d.fwid_hex(), s(j, &["expected", "riot_fw_sha256"]).unwrap());
        // Thumbprints are over the DER, upper-case.
        assert_eq!(
            d.sha256_thumbprint(),
            hex::encode_upper(sha2::Sha256::digest(&d.alias_cert_der))
        );

        // The lenient reader understands what the device presents.
        let info = identity::inspect(&d.alias_cert_der).unwrap();
        assert!(info.is_alias && info.signature_valid, "{name}");
        assert_eq!(info.subject_cn, id.as_str());
        assert_eq!(info.issuer_cn, "devkitdice");
        assert_eq!(
            info.fwid.as_deref(),
            Some(hex::encode(image.fwid()).as_str())
        );
        assert_eq!(
            info.device_id_public_key.as_deref(),
            Some(hex::encode_upper(d.device_id_public).as_str())
        );
        assert_eq!(info.public_key, hex::encode_upper(d.alias_public));
        assert_eq!(info.sha1_thumbprint, d.sha1_thumbprint());
        let dev = identity::inspect(&d.device_cert_der).unwrap();
        assert!(!dev.is_alias && dev.signature_valid, "{name}");
        assert_eq!(dev.subject_cn, "devkitdice");
    }
}

#[test]
fn dice_hash_of_abc() {
    assert_eq!(
        hex::encode(identity::dsha::dsha(b"abc")),
        "bb392cd2622eecbce49cd242285d0009ef70eae1a3e43e5ec8eae7c779b9f600"
    );
}
