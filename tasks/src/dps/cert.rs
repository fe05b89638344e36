//! The little certificate handling DPS needs: PEM/base64 <-> DER, and a lenient read of a
//! certificate's subject CN and P-256 public key.
//!
//! Lenient on purpose: the DevKit alias certificate violates RFC 5280 (devkit-facts.md §4),
//! so neither webpki nor OpenSSL will read it. We walk the DER ourselves and touch only the
//! fields we need; extensions are never looked at.

use base64::Engine;

/// 64-column `CERTIFICATE` PEM.
pub fn pem_encode(der: &[u8]) -> String {
    crate::identity::pem::encode("CERTIFICATE", der)
}

/// DER from PEM text (first CERTIFICATE block, any line length) or bare base64 DER (what
/// the C# SDK sends).
pub fn der_from_pem_or_base64(text: &str) -> Option<Vec<u8>> {
    let der = if text.contains("-----BEGIN") {
        crate::identity::pem::decode(text, Some("CERTIFICATE")).ok()?
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .ok()?
    };
    (!der.is_empty()).then_some(der)
}

/// What [`read`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFields {
    pub subject_cn: Option<String>,
    pub issuer_cn: Option<String>,
    /// The whole subject / issuer, as DPS shows it (`CN=a, O=b`: last RDN first).
    pub subject_name: Option<String>,
    pub issuer_name: Option<String>,
    /// Serial number, upper-case hex of its DER content bytes.
    pub serial_number: Option<String>,
    /// Validity, `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_before_utc: Option<String>,
    pub not_after_utc: Option<String>,
    /// Uncompressed SEC1 point of the certificate's own P-256 key.
    pub public_key: Option<Vec<u8>>,
}

/// One DER TLV: (tag, content, rest).
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A Name's attributes in DER order: (type OID, value bytes); `None` when malformed.
fn attributes(name: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    let mut rdns = name;
    while let Some((_, set, rest)) = tlv(rdns) {
        rdns = rest;
        let mut atvs = set;
        while let Some((_, atv, rest)) = tlv(atvs) {
            atvs = rest;
            let (_, oid, value) = tlv(atv)?;
            let (_, text, _) = tlv(value)?;
            out.push((oid, text));
        }
    }
    Some(out)
}

fn common_name(name: &[u8]) -> Option<String> {
    let (_, text) = attributes(name)?
        .into_iter()
        .find(|(oid, _)| *oid == OID_CN)?;
    String::from_utf8(text.to_vec()).ok()
}

/// Short names of the attribute types certificates commonly carry (RFC 4514 and .NET's).
fn attribute_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "SERIALNUMBER",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "S",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "E",
        _ => return None,
    })
}

/// Dotted form of an OID's content bytes.
fn dotted_oid(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc = 0u64;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (acc / 40).min(2);
                parts.extend([first, acc - first * 40]);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A Name as DPS (.NET) prints it: `CN=x, O=y`, the last RDN first.
fn distinguished_name(name: &[u8]) -> Option<String> {
    let parts: Vec<String> = attributes(name)?
        .into_iter()
        .rev()
        .map(|(oid, text)| {
            let key = attribute_name(oid)
                .map(str::to_string)
                .unwrap_or_else(|| format!("OID.{}", dotted_oid(oid)));
            format!("{key}={}", String::from_utf8_lossy(text))
        })
        .collect();
    Some(parts.join(", "))
}

/// UTCTime (tag 0x17) or GeneralizedTime (0x18) as `YYYY-MM-DDTHH:MM:SSZ`.
fn asn1_time(tag: u8, content: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(content).ok()?.strip_suffix('Z')?;
    let full = match tag {
        0x17 if text.len() == 12 => {
            let yy: u32 = text[..2].parse().ok()?;
            format!("{}{}", if yy >= 50 { 19 } else { 20 }, text)
        }
        0x18 if text.len() == 14 => text.to_string(),
        _ => return None,
    };
    if !full.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

fn p256_point(spki: &[u8]) -> Option<Vec<u8>> {
    let (_, alg, rest) = tlv(spki)?;
    let (_, oid, params) = tlv(alg)?;
    let (_, curve, _) = tlv(params)?;
    if oid != OID_EC_PUBLIC_KEY || curve != OID_PRIME256V1 {
        return None;
    }
    let (tag, bits, _) = tlv(rest)?;
    let (&unused, point) = bits.split_first()?;
    (tag == 0x03 && unused == 0 && point.len() == 65 && point[0] == 4).then(|| point.to_vec())
}

/// Read subject CN, issuer CN and the P-256 public key of a certificate; `None` when the DER
/// is not even a certificate's outline.
pub fn read(der: &[u8]) -> Option<CertFields> {
    let (tag, cert, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let mut fields = tbs;
    // Optional [0] version.
    if fields.first() == Some(&0xa0) {
        fields = tlv(fields)?.2;
    }
    let (_, serial, rest) = tlv(fields)?;
    let (_, _sig_alg, rest) = tlv(rest)?;
    let (_, issuer, rest) = tlv(rest)?;
    let (_, validity, rest) = tlv(rest)?;
    let (_, subject, rest) = tlv(rest)?;
    let (_, spki, _) = tlv(rest)?;
    let (not_before_utc, not_after_utc) = match tlv(validity) {
        Some((t1, nb, rest)) => (
            asn1_time(t1, nb),
            tlv(rest).and_then(|(t2, na, _)| asn1_time(t2, na)),
        ),
        None => (None, None),
    };
    Some(CertFields {
        subject_cn: common_name(subject),
        issuer_cn: common_name(issuer),
        subject_name: distinguished_name(subject),
        issuer_name: distinguished_name(issuer),
        serial_number: (!serial.is_empty()).then(|| hex::encode_upper(serial)),
        not_before_utc,
        not_after_utc,
        public_key: p256_point(spki),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_base64() {
        let der: Vec<u8> = (0..200u8).collect();
        let pem = pem_encode(&der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(der_from_pem_or_base64(&pem).unwrap(), der);
        assert_eq!(
            der_from_pem_or_base64(&pem.replace('\n', "\r\n")).unwrap(),
            der
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert_eq!(der_from_pem_or_base64(&b64).unwrap(), der);
        assert!(der_from_pem_or_base64("not base64!").is_none());
    }

    #[test]
    fn reads_the_fields_dps_reports_in_certificate_info() {
        let (der, _) = crate::dps::emulator::make_test_device_cert("dev-1").unwrap();
        let f = read(&der).unwrap();
        assert_eq!(f.subject_cn.as_deref(), Some("dev-1"));
        assert_eq!(f.subject_name.as_deref(), Some("CN=dev-1"));
        assert_eq!(f.issuer_name.as_deref(), Some("CN=dev-1"));
        assert!(
            f.serial_number.as_deref().is_some_and(|s| s.len() == 32
                && s.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())),
            "{f:?}"
        );
        let nb = f.not_before_utc.unwrap();
        assert!(
            nb.len() == 20 && nb.ends_with('Z') && nb.as_bytes()[10] == b'T',
            "{nb}"
        );
        assert!(f.not_after_utc.unwrap() > nb);
        assert_eq!(
            asn1_time(0x17, b"491231235959Z").as_deref(),
            Some("2049-12-31T23:59:59Z")
        );
        assert_eq!(
            asn1_time(0x17, b"500101000000Z").as_deref(),
            Some("1950-01-01T00:00:00Z")
        );
        assert_eq!(
            asn1_time(0x18, b"99991231235959Z").as_deref(),
            Some("9999-12-31T23:59:59Z")
        );
        assert_eq!(asn1_time(0x18, b"9999123123595Z"), None);
        // 2.5.4.10 = O, 2.5.4.6 = C; the last RDN comes first.
        let name = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'U', b'S', 0x31,
            0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x03, b'A', b'c', b'm',
        ];
        assert_eq!(distinguished_name(&name).as_deref(), Some("O=Acm, C=US"));
        assert_eq!(
            dotted_oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            "1.2.840.10045.2.1"
        );
    }

    proptest::proptest! {
        #[test]
        fn read_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = read(&bytes);
        }
    }
}
