//! The emulator's own CA and server certificate, made with rcgen (no crypto backend feature)
//! through an external signer backed by a p256 key. Signatures use randomised (hedged RFC 6979)
//! nonces: never a fixed nonce (that is the device's mistake, devkit-facts.md §3).

use p256::ecdsa::signature::RandomizedSigner;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, SanType,
};
use sha2::Digest;
use zeroize::Zeroizing;

/// A P-256 key usable as an rcgen signer. No Debug (it holds a private key).
pub(crate) struct P256Signer {
    key: SigningKey,
    point: Vec<u8>,
}

impl P256Signer {
    pub fn generate() -> Self {
        Self::from_key(SigningKey::random(&mut rand::rngs::OsRng))
    }
    fn from_key(key: SigningKey) -> Self {
        let point = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        P256Signer { key, point }
    }
    pub fn from_pkcs8(der: &[u8]) -> Option<Self> {
        SigningKey::from_pkcs8_der(der).ok().map(Self::from_key)
    }
    pub fn pkcs8(&self) -> Zeroizing<Vec<u8>> {
        // Encoding a valid key cannot fail; an empty key would be refused by rustls later.
        self.key
            .to_pkcs8_der()
            .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
            .unwrap_or_default()
    }
    /// SubjectKeyIdentifier: the first 20 bytes of SHA-256 over the public point.
    fn key_id(&self) -> Vec<u8> {
        sha2::Sha256::digest(&self.point)[..20].to_vec()
    }
}

impl rcgen::PublicKeyData for P256Signer {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for P256Signer {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let sig: DerSignature = self.key.sign_with_rng(&mut rand::rngs::OsRng, msg);
        Ok(sig.as_bytes().to_vec())
    }
}

fn random_serial() -> rcgen::SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    rcgen::SerialNumber::from_slice(&bytes)
}

/// The CA's parameters: rebuilt identically from the key on every start, so only the key
/// and the certificate need to persist.
pub(crate) fn ca_params(ca: &P256Signer) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "DevKit DPS emulator CA");
    dn.push(
        DnType::OrganizationName,
        "DevKit DPS (local emulator, not Azure)",
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.key_identifier_method = KeyIdMethod::PreSpecified(ca.key_id());
    p
}

/// A new self-signed CA certificate (DER), valid for ten years.
pub(crate) fn make_ca_cert(ca: &P256Signer) -> Result<Vec<u8>, rcgen::Error> {
    let mut p = ca_params(ca);
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(3650);
    p.serial_number = Some(random_serial());
    Ok(p.self_signed(ca)?.der().to_vec())
}

/// A server certificate for `hosts` (IP addresses or DNS names) signed by the CA; returns
/// (certificate DER, server key PKCS#8).
pub(crate) fn make_server_cert(
    ca: &P256Signer,
    hosts: &[String],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), rcgen::Error> {
    let server = P256Signer::generate();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "DevKit DPS emulator");
    p.distinguished_name = dn;
    let mut sans = Vec::new();
    for h in hosts {
        let san = match h.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(h.clone().try_into()?),
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    p.subject_alt_names = sans;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::PreSpecified(server.key_id());
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(365);
    p.serial_number = Some(random_serial());
    let issuer = Issuer::new(ca_params(ca), ca);
    let cert = p.signed_by(&server, &issuer)?;
    Ok((cert.der().to_vec(), server.pkcs8()))
}

/// A self-signed P-256 client certificate with subject CN `cn`, and its PKCS#8 key: a stand-in
/// device identity for tests and demos that do not need the DevKit's DICE derivation.
pub fn make_test_device_cert(cn: &str) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), rcgen::Error> {
    let key = P256Signer::generate();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_identifier_method = KeyIdMethod::PreSpecified(key.key_id());
    p.serial_number = Some(random_serial());
    Ok((p.self_signed(&key)?.der().to_vec(), key.pkcs8()))
}

/// A small P-256 certificate authority for tests of X.509 CA enrollment groups: a root,
/// intermediates under it, device leaves (subject CN = registration ID, clientAuth). Real
/// DPS users build such chains with Microsoft's `certGen.sh`; no Debug (it holds a key).
pub struct TestCa {
    /// This certificate (DER).
    pub der: Vec<u8>,
    params: CertificateParams,
    key: P256Signer,
}

impl TestCa {
    fn params(cn: &str, is_ca: IsCa, key: &P256Signer) -> CertificateParams {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        p.distinguished_name = dn;
        p.is_ca = is_ca;
        p.key_identifier_method = KeyIdMethod::PreSpecified(key.key_id());
        p.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(365);
        p.serial_number = Some(random_serial());
        p
    }

    fn sign(&self, p: CertificateParams, key: P256Signer) -> Result<TestCa, rcgen::Error> {
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let der = p.signed_by(&key, &issuer)?.der().to_vec();
        Ok(TestCa {
            der,
            params: p,
            key,
        })
    }

    /// A self-signed root CA (no path length limit).
    pub fn root(cn: &str) -> Result<TestCa, rcgen::Error> {
        let key = P256Signer::generate();
        let mut p = Self::params(cn, IsCa::Ca(BasicConstraints::Unconstrained), &key);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.use_authority_key_identifier_extension = false;
        let der = p.self_signed(&key)?.der().to_vec();
        Ok(TestCa {
            der,
            params: p,
            key,
        })
    }

    /// An intermediate CA signed by this one (`path_len`: CAs allowed below it).
    pub fn intermediate(&self, cn: &str, path_len: Option<u8>) -> Result<TestCa, rcgen::Error> {
        let key = P256Signer::generate();
        let constraint = match path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        };
        let mut p = Self::params(cn, IsCa::Ca(constraint), &key);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        self.sign(p, key)
    }

    /// A device certificate (subject CN `registration_id`, clientAuth) signed by this CA, as a
    /// [`TestCa`] so tests can also misuse it as an issuer.
    pub fn leaf(&self, registration_id: &str) -> Result<TestCa, rcgen::Error> {
        let key = P256Signer::generate();
        let mut p = Self::params(registration_id, IsCa::NoCa, &key);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(p, key)
    }

    /// This certificate's private key, PKCS#8 DER.
    pub fn key_pkcs8(&self) -> Zeroizing<Vec<u8>> {
        self.key.pkcs8()
    }
}
