//! Shared access signature tokens (dps-api.md §1), for DPS and IoT Hub alike:
//! `SharedAccessSignature sr=<enc(resource)>&sig=<enc(base64(HMAC-SHA256(key, enc(resource) + "\n" + expiry)))>&se=<expiry>&skn=<policy>`.

use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;
use zeroize::Zeroizing;

/// URL encoding as the Azure SDKs do it: everything but RFC 3986 unreserved characters.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The base64 signature for `resource` (lower-cased, as DPS expects) and `expiry`.
pub fn signature(resource: &str, key: &[u8], expiry: u64) -> Zeroizing<String> {
    let message = format!("{}\n{}", url_encode(&resource.to_ascii_lowercase()), expiry);
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message.as_bytes());
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// The full `Authorization` header value.
pub fn token(resource: &str, key: &[u8], key_name: Option<&str>, expiry: u64) -> Zeroizing<String> {
    let sig = signature(resource, key, expiry);
    let mut t = format!(
        "SharedAccessSignature sr={}&sig={}&se={}",
        url_encode(&resource.to_ascii_lowercase()),
        url_encode(&sig),
        expiry
    );
    if let Some(name) = key_name {
        t.push_str("&skn=");
        t.push_str(&url_encode(name));
    }
    Zeroizing::new(t)
}

/// Why a presented SAS token was refused (what the emulator answers 401 for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    #[error("missing or malformed SharedAccessSignature")]
    Malformed,
    #[error("SAS token is for another resource")]
    WrongResource,
    #[error("SAS token expired")]
    Expired,
    #[error("SAS token is for another policy")]
    WrongPolicy,
    #[error("SAS signature does not match")]
    BadSignature,
}

/// Check an `Authorization` header value against `key`: resource one of `resources`
/// (case-insensitive), not expired at `now`, policy `key_name`, signature valid (constant time).
///
/// The signed string is accepted in each form real clients sign: the URL-encoded, lower-cased
/// resource (the C SDK, the Azure CLI, this crate), and the `sr` value exactly as sent (the
/// Node.js SDK signs its `HostName` as is and sends it unencoded).
pub fn verify(
    header: &str,
    resources: &[&str],
    key: &[u8],
    key_name: &str,
    now: u64,
) -> Result<(), SasError> {
    let rest = header
        .trim()
        .strip_prefix("SharedAccessSignature ")
        .ok_or(SasError::Malformed)?;
    let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
    let mut sr_as_sent = "";
    for part in rest.split('&') {
        let (k, v) = part.split_once('=').ok_or(SasError::Malformed)?;
        if k == "sr" {
            sr_as_sent = v;
        }
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| SasError::Malformed)?
            .into_owned();
        match k {
            "sr" => sr = Some(v),
            "sig" => sig = Some(v),
            "se" => se = Some(v),
            "skn" => skn = Some(v),
            _ => {}
        }
    }
    let (sr, sig, se) = (
        sr.ok_or(SasError::Malformed)?,
        sig.ok_or(SasError::Malformed)?,
        se.ok_or(SasError::Malformed)?,
    );
    let expiry: u64 = se.parse().map_err(|_| SasError::Malformed)?;
    if !resources.iter().any(|r| r.eq_ignore_ascii_case(&sr)) {
        return Err(SasError::WrongResource);
    }
    if expiry <= now {
        return Err(SasError::Expired);
    }
    if skn.as_deref().is_some_and(|n| n != key_name) {
        return Err(SasError::WrongPolicy);
    }
    let given = base64::engine::general_purpose::STANDARD
        .decode(sig.as_bytes())
        .map_err(|_| SasError::Malformed)?;
    let mut signed_forms = vec![
        url_encode(&sr.to_ascii_lowercase()),
        sr_as_sent.to_string(),
        sr,
    ];
    signed_forms.dedup();
    let valid = signed_forms.iter().fold(false, |ok, form| {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        mac.update(format!("{form}\n{se}").as_bytes());
        // Every form is checked (no early exit), each comparison in constant time.
        mac.verify_slice(&given).is_ok() | ok
    });
    if valid {
        Ok(())
    } else {
        Err(SasError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected value computed independently (Python: hmac.new(b64decode(key),
    /// b"mydps.azure-devices-provisioning.net\n1700000000", sha256), base64, quote(safe='')).
    #[test]
    fn matches_a_hand_computed_token() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
            .unwrap();
        let t = token(
            "MyDPS.azure-devices-provisioning.net",
            &key,
            Some("provisioningserviceowner"),
            1_700_000_000,
        );
        assert_eq!(t.as_str(), EXPECTED);
    }
    const EXPECTED: &str = "SharedAccessSignature sr=mydps.azure-devices-provisioning.net&sig=xXBqEKztXMACe9dg1gMBreO%2F8CMn3ovt%2B%2BxDvPb6Xl0%3D&se=1700000000&skn=provisioningserviceowner";

    proptest::proptest! {
        #[test]
        fn any_token_verifies_only_with_its_key(resource in "[a-zA-Z0-9.:-]{1,40}", key in proptest::collection::vec(proptest::num::u8::ANY, 1..64), expiry in 1u64..u32::MAX as u64) {
            let t = token(&resource, &key, Some("p"), expiry);
            proptest::prop_assert_eq!(verify(&t, &[&resource], &key, "p", expiry - 1), Ok(()));
            let mut other = key.clone();
            other[0] ^= 1;
            proptest::prop_assert_eq!(verify(&t, &[&resource], &other, "p", expiry - 1), Err(SasError::BadSignature));
        }
    }

    #[test]
    fn verify_accepts_own_tokens_and_refuses_tampering() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = token(
            "127.0.0.1:8443",
            key,
            Some("provisioningserviceowner"),
            2000,
        );
        assert_eq!(
            verify(
                &t,
                &["127.0.0.1:8443"],
                key,
                "provisioningserviceowner",
                1000
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                &t,
                &["127.0.0.1:8443"],
                b"other key",
                "provisioningserviceowner",
                1000
            ),
            Err(SasError::BadSignature)
        );
        assert_eq!(
            verify(
                &t,
                &["127.0.0.1:8443"],
                key,
                "provisioningserviceowner",
                3000
            ),
            Err(SasError::Expired)
        );
        assert_eq!(
            verify(&t, &["other"], key, "provisioningserviceowner", 1000),
            Err(SasError::WrongResource)
        );
        assert_eq!(
            verify(&t, &["127.0.0.1:8443"], key, "other", 1000),
            Err(SasError::WrongPolicy)
        );
        assert_eq!(
            verify("Bearer x", &["a"], key, "p", 1),
            Err(SasError::Malformed)
        );
        // sr is percent-encoded: ':' must be %3A.
        assert!(t.contains("sr=127.0.0.1%3A8443&"), "{}", t.as_str());
    }

    /// The Node.js SDK (azure-iot-common `SharedAccessSignature.create`) signs `HostName + "\n" + se`
    /// as is and sends `sr` unencoded, with `se` in milliseconds.
    #[test]
    fn verify_accepts_tokens_signed_as_the_node_sdk_does() {
        let key = b"0123456789abcdef0123456789abcdef";
        let (host, se) = ("Localhost:8443", 1_900_000_000_000u64);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        mac.update(format!("{host}\n{se}").as_bytes());
        let sig = url_encode(
            &base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
        );
        let node = format!(
            "SharedAccessSignature sr={host}&sig={sig}&se={se}&skn=provisioningserviceowner"
        );
        assert_eq!(
            verify(
                &node,
                &["localhost:8443"],
                key,
                "provisioningserviceowner",
                1_000
            ),
            Ok(())
        );
        let tampered = node.replace("se=1900000000000", "se=1900000000001");
        assert_eq!(
            verify(
                &tampered,
                &["localhost:8443"],
                key,
                "provisioningserviceowner",
                1_000
            ),
            Err(SasError::BadSignature)
        );
    }
}
