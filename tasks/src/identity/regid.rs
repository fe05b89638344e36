//! Registration IDs (facts §5), MAC addresses and firmware versions.

use super::{IdentityError, RegistrationId};
use crate::error::Input;

const ALLOWED: &str = "allowed: 1 to 64 characters of lower-case letters a-z, digits 0-9 and -";

pub(crate) fn parse(text: &str) -> Result<RegistrationId, IdentityError> {
    let input = || format!("registration ID {text:?}");
    if text.is_empty() {
        return Err(IdentityError::named(
            Input::RegistrationId,
            input(),
            format!("is empty; {ALLOWED}"),
        ));
    }
    let len = text.chars().count();
    if len > 64 {
        return Err(IdentityError::named(
            Input::RegistrationId,
            input(),
            format!("is {len} characters long; DPS allows at most 64 for X.509 registrations; {ALLOWED}"),
        ));
    }
    if let Some((pos, c)) = text
        .chars()
        .enumerate()
        .find(|(_, c)| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
    {
        let why = if c.is_ascii_uppercase() {
            " (upper case is not allowed)"
        } else {
            ""
        };
        return Err(IdentityError::named(
            Input::RegistrationId,
            input(),
            format!(
                "character {} ({c:?}) is not allowed{why}; {ALLOWED}",
                pos + 1
            ),
        ));
    }
    Ok(RegistrationId(text.to_string()))
}

pub(crate) fn suggest(text: &str) -> Option<RegistrationId> {
    if parse(text).is_ok() {
        return None;
    }
    let fixed: String = text
        .trim()
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .take(64)
        .collect();
    if fixed.chars().all(|c| c == '-') {
        return None;
    }
    parse(&fixed).ok()
}

pub(crate) fn normalize_mac(mac: &str) -> Result<String, IdentityError> {
    let input = || format!("MAC {mac:?}");
    let allowed = "allowed: 12 hexadecimal digits, optionally separated by ':' or '-' (e.g. a0:b1:c2:d3:e4:f5)";
    let mut out = String::with_capacity(12);
    for c in mac.trim().chars() {
        match c {
            ':' | '-' => {}
            c if c.is_ascii_hexdigit() => out.push(c.to_ascii_lowercase()),
            c => {
                return Err(IdentityError::named(
                    Input::Mac,
                    input(),
                    format!("{c:?} is not a hexadecimal digit; {allowed}"),
                ))
            }
        }
    }
    if out.len() != 12 {
        return Err(IdentityError::named(
            Input::Mac,
            input(),
            format!("has {} hexadecimal digits; {allowed}", out.len()),
        ));
    }
    Ok(out)
}

/// Validate `N.N.N` (digits only, three non-empty parts) and return the parts.
pub(crate) fn firmware_version(version: &str) -> Result<[&str; 3], IdentityError> {
    let err = || {
        IdentityError::named(
            Input::FirmwareVersion,
            format!("firmware version {version:?}"),
            "allowed: three dot-separated numbers N.N.N of digits only (e.g. 1.6.2 or 2.0.10)",
        )
    };
    let mut parts = version.split('.');
    let mut out = [""; 3];
    for slot in &mut out {
        let p = parts.next().ok_or_else(err)?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        *slot = p;
    }
    if parts.next().is_some() {
        return Err(err());
    }
    Ok(out)
}

pub(crate) fn from_mac_and_version(
    mac: &str,
    firmware_version: &str,
) -> Result<RegistrationId, IdentityError> {
    let mac = normalize_mac(mac)?;
    let [x, y, z] = self::firmware_version(firmware_version)?;
    parse(&format!("az-{mac}v{x}v{y}v{z}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::error::DomainError;

    /// The one rule of both adapters: the ID wins, else the pair; half a pair names the other.
    #[test]
    fn registration_id_from_the_adapters_inputs() {
        use crate::identity::RegistrationId as R;
        let ok = |a, b, c| R::from_inputs(a, b, c).unwrap().as_str().to_string();
        assert_eq!(ok(Some("my-dev"), Some("c0bdd1a2b3c4"), None), "my-dev");
        assert_eq!(
            ok(None, Some("C0:BD:D1:A2:B3:C4"), Some("1.6.2")),
            "az-c0bdd1a2b3c4v1v6v2"
        );
        let input = |a, b, c| R::from_inputs(a, b, c).unwrap_err().input();
        assert_eq!(
            input(None, Some("c0bdd1a2b3c4"), None),
            Some(Input::FirmwareVersion)
        );
        assert_eq!(input(None, None, Some("1.6.2")), Some(Input::Mac));
        assert_eq!(input(None, None, None), Some(Input::RegistrationId));
        assert_eq!(input(None, Some("zz"), Some("1.6.2")), Some(Input::Mac));
    }

    #[test]
    fn suggestions_are_valid_and_close() {
        let s = |t: &str| suggest(t).map(|id| id.as_str().to_string());
        assert_eq!(s("My_DevKit 01"), Some("my-devkit-01".into()));
        assert_eq!(s("my-devkit"), None, "already valid");
        assert_eq!(s("___"), None);
        assert_eq!(s(&"A".repeat(80)).unwrap().len(), 64);
        assert_eq!(s("Gerät"), Some("ger-t".into()));
    }

    #[test]
    fn registration_ids() {
        assert!(parse("my-devkit-01").is_ok());
        assert!(parse(&"a".repeat(64)).is_ok());
        for bad in ["", "My-dev", "my_dev", "dev kit", "dévkit", &"a".repeat(65)] {
            let e = parse(bad).unwrap_err();
            assert!(e.is_invalid_input());
            assert!(e.to_string().contains("registration ID"), "{e}");
        }
    }

    #[test]
    fn macs_and_versions() {
        assert_eq!(normalize_mac("A0:B1:C2:D3:E4:F5").unwrap(), "a0b1c2d3e4f5");
        assert_eq!(normalize_mac("a0-b1-c2-d3-e4-f5").unwrap(), "a0b1c2d3e4f5");
        for bad in ["a0b1c2d3e4f", "a0b1c2d3e4f5a", "g0b1c2d3e4f5", ""] {
            assert!(normalize_mac(bad).is_err(), "{bad}");
        }
        assert_eq!(
            from_mac_and_version("C0BDD1A2B3C4", "1.6.2")
                .unwrap()
                .as_str(),
            "az-c0bdd1a2b3c4v1v6v2"
        );
        assert_eq!(
            from_mac_and_version("c0bdd1a2b3c4", "2.0.10")
                .unwrap()
                .as_str(),
            "az-c0bdd1a2b3c4v2v0v10"
        );
        for bad in [
            "1.6", "1..6", "a.b.c", "1.6.2.1", "1.6.", " 1.6.2", "1.6.-2", "",
        ] {
            assert!(from_mac_and_version("c0bdd1a2b3c4", bad).is_err(), "{bad}");
        }
    }
}
