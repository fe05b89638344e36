//! Minimal DER: a writer for the few fixed structures we build by hand (keys, extension values,
//! signatures) and a lenient reader for inspecting RIoT certificates, whose subjectAltName
//! is malformed (otherName without its `[0] EXPLICIT` wrapper, facts §4) so that OpenSSL,
//! webpki and strict X.509 parsers refuse them.

use zeroize::Zeroizing;

/// `id-ecPublicKey` (1.2.840.10045.2.1), DER value bytes.
pub(crate) const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `prime256v1` (1.2.840.10045.3.1.7).
pub(crate) const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// sha256 (2.16.840.1.101.3.4.2.1).
pub(crate) const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// The RIoT otherName type (1.3.6.1.4.1.311.89.3.1).
pub(crate) const OID_RIOT: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x59, 0x03, 0x01];
/// commonName (2.5.4.3).
pub(crate) const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
/// subjectAltName (2.5.29.17).
pub(crate) const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// Append a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// One TLV.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A TLV whose content is the concatenation of `parts`.
pub(crate) fn tlv_concat(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// Minimal DER INTEGER of a non-negative big-endian number.
pub(crate) fn uint(be: &[u8]) -> Vec<u8> {
    let skip = be
        .iter()
        .take_while(|b| **b == 0)
        .count()
        .min(be.len().saturating_sub(1));
    let digits = if be.is_empty() {
        &[0u8][..]
    } else {
        &be[skip..]
    };
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(digits);
    tlv(0x02, &content)
}

/// `SEQUENCE { INTEGER r, INTEGER s }`.
pub(crate) fn ecdsa_sig_der(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
    tlv_concat(0x30, &[&uint(r), &uint(s)])
}

/// `SEQUENCE { id-ecPublicKey, prime256v1 }`.
pub(crate) fn ec_p256_algorithm() -> Vec<u8> {
    tlv_concat(
        0x30,
        &[&tlv(0x06, OID_EC_PUBLIC_KEY), &tlv(0x06, OID_PRIME256V1)],
    )
}

/// SubjectPublicKeyInfo for an uncompressed P-256 point.
pub(crate) fn spki(point: &[u8; 65]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(66);
    bits.push(0);
    bits.extend_from_slice(point);
    tlv_concat(0x30, &[&ec_p256_algorithm(), &tlv(0x03, &bits)])
}

/// SEC1 `ECPrivateKey` (RFC 5915) with parameters and public key: the vectors' `EC PRIVATE KEY`.
pub(crate) fn sec1_private_key(
    d: &[u8; 32],
    point: &[u8; 65],
    with_params: bool,
) -> Zeroizing<Vec<u8>> {
    let mut content = Zeroizing::new(Vec::with_capacity(121));
    content.extend_from_slice(&[0x02, 0x01, 0x01, 0x04, 0x20]);
    content.extend_from_slice(d);
    if with_params {
        content.extend_from_slice(&tlv(0xa0, &tlv(0x06, OID_PRIME256V1)));
    }
    let mut bits = Vec::with_capacity(66);
    bits.push(0);
    bits.extend_from_slice(point);
    content.extend_from_slice(&tlv(0xa1, &tlv(0x03, &bits)));
    let mut out = Zeroizing::new(Vec::with_capacity(content.len() + 3));
    out.push(0x30);
    push_len(&mut out, content.len());
    out.extend_from_slice(&content);
    out
}

/// PKCS#8 `PrivateKeyInfo` wrapping the SEC1 key (parameters in the algorithm identifier).
pub(crate) fn pkcs8_private_key(d: &[u8; 32], point: &[u8; 65]) -> Zeroizing<Vec<u8>> {
    let sec1 = sec1_private_key(d, point, false);
    let mut content = Zeroizing::new(Vec::with_capacity(sec1.len() + 30));
    content.extend_from_slice(&[0x02, 0x01, 0x00]);
    content.extend_from_slice(&ec_p256_algorithm());
    content.push(0x04);
    push_len(&mut content, sec1.len());
    content.extend_from_slice(&sec1);
    let mut out = Zeroizing::new(Vec::with_capacity(content.len() + 4));
    out.push(0x30);
    push_len(&mut out, content.len());
    out.extend_from_slice(&content);
    out
}

/// One element read by [`Reader`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    /// The whole element (header and content).
    pub raw: &'a [u8],
    pub content: &'a [u8],
}

/// A lenient DER reader: single-byte tags, definite lengths; never panics on any input.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
    /// Read the next element, whatever its tag.
    pub(crate) fn any(&mut self) -> Result<Tlv<'a>, String> {
        let bytes = self.rest;
        let (&tag, after) = bytes.split_first().ok_or("unexpected end of data")?;
        if tag & 0x1f == 0x1f {
            return Err(format!("multi-byte tag {tag:#04x} not supported"));
        }
        let (&first, mut after) = after.split_first().ok_or("truncated length")?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || after.len() < n {
                return Err("bad length".into());
            }
            let len = after[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            after = &after[n..];
            len
        };
        if after.len() < len {
            return Err(format!(
                "element with tag {tag:#04x} runs past the end of its container"
            ));
        }
        let header = bytes.len() - after.len();
        let raw = &bytes[..header + len];
        self.rest = &after[len..];
        Ok(Tlv {
            tag,
            raw,
            content: &after[..len],
        })
    }
    /// Read the next element and require `tag`.
    pub(crate) fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, String> {
        let t = self.any().map_err(|e| format!("{what}: {e}"))?;
        if t.tag != tag {
            return Err(format!(
                "{what}: expected tag {tag:#04x}, found {:#04x}",
                t.tag
            ));
        }
        Ok(t)
    }
    /// Read the next element if it has `tag`.
    pub(crate) fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, String> {
        match self.rest.first() {
            Some(&t) if t == tag => self.any().map(Some),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal() {
        assert_eq!(uint(&[0, 0, 0x7f]), [2, 1, 0x7f]);
        assert_eq!(uint(&[0, 0x80]), [2, 2, 0, 0x80]);
        assert_eq!(uint(&[0, 0]), [2, 1, 0]);
    }

    #[test]
    fn long_lengths_round_trip() {
        let content = vec![9u8; 300];
        let enc = tlv(0x04, &content);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let t = Reader::new(&enc).any().unwrap();
        assert_eq!(t.content.len(), 300);
    }

    #[test]
    fn reader_rejects_truncation_without_panicking() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x82, 0x01],
            &[0x30, 0x05, 0x00],
            &[0x1f, 0x00],
        ] {
            assert!(Reader::new(bytes).any().is_err());
        }
    }

    #[test]
    fn pkcs8_is_accepted_by_p256() {
        use p256::pkcs8::DecodePrivateKey;
        let key = super::super::keys::kdf(&[3u8; 32], "Alias").unwrap();
        let d = key.to_be_bytes();
        let der = pkcs8_private_key(&d, &key.public_point());
        let parsed = p256::SecretKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(&parsed.to_bytes()[..], &d[..]);
        let sec1 = sec1_private_key(&d, &key.public_point(), true);
        assert_eq!(
            &p256::SecretKey::from_sec1_der(&sec1).unwrap().to_bytes()[..],
            &d[..]
        );
    }
}
