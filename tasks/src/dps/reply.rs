//! What of a server's reply may be shown.
//!
//! DPS, IoT Hub, a proxy in between, or `az` relaying them may echo the request in an error
//! reply, its `Authorization: SharedAccessSignature sr=…&sig=…&se=…&skn=…` header included:
//! a token that stays valid for an hour. Every piece of reply text passes through [`redact`]
//! before it becomes an error message (hence the CLI's text and `--json`, the daemon's errors,
//! logs) or a device log line: SAS tokens and signatures, keys (`SharedAccessKey=`, long base64
//! or hex runs) and private keys become `<redacted>`, as in device logs
//! ([`crate::logs::redact`]).

/// Replaces a whole SAS token (`SharedAccessSignature sr=…&sig=…&se=…`), as the device-log
/// redactor replaces a secret (and keeps `Authorization: <redacted>` as it is).
const REDACTED_TOKEN: &str = "<redacted>";

/// Reply text with every SAS token and key replaced by `<redacted>`.
pub fn redact(text: &str) -> String {
    crate::logs::redact::redact(&redact_sas_tokens(text))
}

/// A reply body as text (invalid UTF-8 replaced), redacted.
pub fn body_text(body: &[u8]) -> String {
    redact(&String::from_utf8_lossy(body))
}

/// `SharedAccessSignature` (any case) and the token after it, up to a space or a quote, as one:
/// none of its fields is worth showing once the signature is gone.
fn redact_sas_tokens(text: &str) -> String {
    const MARKER: &str = "sharedaccesssignature";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // `lower` is the ASCII lowering of `rest`: byte offsets agree.
    while let Some(i) = rest.to_ascii_lowercase().find(MARKER) {
        out.push_str(&rest[..i]);
        let after = &rest[i + MARKER.len()..];
        let token = after.trim_start_matches([' ', '=', ':']);
        let end = token
            .find(|c: char| c.is_whitespace() || "\"',;<>}]\\".contains(c))
            .unwrap_or(token.len());
        out.push_str(REDACTED_TOKEN);
        rest = &token[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "wGYPvlsXKw%2FVO34BVbSfoJ7ik0%2Bf6CmXpq8z%3D";

    #[test]
    fn sas_tokens_signatures_and_keys_are_redacted_and_the_rest_kept() {
        let token = format!("SharedAccessSignature sr=0ne000A1B2C&sig={SIG}&se=1646989322&skn=provisioningserviceowner");
        for text in [
            format!("Unauthorized. Authorization: {token}"),
            format!("{{\"message\":\"bad header {token}\",\"x\":1}}"),
            format!("<td>authorization</td><td>{token}</td>"),
            format!("token={}", token.to_uppercase()),
            format!("retry with sig={SIG} later"),
            "HostName=h;SharedAccessKeyName=p;SharedAccessKey=c2VjcmV0a2V5c2VjcmV0a2V5".into(),
            "key nz68jY29+MgnH9ZWoIKeQKC6iM1FhuOdzB9y7GITj4M= leaked".into(),
        ] {
            let r = redact(&text);
            for secret in ["wGYPvlsXKw", "WGYPVLSXKW", "c2VjcmV0", "nz68jY29"] {
                assert!(!r.contains(secret), "{text} -> {r}");
            }
            assert!(r.contains("<redacted>"), "{r}");
        }
        let r = redact(&format!(
            "Unauthorized. Authorization: {token} (trackingId t-1)"
        ));
        assert_eq!(
            r,
            "Unauthorized. Authorization: <redacted> (trackingId t-1)"
        );
        for ordinary in [
            "Enrollment az-c0bdd1a2b3c4v1v6v2 not found",
            "Invalid certificate. (trackingId 0b9c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3)",
        ] {
            assert_eq!(redact(ordinary), ordinary);
        }
        assert_eq!(
            body_text(b"bad \xff sig=abc"),
            "bad \u{fffd} sig=<redacted>"
        );
    }

    /// A TLS server on loopback that answers every request with an error reply echoing its
    /// `Authorization` header, as a misbehaving DPS or proxy does; the header values it saw are
    /// collected.
    async fn echoing_server(
        status: &'static str,
        json: bool,
    ) -> (
        String,
        String,
        std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use crate::dps::emulator::certs;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ca = certs::P256Signer::generate();
        let ca_der = certs::make_ca_cert(&ca).unwrap();
        let (server_der, key) = certs::make_server_cert(&ca, &["127.0.0.1".into()]).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(crate::dps::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(server_der)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let auth = head
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: "))
                    .unwrap_or_default()
                    .to_string();
                sink.lock().unwrap().push(auth.clone());
                let body = if json {
                    serde_json::json!({"errorCode": 401000, "trackingId": "t-1",
                        "message": format!("Unauthorized; request header Authorization: {auth}")})
                    .to_string()
                } else {
                    format!(
                        "<html><h1>Bad gateway</h1><pre>Authorization: {auth}\n{head}</pre></html>"
                    )
                };
                let reply = format!("HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        let ca_pem = crate::identity::pem::encode("CERTIFICATE", &ca_der);
        (host, ca_pem, seen)
    }

    /// The service client's error for a reply that echoes the request's live SAS token holds
    /// neither the token nor its signature, whether the reply is DPS JSON or a proxy's page.
    #[tokio::test]
    async fn an_error_reply_echoing_the_authorization_header_does_not_show_the_token() {
        for (status, json) in [("401 Unauthorized", true), ("502 Bad Gateway", false)] {
            let (host, ca_pem, seen) = echoing_server(status, json).await;
            let cs = crate::dps::ConnectionString::new(
                &host,
                "provisioningserviceowner",
                b"canary-key-0123456789abcdef",
            );
            let options = crate::dps::ClientOptions {
                ca_pem: Some(ca_pem),
                retry: crate::dps::retry::RetryPolicy {
                    max_attempts: 1,
                    ..Default::default()
                },
                ..Default::default()
            };
            let client = crate::dps::ServiceClient::new(cs, options).unwrap();
            let err = client.get("dev-1").await.unwrap_err();
            let shown = format!("{err} {err:?}");
            let auth = seen.lock().unwrap().first().cloned().expect("a request");
            let sig = auth
                .split('&')
                .find_map(|f| f.strip_prefix("sig="))
                .expect("a signature");
            assert!(sig.len() > 20, "{auth}");
            assert!(
                !shown.contains(sig) && !shown.contains(&auth),
                "{status}: the live token is shown: {shown}"
            );
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(
                shown.contains(&status[..3]),
                "still says what failed: {shown}"
            );
        }
    }
}
