//! Key derivation (the RIoT KDF) and the device's fixed-nonce ECDSA.
//!
//! KDF (facts §3): one HMAC-SHA256 keyed with the 32-byte input over
//! `01 00 00 00 || label || 00 || 00 01 00 00` (counter 1 and bit count 256 written
//! little-endian by a macro bug in the original), the output read as a LITTLE-endian integer
//! to give the P-256 private scalar.
//!
//! Signatures use the device's FIXED nonce `k = 0x0102…1f20`: required to reproduce the bytes
//! the device presents, and the reason anyone holding one DeviceID-signed certificate can
//! compute the DeviceID private key. [`sign_fixed_nonce`] is the only place a fixed nonce is
//! used in this project, and only to reproduce the device's certificates.

use super::IdentityError;
use hmac::{Hmac, Mac};
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::elliptic_curve::{Field, PrimeField};
use p256::{FieldBytes, ProjectivePoint, Scalar, U256};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// A private P-256 scalar, zeroized on drop; no Debug.
pub(crate) struct SecretScalar(Zeroizing<Scalar>);

impl SecretScalar {
    pub(crate) fn scalar(&self) -> &Scalar {
        &self.0
    }
    /// Big-endian bytes (zeroized on drop).
    pub(crate) fn to_be_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_repr().into())
    }
    /// Uncompressed public point `04 || X || Y`.
    pub(crate) fn public_point(&self) -> [u8; 65] {
        let affine = mul_generator(&self.0).to_affine();
        let encoded = affine.to_encoded_point(false);
        let mut out = [0u8; 65];
        out.copy_from_slice(encoded.as_bytes());
        out
    }
}

/// `d·G` with a precomputed fixed-base table: 64 windows of 4 bits, each window's 15 non-zero
/// multiples `j·16^i·G` (960 projective points, built once with 960 additions and no
/// inversion: p256 0.13 offers no batch normalisation, and 960 inversions would cost more than
/// a whole single-certificate run). A scalar multiplication is then 64 additions instead of
/// ~256 doublings and 64 additions, which is what makes 10,000-device batches fast. Table entries are
/// selected in constant time (every entry is read), so the private scalar does not leak
/// through memory access patterns.
///
/// Building the table costs about as much as four plain multiplications, so a process that
/// derives one or two identities (a single `generate-cert`) never builds it.
fn mul_generator(d: &Scalar) -> ProjectivePoint {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PLAIN_CALLS: AtomicUsize = AtomicUsize::new(0);
    if TABLE.get().is_none() && PLAIN_CALLS.fetch_add(1, Ordering::Relaxed) < 4 {
        return ProjectivePoint::GENERATOR * d;
    }
    mul_with_table(d, generator_table())
}

fn mul_with_table(d: &Scalar, table: &[[ProjectivePoint; 15]; 64]) -> ProjectivePoint {
    use p256::elliptic_curve::subtle::{ConditionallySelectable, ConstantTimeEq};
    let bytes = Zeroizing::new(<[u8; 32]>::from(d.to_repr()));
    let mut acc = ProjectivePoint::IDENTITY;
    for (i, window) in table.iter().enumerate() {
        let byte = bytes[31 - i / 2];
        let nibble = if i % 2 == 0 { byte & 0x0f } else { byte >> 4 };
        let mut selected = ProjectivePoint::IDENTITY;
        for (j, point) in window.iter().enumerate() {
            selected.conditional_assign(point, nibble.ct_eq(&(j as u8 + 1)));
        }
        acc += selected;
    }
    acc
}

/// `table[i][j-1] = j·16^i·G` for `i` in 0..64, `j` in 1..16.
static TABLE: OnceLock<Box<[[ProjectivePoint; 15]; 64]>> = OnceLock::new();

fn generator_table() -> &'static [[ProjectivePoint; 15]; 64] {
    TABLE.get_or_init(|| {
        let mut table = Box::new([[ProjectivePoint::IDENTITY; 15]; 64]);
        let mut base = ProjectivePoint::GENERATOR;
        for window in table.iter_mut() {
            let mut multiple = base;
            for slot in window.iter_mut() {
                *slot = multiple;
                multiple += base;
            }
            base = multiple; // 16·base
        }
        table
    })
}

/// `KDF(key, label)` as the device computes it; 0 or >= n is an error (the device loops forever).
pub(crate) fn kdf(key: &[u8; 32], label: &str) -> Result<SecretScalar, IdentityError> {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| IdentityError::Derivation("HMAC key rejected".into()))?;
    mac.update(&[1, 0, 0, 0]);
    mac.update(label.as_bytes());
    mac.update(&[0]);
    mac.update(&[0, 1, 0, 0]);
    let mut bytes = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
    bytes.reverse(); // little-endian integer -> big-endian representation
    let scalar: Option<Scalar> = Scalar::from_repr(FieldBytes::from(*bytes)).into();
    match scalar {
        Some(s) if !bool::from(s.is_zero()) => Ok(SecretScalar(Zeroizing::new(s))),
        _ => Err(IdentityError::Derivation(format!(
            "the {label} key is 0 or not below the P-256 group order; the device would hang at boot with this UDS and firmware"
        ))),
    }
}

/// The device's fixed ECDSA nonce.
const FIXED_K: [u8; 32] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
];

/// `(r, k^-1)` for the fixed nonce: constants, computed once (R = k·G is the costly part).
fn fixed_nonce_constants() -> &'static (Scalar, Scalar) {
    static CONSTANTS: OnceLock<(Scalar, Scalar)> = OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let k = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(FIXED_K)))
            .unwrap_or(Scalar::ONE);
        let big_r = (ProjectivePoint::GENERATOR * k).to_affine();
        let r = <Scalar as Reduce<U256>>::reduce_bytes(&big_r.x());
        let k_inv = Option::<Scalar>::from(k.invert()).unwrap_or(Scalar::ONE);
        (r, k_inv)
    })
}

/// ECDSA P-256 signature over SHA-256(`msg`) with the device's fixed nonce, DER-encoded
/// (`SEQUENCE { INTEGER r, INTEGER s }`, minimal integers). s is not normalised (the device
/// does not normalise either).
pub(crate) fn sign_fixed_nonce(key: &SecretScalar, msg: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(msg);
    let z = <Scalar as Reduce<U256>>::reduce_bytes(&digest);
    let (r, k_inv) = fixed_nonce_constants();
    let s = *k_inv * (z + *r * key.scalar());
    super::der::ecdsa_sig_der(&r.to_repr().into(), &s.to_repr().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_nonce_signature_equals_the_hazmat_primitive_and_verifies() {
        use ecdsa::hazmat::SignPrimitive;
        use p256::ecdsa::signature::Verifier;
        let key = kdf(&[7u8; 32], "Identity").unwrap();
        let msg = b"to be signed";
        let ours = sign_fixed_nonce(&key, msg);
        let k = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(FIXED_K))).unwrap();
        use sha2::Digest;
        let z = sha2::Sha256::digest(msg);
        let (sig, _) = key.scalar().try_sign_prehashed(k, &z).unwrap();
        assert_eq!(ours, sig.to_der().as_bytes());
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_point()).unwrap();
        let parsed = p256::ecdsa::Signature::from_der(&ours).unwrap();
        vk.verify(msg, &parsed).unwrap();
    }

    #[test]
    fn fixed_base_table_matches_plain_multiplication() {
        let mut scalars = vec![
            Scalar::ONE,
            Scalar::from(15u64),
            Scalar::from(16u64),
            Scalar::from(0x1000_0001u64),
            -Scalar::ONE,
        ];
        for i in 0..16u8 {
            let key = kdf(&[i; 32], "Identity").unwrap();
            scalars.push(*key.scalar());
        }
        for d in scalars {
            assert_eq!(
                mul_with_table(&d, generator_table()).to_affine(),
                (ProjectivePoint::GENERATOR * d).to_affine()
            );
            assert_eq!(
                mul_generator(&d).to_affine(),
                (ProjectivePoint::GENERATOR * d).to_affine()
            );
        }
    }

    #[test]
    fn kdf_reads_the_hmac_little_endian() {
        let key = [1u8; 32];
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
        mac.update(b"\x01\x00\x00\x00Alias\x00\x00\x01\x00\x00");
        let mut expect: [u8; 32] = mac.finalize().into_bytes().into();
        expect.reverse();
        assert_eq!(*kdf(&key, "Alias").unwrap().to_be_bytes(), expect);
    }
}
