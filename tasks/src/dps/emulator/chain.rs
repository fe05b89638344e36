//! X.509 CA chain validation for enrollment groups: does the chain a device presents lead,
//! signature by signature, to a group's signing certificate?
//!
//! Checked link by link, from the device's leaf up: the child's issuer name is the parent's
//! subject name (DER-equal), the child's ECDSA P-256 / SHA-256 signature verifies with the
//! parent's key, the parent is a CA (basicConstraints `cA` TRUE) whose `pathLenConstraint`
//! allows the CAs below it, and every certificate is within its validity period. The chain
//! ends at a certificate signed by the group's certificate (or at the group's certificate
//! itself), which must be a CA as well.
//!
//! Lenient exactly where the DevKit's certificates need it (devkit-facts.md §4), and only on
//! the leaf: the RIoT alias certificate's critical subjectAltName is not RFC 5280-valid (the
//! otherName lacks its `[0] EXPLICIT` wrapper), so the leaf's extensions are not interpreted
//! (their criticality included). Issuers get no such leniency: a CA certificate's critical
//! extensions must be ones this check understands (basicConstraints, keyUsage).
//! (The DeviceID certificate, the RIoT chain's issuer, passes as it is: CA=TRUE, pathLen 2.)

use crate::dps::cert;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};

/// The longest chain walked (leaf + intermediates).
const MAX_DEPTH: usize = 6;

const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];

/// Why a chain does not lead to the group's certificate (for the emulator's log only: the
/// device gets 401002 whatever the reason, as from DPS).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("certificate {0} of the chain is not a certificate this check can read")]
    Unreadable(usize),
    #[error("certificate {0} is not signed with ecdsa-with-SHA256")]
    Algorithm(usize),
    #[error("certificate {0} names an issuer other than the next certificate's subject")]
    IssuerName(usize),
    #[error("certificate {0}'s signature does not verify with its issuer's key")]
    Signature(usize),
    #[error("the issuer of certificate {0} is not a CA, or its path length does not allow it")]
    NotCa(usize),
    #[error("certificate {0} has a critical extension this check does not understand")]
    CriticalExtension(usize),
    #[error("certificate {0} is outside its validity period")]
    Expired(usize),
    #[error("the chain does not lead to the group's certificate")]
    NoPath,
}

/// The parts of a certificate the check needs (raw DER slices).
struct Parsed<'a> {
    tbs: &'a [u8],
    algorithm_oid: &'a [u8],
    signature: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    fields: cert::CertFields,
    /// `Some(path_len)` when basicConstraints says CA (`None` inside: no limit).
    ca: Option<Option<u64>>,
    unknown_critical: bool,
}

/// One DER TLV: (tag, the whole TLV, content, rest).
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (tag, content, rest) = cert::tlv(input)?;
    Some((tag, &input[..input.len() - rest.len()], content, rest))
}

fn parse(der: &[u8]) -> Option<Parsed<'_>> {
    let (0x30, _, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, tbs_content, rest) = tlv(cert)? else {
        return None;
    };
    let (0x30, _, alg, rest) = tlv(rest)? else {
        return None;
    };
    let (0x06, _, algorithm_oid, _) = tlv(alg)? else {
        return None;
    };
    let (0x03, _, bits, _) = tlv(rest)? else {
        return None;
    };
    let signature = bits.strip_prefix(&[0u8])?;
    let mut f = tbs_content;
    if f.first() == Some(&0xa0) {
        f = tlv(f)?.3;
    }
    let (_, _, _, f) = tlv(f)?; // serial
    let (_, _, _, f) = tlv(f)?; // signature algorithm
    let (_, issuer, _, f) = tlv(f)?;
    let (_, _, _, f) = tlv(f)?; // validity
    let (_, subject, _, mut f) = tlv(f)?;
    let (_, _, _, rest) = tlv(f)?; // subjectPublicKeyInfo
    f = rest;
    let mut ca = None;
    let mut unknown_critical = false;
    // Optional issuerUniqueID [1], subjectUniqueID [2], then extensions [3].
    while let Some((tag, _, content, rest)) = tlv(f) {
        f = rest;
        if tag != 0xa3 {
            continue;
        }
        let (0x30, _, mut exts, _) = tlv(content)? else {
            return None;
        };
        while let Some((0x30, _, ext, rest)) = tlv(exts) {
            exts = rest;
            let (0x06, _, oid, mut ext) = tlv(ext)? else {
                return None;
            };
            let mut critical = false;
            if let Some((0x01, _, b, rest)) = tlv(ext) {
                critical = b.first().is_some_and(|&b| b != 0);
                ext = rest;
            }
            let (0x04, _, value, _) = tlv(ext)? else {
                return None;
            };
            if oid == OID_BASIC_CONSTRAINTS {
                ca = basic_constraints(value)?;
            } else if critical && oid != OID_KEY_USAGE {
                unknown_critical = true;
            }
        }
    }
    Some(Parsed {
        tbs,
        algorithm_oid,
        signature,
        issuer,
        subject,
        fields: cert::read(der)?,
        ca,
        unknown_critical,
    })
}

/// basicConstraints `SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }`:
/// `Some(path_len)` for a CA.
fn basic_constraints(value: &[u8]) -> Option<Option<Option<u64>>> {
    let (0x30, _, mut s, _) = tlv(value)? else {
        return None;
    };
    let mut is_ca = false;
    if let Some((0x01, _, b, rest)) = tlv(s) {
        is_ca = b.first().is_some_and(|&b| b != 0);
        s = rest;
    }
    let path_len = match tlv(s) {
        Some((0x02, _, n, _)) if n.len() <= 8 => {
            Some(n.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
        }
        _ => None,
    };
    Some(is_ca.then_some(path_len))
}

fn within_validity(fields: &cert::CertFields, now: &str) -> bool {
    let after_start = fields.not_before_utc.as_deref().is_some_and(|nb| nb <= now);
    let before_end = fields.not_after_utc.as_deref().is_some_and(|na| now <= na);
    after_start && before_end
}

/// `child` signed by `parent`'s key, issuer name linked, parent a CA allowing `cas_below`
/// CA certificates under it.
fn link(child: &Parsed, parent: &Parsed, index: usize, cas_below: u64) -> Result<(), ChainError> {
    if child.algorithm_oid != OID_ECDSA_SHA256 {
        return Err(ChainError::Algorithm(index));
    }
    if child.issuer != parent.subject {
        return Err(ChainError::IssuerName(index));
    }
    match parent.ca {
        Some(Some(limit)) if cas_below > limit => return Err(ChainError::NotCa(index)),
        Some(_) => {}
        None => return Err(ChainError::NotCa(index)),
    }
    if parent.unknown_critical {
        return Err(ChainError::CriticalExtension(index + 1));
    }
    let key = parent
        .fields
        .public_key
        .as_deref()
        .and_then(|p| VerifyingKey::from_sec1_bytes(p).ok())
        .ok_or(ChainError::Unreadable(index + 1))?;
    let sig = DerSignature::try_from(child.signature).map_err(|_| ChainError::Signature(index))?;
    key.verify(child.tbs, &sig)
        .map_err(|_| ChainError::Signature(index))
}

/// Whether `der` is a CA certificate (basicConstraints `cA` TRUE) this check can read as a
/// chain link; `None` when it cannot read it.
pub fn is_ca(der: &[u8]) -> Option<bool> {
    parse(der).map(|p| p.ca.is_some())
}

/// Whether `chain` (leaf first, then the intermediates the device sent) leads to `anchor`
/// (the group's signing certificate), checked as the module doc says. `now` is
/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn leads_to(chain: &[&[u8]], anchor: &[u8], now: &str) -> Result<(), ChainError> {
    let anchor_parsed = parse(anchor).ok_or(ChainError::Unreadable(chain.len()))?;
    if !within_validity(&anchor_parsed.fields, now) {
        return Err(ChainError::Expired(chain.len()));
    }
    let mut parsed = Vec::new();
    for (i, der) in chain.iter().take(MAX_DEPTH).enumerate() {
        if *der == anchor {
            break;
        }
        let p = parse(der).ok_or(ChainError::Unreadable(i))?;
        if !within_validity(&p.fields, now) {
            return Err(ChainError::Expired(i));
        }
        parsed.push(p);
    }
    if parsed.is_empty() {
        return Err(ChainError::NoPath);
    }
    for i in 0..parsed.len() {
        let parent = parsed.get(i + 1).unwrap_or(&anchor_parsed);
        // CA certificates strictly between the parent and the leaf.
        link(&parsed[i], parent, i, i as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dps::emulator::certs::TestCa;

    fn now() -> String {
        super::super::api::now_rfc3339_seconds()
    }

    #[test]
    fn a_leaf_signed_by_an_intermediate_signed_by_the_root() {
        let now = now();
        let root = TestCa::root("group root").unwrap();
        let inter = root.intermediate("group intermediate", Some(0)).unwrap();
        let leaf = inter.leaf("dev-1").unwrap().der;
        assert_eq!(leads_to(&[&leaf, &inter.der], &root.der, &now), Ok(()));
        assert_eq!(leads_to(&[&leaf], &inter.der, &now), Ok(()));
        // The chain may carry the group's certificate itself.
        assert_eq!(
            leads_to(&[&leaf, &inter.der, &root.der], &root.der, &now),
            Ok(())
        );
        // A missing intermediate, another root of the same name, the leaf as its own anchor.
        assert_eq!(
            leads_to(&[&leaf], &root.der, &now),
            Err(ChainError::IssuerName(0))
        );
        let other = TestCa::root("group root").unwrap();
        assert_eq!(
            leads_to(&[&leaf, &inter.der], &other.der, &now),
            Err(ChainError::Signature(1)),
            "same name, other key"
        );
        assert_eq!(leads_to(&[&leaf], &leaf, &now), Err(ChainError::NoPath));
        assert_eq!(
            leads_to(&[&leaf, &inter.der], &root.der, "2099-01-01T00:00:00Z"),
            Err(ChainError::Expired(2))
        );
    }

    #[test]
    fn path_length_and_ca_flag_are_enforced_for_issuers() {
        let now = now();
        let root = TestCa::root("root").unwrap();
        let inter = root.intermediate("inter", Some(0)).unwrap();
        let deeper = inter.intermediate("deeper", None).unwrap();
        let leaf = deeper.leaf("dev-2").unwrap().der;
        assert_eq!(
            leads_to(&[&leaf, &deeper.der, &inter.der], &root.der, &now),
            Err(ChainError::NotCa(1)),
            "inter's pathLen 0 allows no CA below it"
        );
        // A leaf used as an issuer: not a CA.
        let leaf_a = root.leaf("dev-a").unwrap();
        let leaf_b = leaf_a.leaf("dev-b").unwrap().der;
        assert_eq!(
            leads_to(&[&leaf_b, &leaf_a.der], &root.der, &now),
            Err(ChainError::NotCa(0))
        );
    }
}
