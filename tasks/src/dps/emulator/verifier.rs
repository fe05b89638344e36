//! Client-certificate verification for the device API, as dps-api.md §3 describes it.
//!
//! The DevKit's alias certificate is not RFC 5280-valid, so no X.509 path validation is done:
//! any certificate carrying a P-256 key is accepted at this stage, and which certificate it
//! is gets matched against the enrollment afterwards (DER equality, CN, enabled). What IS
//! checked here is proof of possession: the TLS 1.2 / 1.3 handshake signature must verify
//! with the presented certificate's own public key (ECDSA P-256 SHA-256).

use crate::dps::cert;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// `mandatory: false` when the service API shares the listener: service clients present no
/// certificate, and the device API refuses requests without one (401002).
#[derive(Debug, Default)]
pub(crate) struct PossessionVerifier {
    pub mandatory: bool,
}

fn public_key(cert_der: &[u8]) -> Result<VerifyingKey, Error> {
    let point = cert::read(cert_der)
        .and_then(|f| f.public_key)
        .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    VerifyingKey::from_sec1_bytes(&point)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// Verify a handshake signature with the certificate's own key.
pub(crate) fn verify_handshake_signature(
    message: &[u8],
    cert_der: &[u8],
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    if dss.scheme != SignatureScheme::ECDSA_NISTP256_SHA256 {
        return Err(Error::PeerIncompatible(
            rustls::PeerIncompatible::NoSignatureSchemesInCommon,
        ));
    }
    let key = public_key(cert_der)?;
    let sig = DerSignature::try_from(dss.signature())
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature))?;
    key.verify(message, &sig)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

impl ClientCertVerifier for PossessionVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        public_key(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}
