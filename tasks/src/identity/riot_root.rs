//! The RIoT reference code's published "root" key, which the DevKit's core library carries.
//!
//! The vendor's prebuilt `libdevkit-sdk-core-lib.a` (devkit-sdk, `AZ3166/src/system`) holds, in
//! `hsm_client_riot.o`, `eccRootPrivBytes`/`eccRootPubBytes`: byte for byte the key the Azure
//! IoT C SDK publishes in `provisioning_client/adapters/hsm_client_riot.c` as "intended for
//! development purposes only ... provides no meaningful security whatsoever". That HSM signs a
//! DeviceID certificate (`CN=riot-signer-core`, issuer `CN=riot-root`) with it. The DevKit
//! uses that HSM only when RIoT did not start (the `X509_GROUP` auth type): then every
//! DevKit derives the same keys from the simulator's constants, not from its UDS (see
//! docs/identity.md, "What the device presents").
//!
//! Anyone can mint certificates under this key, so it must never be an enrollment group's
//! CA: `devkit enroll --group` refuses it ([`is_published_root_key`]).

/// The published root public key, uncompressed SEC1 (`04 || X || Y`), big-endian. The library
/// stores each coordinate as nine little-endian 32-bit words, least significant first; this
/// is the same number written the usual way.
pub const PUBLISHED_ROOT_PUBLIC_KEY: [u8; 65] = [
    0x04, // X
    0x69, 0xab, 0x5a, 0x26, 0xa1, 0x52, 0x0f, 0xc9, 0xec, 0x5d, 0xa5, 0x95, 0xf4, 0x97, 0x48, 0xb9,
    0xfe, 0xd2, 0x3d, 0x09, 0xc5, 0x9d, 0x1f, 0xa7, 0x50, 0xd3, 0x94, 0x49, 0xc8, 0xfc, 0x9c, 0xeb,
    // Y
    0xdf, 0x1e, 0x5b, 0xb0, 0xfd, 0x9e, 0x46, 0x9a, 0x63, 0xd2, 0x37, 0xe5, 0x04, 0xfb, 0xd4, 0xfa,
    0xa2, 0x70, 0x4f, 0xb1, 0x05, 0x9e, 0xad, 0x9a, 0xd5, 0x3c, 0xf8, 0x39, 0x62, 0xb1, 0xce, 0x7d,
];

/// Why the key is refused, in the words every refusal uses.
pub const PUBLISHED_ROOT_REFUSAL: &str = "holds the RIoT reference code's published development root key (Azure IoT C SDK hsm_client_riot.c, also in the DevKit's core library): anyone can mint DeviceID certificates under it, so it must never be an enrollment group's CA";

/// True when `point` (uncompressed SEC1, as [`crate::dps::cert::read`] returns it) is the
/// published root key.
pub fn is_published_root_key(point: &[u8]) -> bool {
    point == PUBLISHED_ROOT_PUBLIC_KEY
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    /// The private scalar as published (nine little-endian words, last word zero), to show
    /// the public key above is the one it gives: the constant was not mistyped.
    const PUBLISHED_ROOT_PRIVATE_LE: [u8; 32] = [
        0xe3, 0xe7, 0xc7, 0x13, 0x57, 0x3f, 0xd9, 0xc8, 0xb8, 0xe1, 0xea, 0xf4, 0x53, 0xf1, 0x56,
        0x15, 0x02, 0xf0, 0x71, 0xc0, 0x53, 0x49, 0xc8, 0xda, 0xe6, 0x26, 0xa9, 0x0b, 0x17, 0x88,
        0xe5, 0x70,
    ];

    #[test]
    fn the_published_private_scalar_gives_the_published_public_key() {
        let mut be = PUBLISHED_ROOT_PRIVATE_LE;
        be.reverse();
        assert_eq!(
            hex::encode(be),
            "70e588170ba926e6dac84953c071f0021556f153f4eae1b8c8d93f5713c7e7e3"
        );
        let secret = p256::SecretKey::from_slice(&be).unwrap();
        let public = secret.public_key().to_encoded_point(false);
        assert_eq!(public.as_bytes(), PUBLISHED_ROOT_PUBLIC_KEY);
        assert!(is_published_root_key(public.as_bytes()));
        let mut other = PUBLISHED_ROOT_PUBLIC_KEY;
        other[64] ^= 1;
        assert!(!is_published_root_key(&other));
    }
}
