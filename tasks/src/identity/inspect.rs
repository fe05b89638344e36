//! Lenient reading of RIoT certificates with our own DER reader (OpenSSL and webpki refuse the
//! alias certificate's malformed subjectAltName, facts §4), and comparison of two of them.

use super::der::{self, Reader, Tlv};
use super::{sha1_thumbprint, sha256_thumbprint, CertInfo, IdentityError};

/// From the RIoT extension: (DeviceID public point, FWID).
type RiotIds = (Vec<u8>, Vec<u8>);

fn bad(reason: impl Into<String>) -> IdentityError {
    IdentityError::invalid(crate::error::Input::Cert, reason)
}

/// Parse `der` (one X.509 certificate).
pub(crate) fn inspect(der_bytes: &[u8]) -> Result<CertInfo, IdentityError> {
    parse(der_bytes).map_err(|e| bad(format!("not a readable X.509 certificate: {e}")))
}

fn parse(bytes: &[u8]) -> Result<CertInfo, String> {
    let mut outer = Reader::new(bytes);
    let cert = outer.expect(0x30, "Certificate")?;
    let mut c = Reader::new(cert.content);
    let tbs = c.expect(0x30, "TBSCertificate")?;
    let _sig_alg = c.expect(0x30, "signatureAlgorithm")?;
    let sig_bits = c.expect(0x03, "signatureValue")?;

    let mut t = Reader::new(tbs.content);
    t.optional(0xa0)?; // version
    t.expect(0x02, "serialNumber")?;
    t.expect(0x30, "signature")?;
    let issuer = t.expect(0x30, "issuer")?;
    t.expect(0x30, "validity")?;
    let subject = t.expect(0x30, "subject")?;
    let spki = t.expect(0x30, "subjectPublicKeyInfo")?;
    let public = spki_point(spki)?;
    let mut riot: Option<RiotIds> = None;
    while !t.is_empty() {
        let item = t.any()?;
        if item.tag == 0xa3 {
            riot = riot_extension(item)?;
        }
    }
    let is_alias = riot.is_some();
    let verify_key = riot.as_ref().map(|(k, _)| k.as_slice()).unwrap_or(&public);
    let signature_valid = match sig_bits.content.split_first() {
        Some((0, sig)) => verify(verify_key, tbs.raw, sig),
        _ => false,
    };
    Ok(CertInfo {
        subject_cn: common_name(subject)?.unwrap_or_default(),
        issuer_cn: common_name(issuer)?.unwrap_or_default(),
        public_key: hex::encode_upper(&public),
        device_id_public_key: riot.as_ref().map(|(k, _)| hex::encode_upper(k)),
        fwid: riot.as_ref().map(|(_, f)| hex::encode(f)),
        signature_valid,
        is_alias,
        sha1_thumbprint: sha1_thumbprint(cert.raw),
        sha256_thumbprint: sha256_thumbprint(cert.raw),
    })
}

fn verify(point: &[u8], tbs: &[u8], sig: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
        return false;
    };
    let Ok(sig) = p256::ecdsa::Signature::from_der(sig) else {
        return false;
    };
    key.verify(tbs, &sig).is_ok()
}

/// The public point of a SubjectPublicKeyInfo.
fn spki_point(spki: Tlv<'_>) -> Result<Vec<u8>, String> {
    let mut r = Reader::new(spki.content);
    r.expect(0x30, "algorithm")?;
    let bits = r.expect(0x03, "subjectPublicKey")?;
    match bits.content.split_first() {
        Some((0, point)) => Ok(point.to_vec()),
        _ => Err("subjectPublicKey is not a whole-byte BIT STRING".into()),
    }
}

/// The first commonName in a Name, as text.
fn common_name(name: Tlv<'_>) -> Result<Option<String>, String> {
    let mut sets = Reader::new(name.content);
    while !sets.is_empty() {
        let set = sets.expect(0x31, "RelativeDistinguishedName")?;
        let mut atvs = Reader::new(set.content);
        while !atvs.is_empty() {
            let atv = atvs.expect(0x30, "AttributeTypeAndValue")?;
            let mut a = Reader::new(atv.content);
            let oid = a.expect(0x06, "attribute type")?;
            let value = a.any()?;
            if oid.content == der::OID_CN {
                return Ok(Some(String::from_utf8_lossy(value.content).into_owned()));
            }
        }
    }
    Ok(None)
}

/// From the `[3]` extensions, the RIoT composite device ID: (DeviceID point, FWID).
fn riot_extension(exts: Tlv<'_>) -> Result<Option<RiotIds>, String> {
    let seq = Reader::new(exts.content).expect(0x30, "extensions")?;
    let mut r = Reader::new(seq.content);
    while !r.is_empty() {
        let ext = r.expect(0x30, "extension")?;
        let mut e = Reader::new(ext.content);
        let oid = e.expect(0x06, "extnID")?;
        e.optional(0x01)?;
        let value = e.expect(0x04, "extnValue")?;
        if oid.content == der::OID_SAN {
            if let Some(found) = riot_san(value.content)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// Find the RIoT otherName in GeneralNames, with or without the `[0] EXPLICIT` wrapper.
fn riot_san(value: &[u8]) -> Result<Option<RiotIds>, String> {
    let names = Reader::new(value).expect(0x30, "GeneralNames")?;
    let mut r = Reader::new(names.content);
    while !r.is_empty() {
        let name = r.any()?;
        if name.tag != 0xa0 {
            continue;
        }
        let mut o = Reader::new(name.content);
        let oid = o.expect(0x06, "otherName type")?;
        if oid.content != der::OID_RIOT {
            continue;
        }
        let mut composite = o.any()?;
        if composite.tag == 0xa0 {
            composite = Reader::new(composite.content).expect(0x30, "RIoT composite device ID")?;
        }
        if composite.tag != 0x30 {
            return Err("RIoT composite device ID is not a SEQUENCE".into());
        }
        let mut c = Reader::new(composite.content);
        c.expect(0x02, "RIoT version")?;
        let device_id = spki_point(c.expect(0x30, "RIoT DeviceID key")?)?;
        let fwid_seq = c.expect(0x30, "RIoT FWID")?;
        let mut f = Reader::new(fwid_seq.content);
        f.expect(0x06, "FWID hash algorithm")?;
        let fwid = f.expect(0x04, "FWID")?;
        return Ok(Some((device_id, fwid.content.to_vec())));
    }
    Ok(None)
}

/// Which input differs between two certificates (the diagnosis for DPS error 401002).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Difference {
    /// Byte-identical certificates.
    Identical,
    /// Different DeviceID key: a different UDS or a different `.riot_core`.
    DeviceId,
    /// Same DeviceID key, different FWID: the `.riot_fw` code changed.
    Fwid,
    /// Same keys and FWID, different subject CN: the registration ID differs.
    RegistrationId,
    /// Same DeviceID, FWID and CN but different bytes (another tool or layout).
    Encoding,
}

impl Difference {
    /// One sentence for users.
    pub fn explanation(&self) -> &'static str {
        match self {
            Difference::Identical => "The certificates are identical.",
            Difference::DeviceId => "The DeviceID keys differ: the device has a different UDS, or the RIoT core (.riot_core) code differs.",
            Difference::Fwid => "Same DeviceID key but different FWID: the .riot_fw code changed (rebuilt or different firmware); regenerate and re-enroll the certificate.",
            Difference::RegistrationId => "Same keys and FWID but a different subject CN: the registration ID differs.",
            Difference::Encoding => "Same DeviceID key, FWID and CN but different bytes: one certificate was not produced by the device's layout.",
        }
    }
}

/// Every input that differs between two inspected certificates, most fundamental first
/// (empty when they are byte-identical; `[Encoding]` when only the bytes differ).
pub fn differences(a: &CertInfo, b: &CertInfo) -> Vec<Difference> {
    if a.sha256_thumbprint == b.sha256_thumbprint {
        return Vec::new();
    }
    let key = |c: &CertInfo| {
        c.device_id_public_key
            .clone()
            .unwrap_or_else(|| c.public_key.clone())
    };
    let mut out = Vec::new();
    if key(a) != key(b) {
        out.push(Difference::DeviceId);
    }
    if a.fwid != b.fwid {
        out.push(Difference::Fwid);
    }
    if a.subject_cn != b.subject_cn {
        out.push(Difference::RegistrationId);
    }
    if out.is_empty() {
        out.push(Difference::Encoding);
    }
    out
}

/// Compare two inspected certificates: the most fundamental input that differs.
pub fn compare(a: &CertInfo, b: &CertInfo) -> Difference {
    differences(a, b)
        .into_iter()
        .next()
        .unwrap_or(Difference::Identical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(key: &str, fwid: &str, cn: &str, thumb: &str) -> CertInfo {
        CertInfo {
            subject_cn: cn.into(),
            issuer_cn: "devkitdice".into(),
            public_key: "04AA".into(),
            device_id_public_key: Some(key.into()),
            fwid: Some(fwid.into()),
            signature_valid: true,
            is_alias: true,
            sha1_thumbprint: thumb.into(),
            sha256_thumbprint: thumb.into(),
        }
    }

    #[test]
    fn riot_san_is_read_with_or_without_the_explicit_wrapper() {
        use crate::identity::der::{tlv, tlv_concat};
        let point = [4u8; 65];
        let fwid = [9u8; 32];
        let device_form = crate::identity::cert::riot_san(&point, &fwid);
        assert_eq!(
            riot_san(&device_form).unwrap(),
            Some((point.to_vec(), fwid.to_vec()))
        );
        // RFC 5280 form: otherName value wrapped in [0] EXPLICIT.
        let fwid_seq = tlv_concat(0x30, &[&tlv(0x06, der::OID_SHA256), &tlv(0x04, &fwid)]);
        let composite = tlv_concat(0x30, &[&der::uint(&[1]), &der::spki(&point), &fwid_seq]);
        let other_name = tlv_concat(0xa0, &[&tlv(0x06, der::OID_RIOT), &tlv(0xa0, &composite)]);
        assert_eq!(
            riot_san(&tlv(0x30, &other_name)).unwrap(),
            Some((point.to_vec(), fwid.to_vec()))
        );
        // A SAN without the RIoT name is not an alias certificate.
        assert_eq!(
            riot_san(&tlv(0x30, &tlv(0x82, b"example.com"))).unwrap(),
            None
        );
    }

    #[test]
    fn diagnosis_names_the_input_that_differs() {
        let a = info("K1", "F1", "dev", "T1");
        assert_eq!(compare(&a, &a), Difference::Identical);
        assert_eq!(
            compare(&a, &info("K1", "F2", "dev", "T2")),
            Difference::Fwid
        );
        assert_eq!(
            compare(&a, &info("K2", "F1", "dev", "T2")),
            Difference::DeviceId
        );
        assert_eq!(
            compare(&a, &info("K1", "F1", "other", "T2")),
            Difference::RegistrationId
        );
        assert_eq!(
            compare(&a, &info("K1", "F1", "dev", "T2")),
            Difference::Encoding
        );
        assert_eq!(
            differences(&a, &info("K2", "F2", "x", "T2")),
            [
                Difference::DeviceId,
                Difference::Fwid,
                Difference::RegistrationId
            ]
        );
    }
}
