//! TLS configuration shared by the service client, the device client and the emulator:
//! rustls 0.23 with the ring provider everywhere.

use super::DpsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

/// The ring crypto provider (explicit, so no process-wide default is needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Certificates from PEM text (every CERTIFICATE block).
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, DpsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            DpsError::invalid(
                crate::error::Input::CaFile,
                format!("not PEM certificates ({e})"),
            )
        })?;
    if certs.is_empty() {
        return Err(DpsError::invalid(
            crate::error::Input::CaFile,
            "no CERTIFICATE block found",
        ));
    }
    Ok(certs)
}

/// Trust anchors: the given CA PEM, or the public web roots (what Azure's endpoints chain to).
pub fn root_store(ca_pem: Option<&str>) -> Result<rustls::RootCertStore, DpsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in certs_from_pem(pem)? {
                roots.add(cert).map_err(|e| {
                    DpsError::invalid(
                        crate::error::Input::CaFile,
                        format!("not usable as a trust anchor ({e})"),
                    )
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

fn builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, DpsError>
{
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| DpsError::Tls(e.to_string()))
}

/// Client configuration without a client certificate (service API, IoT Hub API).
pub fn client_config(ca_pem: Option<&str>) -> Result<rustls::ClientConfig, DpsError> {
    Ok(builder()?
        .with_root_certificates(root_store(ca_pem)?)
        .with_no_client_auth())
}

/// Client configuration presenting `cert_der` with `key_pkcs8` (the device's alias identity).
///
/// The key is loaded without rustls' certificate/key consistency check: that check parses the
/// certificate with webpki, which the RFC-violating alias certificate may not survive. A key
/// that does not match the certificate simply fails the server's handshake-signature check.
pub fn client_config_with_cert(
    ca_pem: Option<&str>,
    cert_der: &[u8],
    key_pkcs8: &[u8],
) -> Result<rustls::ClientConfig, DpsError> {
    let provider = provider();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()));
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| DpsError::invalid(crate::error::Input::AliasKey, "not a P-256 PKCS#8 key"))?;
    let certified =
        rustls::sign::CertifiedKey::new(vec![CertificateDer::from(cert_der.to_vec())], signing_key);
    Ok(builder()?
        .with_root_certificates(root_store(ca_pem)?)
        .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified))))
}

/// A reqwest client over the given rustls configuration.
pub fn http_client(
    config: rustls::ClientConfig,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, DpsError> {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .https_only(true)
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| DpsError::Tls(e.to_string()))
}

/// A reqwest error with its causes (the top-level message alone says little), without the URL.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    reason
}

/// Whether `e` (anywhere in its causes) is a TLS certificate verification failure: the server's
/// certificate is not trusted, expired, for another name... Retrying cannot fix those.
pub fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        // io::Error's source() skips the error it wraps: look at the wrapped one too.
        let wrapped = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|w| w as &(dyn std::error::Error + 'static));
        for candidate in [Some(err), wrapped].into_iter().flatten() {
            // By type where the chain keeps it; by rustls' own wording where a layer boxed it
            // into another error type.
            if matches!(
                candidate.downcast_ref::<rustls::Error>(),
                Some(rustls::Error::InvalidCertificate(_))
            ) || candidate.to_string().contains("invalid peer certificate")
            {
                return true;
            }
        }
        next = wrapped.and_then(|w| w.source()).or_else(|| err.source());
    }
    false
}
