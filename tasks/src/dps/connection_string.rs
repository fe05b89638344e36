//! Shared-access connection strings (`HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`),
//! for DPS and for IoT Hub alike.
//!
//! The key is a secret: it is decoded once, kept zeroized, and never appears in an error, a
//! log line or `Debug` output. Parse errors name a known field or the segment's position and
//! what is allowed, never a value and never an unknown name (a file holding only the key, or
//! `SharedAccessKey:<key>`, has the secret where a name is expected).

use base64::Engine;
use zeroize::Zeroizing;

/// Why a connection string was refused. Never contains the key or the raw string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    #[error("connection string: missing field {0} (expected HostName=...;SharedAccessKeyName=...;SharedAccessKey=...)")]
    Missing(&'static str),
    #[error("connection string: field {field} {reason}")]
    Invalid { field: String, reason: String },
}

/// A parsed shared-access connection string. No `Display`; `Debug` redacts the key.
#[derive(Clone)]
pub struct ConnectionString {
    host_name: String,
    key_name: String,
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("host_name", &self.host_name)
            .field("key_name", &self.key_name)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ConnectionString {
    /// Parse the text of a connection string file (or a line of stdin): its first non-empty
    /// line, so files saved with a trailing newline or a blank first line work.
    pub fn parse_file_text(text: &str) -> Result<ConnectionString, ConnectionStringError> {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default();
        ConnectionString::parse(first)
    }

    /// Parse `HostName=..;SharedAccessKeyName=..;SharedAccessKey=..` (field order free,
    /// surrounding whitespace trimmed, empty segments ignored).
    pub fn parse(text: &str) -> Result<ConnectionString, ConnectionStringError> {
        let mut host = None;
        let mut key_name = None;
        let mut key: Option<Zeroizing<Vec<u8>>> = None;
        for (i, segment) in text.trim().split(';').enumerate() {
            let segment = segment.trim();
            if segment.is_empty() {
                continue;
            }
            // Split at the first '=': base64 keys end in '=' padding.
            let Some((name, value)) = segment.split_once('=') else {
                return Err(ConnectionStringError::Invalid {
                    field: format!("#{}", i + 1),
                    reason: "has no '=' (each field is Name=value, separated by ';')".into(),
                });
            };
            let invalid = |reason: &str| ConnectionStringError::Invalid {
                field: name.to_string(),
                reason: reason.to_string(),
            };
            match name {
                "HostName" => {
                    let ok = !value.is_empty()
                        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
                    if !ok {
                        return Err(invalid("must be a host name (letters, digits, '.', '-', optional :port)"));
                    }
                    host = Some(value.to_string());
                }
                "SharedAccessKeyName" => {
                    let ok = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                    if !ok {
                        return Err(invalid("must be a policy name (letters, digits, '-', '_', '.')"));
                    }
                    key_name = Some(value.to_string());
                }
                "SharedAccessKey" => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(value.as_bytes())
                        .map_err(|_| invalid("must be base64 (the key itself is not shown)"))?;
                    if decoded.is_empty() {
                        return Err(invalid("must not be empty"));
                    }
                    key = Some(Zeroizing::new(decoded));
                }
                // Fields that may appear in strings copied from the portal and do not matter here.
                "DeviceId" | "ModuleId" | "GatewayHostName" => {}
                // The name is not shown: it may be (part of) the key.
                _ => {
                    return Err(ConnectionStringError::Invalid {
                        field: format!("#{}", i + 1),
                        reason: "has a name that is not known (allowed: HostName, SharedAccessKeyName, SharedAccessKey; the text is not shown)".into(),
                    })
                }
            }
        }
        Ok(ConnectionString {
            host_name: host.ok_or(ConnectionStringError::Missing("HostName"))?,
            key_name: key_name.ok_or(ConnectionStringError::Missing("SharedAccessKeyName"))?,
            key: key.ok_or(ConnectionStringError::Missing("SharedAccessKey"))?,
        })
    }

    /// Build one from parts (the emulator hands out its own).
    pub fn new(
        host_name: impl Into<String>,
        key_name: impl Into<String>,
        key: &[u8],
    ) -> ConnectionString {
        ConnectionString {
            host_name: host_name.into(),
            key_name: key_name.into(),
            key: Zeroizing::new(key.to_vec()),
        }
    }

    /// The service host, possibly with `:port` (the emulator).
    pub fn host_name(&self) -> &str {
        &self.host_name
    }
    pub fn key_name(&self) -> &str {
        &self.key_name
    }
    /// The host is this machine (`localhost`, `127.x.x.x`, `[::1]`, any port): a local service
    /// such as the DPS emulator, whose own CA must be trusted (`--ca-file`, `caFile`).
    pub fn is_local_host(&self) -> bool {
        let host = match self.host_name.strip_prefix('[') {
            // `[::1]:8443`: the address is inside the brackets.
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => self.host_name.split(':').next().unwrap_or_default(),
        };
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
    /// The decoded shared access key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
    /// The connection string as text (a secret: zeroized on drop; only for files and stdout
    /// on explicit request, e.g. the emulator's banner).
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "HostName={};SharedAccessKeyName={};SharedAccessKey={}",
            self.host_name,
            self.key_name,
            base64::engine::general_purpose::STANDARD.encode(&*self.key)
        ))
    }
    /// A SAS `Authorization` header value for this host, valid for `ttl`.
    pub fn sas_token(&self, ttl: std::time::Duration) -> Zeroizing<String> {
        let expiry = super::sas::now_unix().saturating_add(ttl.as_secs());
        super::sas::token(&self.host_name, &self.key, Some(&self.key_name), expiry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts_are_this_machine_only() {
        let host = |h: &str| ConnectionString::new(h, "p", b"k").is_local_host();
        for h in [
            "localhost",
            "LOCALHOST:8443",
            "127.0.0.1",
            "127.1.2.3:5000",
            "[::1]",
            "[::1]:8443",
        ] {
            assert!(host(h), "{h}");
        }
        for h in [
            "mydps.azure-devices-provisioning.net",
            "10.0.0.1",
            "localhost.example.com",
            "[2001:db8::1]:443",
        ] {
            assert!(!host(h), "{h}");
        }
    }

    const KEY_B64: &str = "c2VjcmV0LWNhbmFyeS1rZXktZm9yLXRlc3RzLW9ubHk=";

    #[test]
    fn parses_any_order_and_keeps_the_key_out_of_debug() {
        let cs = ConnectionString::parse(&format!(
            " SharedAccessKey={KEY_B64};HostName=mydps.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner; "
        ))
        .unwrap();
        assert_eq!(cs.host_name(), "mydps.azure-devices-provisioning.net");
        assert_eq!(cs.key_name(), "provisioningserviceowner");
        assert_eq!(cs.key(), b"secret-canary-key-for-tests-only");
        let dbg = format!("{cs:?}");
        assert!(!dbg.contains(KEY_B64) && !dbg.contains("canary"), "{dbg}");
        assert!(cs.to_secret_string().contains(KEY_B64));
        assert_eq!(
            ConnectionString::parse(&cs.to_secret_string())
                .unwrap()
                .key(),
            cs.key()
        );
    }

    #[test]
    fn errors_name_the_field_and_never_echo_the_key() {
        let bad_key = "SharedAccessKey=not*base64*canary;HostName=h;SharedAccessKeyName=p";
        let err = ConnectionString::parse(bad_key).unwrap_err().to_string();
        assert!(
            err.contains("SharedAccessKey") && !err.contains("canary"),
            "{err}"
        );
        let err =
            ConnectionString::parse(&format!("HostName=h;SharedAccessKey={KEY_B64}")).unwrap_err();
        assert_eq!(err, ConnectionStringError::Missing("SharedAccessKeyName"));
        let err =
            ConnectionString::parse("HostName=h;SharedAccessKeyName=p;canarysecretwithoutequals")
                .unwrap_err()
                .to_string();
        assert!(err.contains("#3") && !err.contains("canary"), "{err}");
        let err = ConnectionString::parse(&format!(
            "HostName=a b;SharedAccessKeyName=p;SharedAccessKey={KEY_B64}"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("HostName"), "{err}");
        let err = ConnectionString::parse("HostName=h;Foo=bar")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("#2") && err.contains("allowed") && !err.contains("Foo"),
            "{err}"
        );
        // A file holding only the key, or the key after a colon: the key is never shown.
        for text in [
            KEY_B64.to_string(),
            format!("SharedAccessKey:{KEY_B64}"),
            format!("HostName=h;SharedAccessKey:{KEY_B64}"),
        ] {
            let err = ConnectionString::parse(&text).unwrap_err().to_string();
            assert!(
                !err.contains("c2VjcmV0") && !err.contains("canary"),
                "{err}"
            );
            assert!(err.contains('#'), "names the segment position: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_echoes_input(s in ".{0,200}") {
            if let Err(e) = ConnectionString::parse(&format!("SharedAccessKey=zz{s}")) {
                let msg = e.to_string();
                let echoed = s.len() >= 4 && msg.contains(&format!("zz{}", s));
                proptest::prop_assert!(!echoed, "input echoed in {}", msg);
            }
        }

        /// Whatever the text, no run of 6 of its characters that is not ours shows up in an error.
        #[test]
        fn errors_never_quote_any_part_of_the_text(secret in "[A-Za-z0-9+/]{12,40}={0,2}", sep in "[:=; ]", prefix in "(SharedAccessKey|HostName=h;|)") {
            let text = format!("{prefix}{sep}Q{secret}");
            if let Err(e) = ConnectionString::parse(&text) {
                let msg = e.to_string();
                let marked = format!("Q{}", &secret[..8]);
                proptest::prop_assert!(!msg.contains(&marked), "{} in {}", marked, msg);
            }
        }
    }
}
