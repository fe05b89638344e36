//! The RIoT alias and DeviceID certificates, byte for byte as the device builds them (facts §4).
//!
//! Built with rcgen and an external signer (the device's fixed-nonce ECDSA). rcgen reaches the
//! exact layout when every extension is passed as a custom extension in the device's order
//! (rcgen's own EKU/SAN/basicConstraints writers would add SKI or mark basicConstraints
//! critical), `IsCa::NoCa`, no authority key identifier, UTF8String name values (even
//! countryName) pushed in CN, C, O order, and explicit serials and validity.

use super::der::{self, tlv, tlv_concat};
use super::keys::{sign_fixed_nonce, SecretScalar};
use super::IdentityError;
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, Issuer, PublicKeyData,
    SigningKey,
};

const ALIAS_SERIAL: [u8; 5] = [0x0a, 0x0b, 0x0c, 0x0d, 0x0e];
const DEVICE_SERIAL: [u8; 5] = [0x0e, 0x0d, 0x0c, 0x0b, 0x0a];
/// Issuer CN of both certificates and subject CN of the DeviceID certificate.
pub(crate) const DEVICE_CN: &str = "devkitdice";

const OID_EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];

/// A public key as rcgen sees it.
struct P256Public<'a>(&'a [u8; 65]);

impl PublicKeyData for P256Public<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// The DeviceID key as rcgen's external signer, signing with the device's fixed nonce.
struct DeviceSigner<'a> {
    public: &'a [u8; 65],
    secret: &'a SecretScalar,
}

impl PublicKeyData for DeviceSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for DeviceSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(sign_fixed_nonce(self.secret, msg))
    }
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, DnValue::Utf8String(cn.into()));
    dn.push(DnType::CountryName, DnValue::Utf8String("US".into()));
    dn.push(
        DnType::OrganizationName,
        DnValue::Utf8String("DEVKIT_TEST".into()),
    );
    dn
}

fn params(cn: &str, serial: &[u8], extensions: Vec<CustomExtension>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn);
    p.serial_number = Some(serial.to_vec().into());
    p.not_before = rcgen::date_time_ymd(2017, 1, 1);
    p.not_after = rcgen::date_time_ymd(2037, 1, 1);
    p.is_ca = rcgen::IsCa::NoCa;
    p.use_authority_key_identifier_extension = false;
    p.custom_extensions = extensions;
    p
}

fn extension(oid: &[u64], critical: bool, content: Vec<u8>) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(oid, content);
    e.set_criticality(critical);
    e
}

/// The RIoT subjectAltName value: one otherName `[0]` holding the RIoT OID followed directly
/// (no `[0] EXPLICIT`, as the device writes it) by the composite device ID.
pub(crate) fn riot_san(device_id_public: &[u8; 65], fwid: &[u8; 32]) -> Vec<u8> {
    let fwid_seq = tlv_concat(0x30, &[&tlv(0x06, der::OID_SHA256), &tlv(0x04, fwid)]);
    let composite = tlv_concat(
        0x30,
        &[&der::uint(&[1]), &der::spki(device_id_public), &fwid_seq],
    );
    let other_name = tlv_concat(0xa0, &[&tlv(0x06, der::OID_RIOT), &composite]);
    tlv(0x30, &other_name)
}

fn failed(e: rcgen::Error) -> IdentityError {
    IdentityError::Derivation(format!("certificate encoding failed: {e}"))
}

/// DeviceID (self-signed) and alias certificates, DER.
pub(crate) fn build(
    registration_id: &str,
    device_id_public: &[u8; 65],
    device_id_secret: &SecretScalar,
    alias_public: &[u8; 65],
    fwid: &[u8; 32],
) -> Result<(Vec<u8>, Vec<u8>), IdentityError> {
    let signer = DeviceSigner {
        public: device_id_public,
        secret: device_id_secret,
    };
    // basicConstraints CA=TRUE, pathLen=2, not marked critical (as the device writes it).
    let basic = extension(
        OID_BASIC_CONSTRAINTS,
        false,
        vec![0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x02],
    );
    let device_params = params(DEVICE_CN, &DEVICE_SERIAL, vec![basic]);
    let device_cert = device_params.self_signed(&signer).map_err(failed)?;

    // extKeyUsage (critical) = clientAuth, then the RIoT subjectAltName (critical).
    let eku = extension(
        OID_EXT_KEY_USAGE,
        true,
        vec![
            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
        ],
    );
    let san = extension(OID_SUBJECT_ALT_NAME, true, riot_san(device_id_public, fwid));
    let alias_params = params(registration_id, &ALIAS_SERIAL, vec![eku, san]);
    let issuer = Issuer::from_params(&device_params, &signer);
    let alias_cert = alias_params
        .signed_by(&P256Public(alias_public), &issuer)
        .map_err(failed)?;
    Ok((alias_cert.der().to_vec(), device_cert.der().to_vec()))
}
