//! Property tests: whatever the UDS and registration ID, the lenient reader verifies what the
//! derivation produced; the map/image parser never panics on arbitrary or mutated input; and
//! secret types cannot be printed.

use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;
use tasks::error::DomainError;
use tasks::identity::{self, pem, FirmwareImage, RegistrationId, Uds};

fn small_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dice-vectors/explicit-id-small")
}

fn real_map() -> &'static str {
    static MAP: OnceLock<String> = OnceLock::new();
    MAP.get_or_init(|| std::fs::read_to_string(small_dir().join("DevKitDPS.ino.map")).unwrap())
}

fn real_bin() -> &'static [u8] {
    static BIN: OnceLock<Vec<u8>> = OnceLock::new();
    BIN.get_or_init(|| std::fs::read(small_dir().join("DevKitDPS.ino.bin")).unwrap())
}

fn image() -> &'static FirmwareImage {
    static IMAGE: OnceLock<FirmwareImage> = OnceLock::new();
    IMAGE.get_or_init(|| FirmwareImage::from_parts(real_bin().to_vec(), real_map()).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn inspect_verifies_whatever_derive_produced(uds in prop::array::uniform32(any::<u8>()), id in "[a-z0-9-]{1,64}", upper in any::<bool>()) {
        let hex = if upper { hex::encode_upper(uds) } else { hex::encode(uds) };
        let uds = Uds::parse(&hex).unwrap();
        let rid = RegistrationId::parse(&id).unwrap();
        let d = match identity::derive(&uds, image(), &rid) {
            Ok(d) => d,
            // A KDF output of 0 or >= n is possible in principle (probability ~2^-32).
            Err(e) => { prop_assert!(!e.is_invalid_input()); return Ok(()); }
        };
        let info = identity::inspect(&d.alias_cert_der).unwrap();
        prop_assert!(info.is_alias);
        prop_assert!(info.signature_valid);
        prop_assert_eq!(&info.subject_cn, &id);
        prop_assert_eq!(info.device_id_public_key.clone(), Some(hex::encode_upper(d.device_id_public)));
        prop_assert_eq!(info.fwid.clone(), Some(hex::encode(image().fwid())));
        prop_assert_eq!(&info.public_key, &hex::encode_upper(d.alias_public));
        prop_assert_eq!(pem::decode(&d.alias_cert_pem(), Some("CERTIFICATE")).unwrap(), d.alias_cert_der.clone());
        let dev = identity::inspect(&d.device_cert_der).unwrap();
        prop_assert!(dev.signature_valid && !dev.is_alias);
        prop_assert_eq!(dev.public_key, hex::encode_upper(d.device_id_public));
        // The alias key in PKCS#8 belongs to the certified alias public key.
        use p256::pkcs8::DecodePrivateKey;
        let sk = p256::SecretKey::from_pkcs8_der(&d.alias_key_pkcs8_der()).unwrap();
        prop_assert_eq!(sk.public_key().to_sec1_bytes().to_vec(), d.alias_public.to_vec());
    }

    #[test]
    fn map_parser_never_panics_on_arbitrary_text(map in ".{0,400}", bin in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = FirmwareImage::from_parts(bin, &map);
        let _ = identity::map::parse(&map);
    }

    #[test]
    fn map_parser_never_panics_on_mutated_real_maps(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..40, "[0-9a-fx_ \r\n.=]{0,12}"), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate_bin in any::<bool>(),
    ) {
        let mut map = real_map().to_string();
        for (at, del, ins) in edits {
            let mut pos = at.index(map.len() + 1);
            while !map.is_char_boundary(pos) { pos -= 1; }
            let mut end = (pos + del).min(map.len());
            while !map.is_char_boundary(end) { end -= 1; }
            map.replace_range(pos..end, &ins);
        }
        let mut bin = real_bin().to_vec();
        if truncate_bin {
            bin.truncate(cut.index(bin.len() + 1));
        }
        if let Ok(img) = FirmwareImage::from_parts(bin, &map) {
            // Whatever was accepted is in bounds and hashable.
            prop_assert!(img.riot_core.end >= img.riot_core.start + 8);
            prop_assert!((img.riot_fw.end - img.flash_origin) as usize <= img.bin().len());
            let _ = img.core_digest();
        }
    }

    #[test]
    fn inspect_never_panics_on_mutated_certificates(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let mut der = pem::decode(&std::fs::read_to_string(small_dir().join("my-devkit-01.pem")).unwrap(), None).unwrap();
        for (i, v) in flips {
            let i = i.index(der.len());
            der[i] ^= v;
        }
        der.truncate(cut.index(der.len() + 1).max(1));
        let _ = identity::inspect(&der);
    }
}

// Secret types must not implement Debug or Display (compile-time check: with `T: Debug`
// the call below would be ambiguous between the two blanket impls and fail to compile).
trait AmbiguousIfImpl<A> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
#[allow(dead_code)]
struct ViaDebug;
impl<T: ?Sized + std::fmt::Debug> AmbiguousIfImpl<ViaDebug> for T {}
#[allow(dead_code)]
struct ViaDisplay;
impl<T: ?Sized + std::fmt::Display> AmbiguousIfImpl<ViaDisplay> for T {}

#[test]
fn secret_types_have_no_debug_or_display() {
    <Uds as AmbiguousIfImpl<_>>::check();
    <identity::DeviceIdentity as AmbiguousIfImpl<_>>::check();
    // The hex form is `Zeroizing` too (compile-time: the wrapper type).
    fn zeroizing<T: zeroize::Zeroize>(_: &zeroize::Zeroizing<T>) {}
    zeroizing(&Uds::generate().to_hex());
}

/// Dropping a UDS zeroes its bytes: the value is dropped in place, and the memory it occupied
/// (still ours: a `MaybeUninit` slot on this stack) is read back.
#[test]
fn a_dropped_uds_leaves_zeros() {
    let mut slot = std::mem::MaybeUninit::new(Uds::generate());
    // SAFETY: `slot` was initialised just above.
    let before = *unsafe { slot.assume_init_ref() }.as_bytes();
    assert!(
        before.iter().any(|b| *b != 0),
        "a generated UDS is not all zeros"
    );
    let size = std::mem::size_of::<Uds>();
    let bytes = |slot: &std::mem::MaybeUninit<Uds>| -> Vec<u8> {
        // SAFETY: reading `size` bytes of the slot's own storage as bytes; the UDS is held
        // inline (32 bytes, no heap), so every byte was written by it or by its zeroizing.
        unsafe { std::slice::from_raw_parts(slot.as_ptr().cast::<u8>(), size) }.to_vec()
    };
    assert!(
        bytes(&slot).windows(32).any(|w| w == before),
        "the UDS is held inline"
    );
    // SAFETY: initialised, dropped once, never used as a `Uds` again.
    unsafe { std::ptr::drop_in_place(slot.as_mut_ptr()) };
    assert!(
        bytes(&slot).iter().all(|b| *b == 0),
        "the UDS's bytes were not zeroed on drop"
    );
}

#[test]
fn generated_uds_values_are_random_and_valid() {
    let a = Uds::generate();
    let b = Uds::generate();
    assert_ne!(a.as_bytes(), b.as_bytes());
    assert!(Uds::parse(&a.to_hex()).is_ok());
    assert!(!a.is_published_sample());
    assert!(Uds::parse(identity::PUBLISHED_SAMPLE_UDS)
        .unwrap()
        .is_published_sample());
    assert!(Uds::parse(&identity::PUBLISHED_SAMPLE_UDS.to_uppercase())
        .unwrap()
        .is_published_sample());
}
