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
        base64::engine::general_purpose::STANDARD.decode(compact).ok()?
    };
    (!der.is_empty()).then_some(der)
}

/// What [`read`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFields {
    pub subject_cn: Option<String>,
    pub issuer_cn: Option<String>,
    /// Uncompressed SEC1 point of the certificate's own P-256 key.
    pub public_key: Option<Vec<u8>>,
}

/// One DER TLV: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
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

fn common_name(name: &[u8]) -> Option<String> {
    let mut rdns = name;
    while let Some((_, set, rest)) = tlv(rdns) {
        rdns = rest;
        let mut atvs = set;
        while let Some((_, atv, rest)) = tlv(atvs) {
            atvs = rest;
            let (_, oid, value) = tlv(atv)?;
            if oid == OID_CN {
                let (_, text, _) = tlv(value)?;
                return String::from_utf8(text.to_vec()).ok();
            }
        }
    }
    None
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
    let (_, _serial, rest) = tlv(fields)?;
    let (_, _sig_alg, rest) = tlv(rest)?;
    let (_, issuer, rest) = tlv(rest)?;
    let (_, _validity, rest) = tlv(rest)?;
    let (_, subject, rest) = tlv(rest)?;
    let (_, spki, _) = tlv(rest)?;
    Some(CertFields { subject_cn: common_name(subject), issuer_cn: common_name(issuer), public_key: p256_point(spki) })
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
        assert_eq!(der_from_pem_or_base64(&pem.replace('\n', "\r\n")).unwrap(), der);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert_eq!(der_from_pem_or_base64(&b64).unwrap(), der);
        assert!(der_from_pem_or_base64("not base64!").is_none());
    }

    proptest::proptest! {
        #[test]
        fn read_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = read(&bytes);
        }
    }
}
