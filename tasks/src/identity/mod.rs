//! The device identity: DICE/RIoT derivation, bit-exact with the DevKit.
//!
//! API CONTRACT (other modules code against these names; the implementation may be split into
//! submodules freely, but keep these public items and signatures):
//!
//! - [`Uds`]: 32-byte Unique Device Secret; `parse` (64 hex digits, any case), `generate`
//!   (OS CSPRNG), `to_hex` (zeroizing), `is_published_sample`. Zeroized on drop; no Debug/Display.
//! - [`RegistrationId`]: validated registration ID (1..=64 chars of `[a-z0-9-]`);
//!   `parse`, `from_mac_and_version` (`az-<mac>v<x>v<y>v<z>`), `as_str`.
//! - [`normalize_mac`]: 12 hex digits, `:`/`-` separators and any case accepted, lowercased.
//! - [`FirmwareImage`]: `.bin` + `.map` → flash origin and the `.riot_core` / `.riot_fw`
//!   regions (bounds-checked); `load`, `from_parts`, `core_digest` (DSHA), `fwid` (SHA-256).
//! - [`derive()`]: UDS + image + registration ID → [`DeviceIdentity`] (alias + DeviceID
//!   certificates as DER, alias private key, thumbprints).
//! - [`inspect`]: lenient parse of a RIoT alias (or DeviceID) certificate → [`CertInfo`].
//! - [`pem`]: 64-column PEM encode / decode helpers.
//! - [`IdentityError`]: every error; `is_invalid_input()` says whether it is the caller's input.
//!
//! Added beyond the contract: [`FirmwareImage::from_parts_named`] (names the inputs in
//! errors), [`validate_firmware_version`], [`cdi`], [`inspect_bytes`] (PEM or DER), [`DeviceIdentity::fwid_hex`],
//! [`compare`]/[`differences`] (which input differs between two certificates: the 401002
//! diagnosis), [`batch`] (factory manifests), [`map::parse`], [`dsha::dsha`], and the message
//! constants [`FIXED_NONCE_WARNING`] and [`SAMPLE_UDS_REFUSAL`], and [`files`] (writing an
//! identity's files with backups, recording it in the project state).
//!
//! Layout: `map` (linker map), `image` (bounds-checked regions, digests computed once),
//! `dsha` (the device's non-standard SHA-256), `keys` (KDF, fixed-base multiplication, the
//! device's fixed-nonce ECDSA), `cert` (rcgen with an external signer), `der` (tiny DER writer
//! for keys/extension values and the lenient reader), `inspect`, `pem`, `regid`, `uds`, `batch`.
//!
//! Security: the device signs with a fixed nonce, so anyone holding an alias certificate can
//! compute the DeviceID private key; the DeviceID certificate must never be used as a CA. The
//! fixed nonce is used here only to reproduce the device's certificates.

use crate::error::{DomainError, ErrorKind, Input, InvalidInput};
use std::path::Path;
use zeroize::Zeroizing;

pub mod batch;
mod cert;
mod der;
pub mod dsha;
pub mod files;
pub mod generate;
mod image;
mod inspect;
pub mod inspection;
mod keys;
pub mod map;
mod regid;
pub mod riot_root;
pub mod status;
pub mod uds;

pub use generate::{BatchReport, BatchRequest, GenerateReport, GenerateRequest, UdsInput};
pub use inspect::{compare, differences, Difference};
pub use status::{IdentityStatusReport, IdentityStatusRequest};
pub use uds::{read_uds, ReadUds, UdsSource};

/// Why the published sample UDS is refused ([`IdentityError::SampleUds`]).
/// One wording for the CLI and the daemon (each adapter says how to allow it for tests).
pub const SAMPLE_UDS_REFUSAL: &str = "is the published sample UDS from the original tutorial: anyone can compute this device's keys; use a freshly generated UDS (allow the sample only for throw-away tests)";

/// One sentence on the fixed-nonce weakness, for every output that hands out a certificate.
pub const FIXED_NONCE_WARNING: &str = "The DevKit signs with a fixed ECDSA nonce, so anyone holding one of its alias certificates can compute the DeviceID private key: never use the DeviceID certificate as a CA.";

/// Errors from identity computations. Messages name the input and what is allowed; they never
/// contain secret material.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The caller's input is invalid (exit code 2 at the CLI).
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// Reading an input file failed; `input` is the input it came from (the CLI names its
    /// flag, the daemon `data.field`).
    #[error("{}: {reason}", .path.display())]
    Io {
        path: std::path::PathBuf,
        /// What failed (`cannot be read: <the OS error>`).
        reason: String,
        io_kind: std::io::ErrorKind,
        input: Option<Input>,
    },
    /// The derivation produced a key the device could not use (the original loops forever).
    #[error("key derivation failed: {0}")]
    Derivation(String),
    /// Writing an identity file (a generated UDS) failed.
    #[error(transparent)]
    Write(crate::fsutil::FsError),
    /// The published sample UDS without permission to use it: invalid input, typed so that
    /// each adapter can say how to allow it for a throw-away test (a flag, a setting).
    #[error(transparent)]
    SampleUds(InvalidInput),
    /// The build directory holds no usable image and map.
    #[error(transparent)]
    BuildOutput(#[from] crate::build::FindOutputError),
    /// The project state could not be read.
    #[error(transparent)]
    Project(#[from] crate::project::ProjectError),
    /// The run was cancelled before anything was written.
    #[error("cancelled")]
    Cancelled,
}

impl IdentityError {
    pub(crate) fn invalid(input: Input, reason: impl Into<String>) -> Self {
        IdentityError::Invalid(InvalidInput::new(input, reason))
    }
    /// Invalid `input`, the message naming it `name` (a file, a value that is not secret).
    pub(crate) fn named(input: Input, name: impl Into<String>, reason: impl Into<String>) -> Self {
        IdentityError::Invalid(InvalidInput::new(input, reason).named(name))
    }
}

impl DomainError for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::Invalid(_) | IdentityError::SampleUds(_) => ErrorKind::InvalidInput,
            IdentityError::BuildOutput(e) => e.kind(),
            IdentityError::Project(e) => e.kind(),
            IdentityError::Cancelled => ErrorKind::Cancelled,
            IdentityError::Io { io_kind, .. } if *io_kind == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            IdentityError::Io { .. } => ErrorKind::Failed,
            IdentityError::Derivation(_) => ErrorKind::Failed,
            IdentityError::Write(e) => e.kind(),
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            IdentityError::Invalid(i) | IdentityError::SampleUds(i) => Some(i),
            IdentityError::BuildOutput(e) => e.invalid_input(),
            _ => None,
        }
    }
    fn input(&self) -> Option<Input> {
        match self {
            IdentityError::Invalid(i) | IdentityError::SampleUds(i) => Some(i.input),
            IdentityError::Io { input, .. } => *input,
            IdentityError::BuildOutput(e) => e.input(),
            _ => None,
        }
    }
    fn next_actions(&self) -> Vec<crate::error::NextStep> {
        match self {
            IdentityError::BuildOutput(e) => e.next_actions(),
            _ => Vec::new(),
        }
    }
}

impl IdentityError {
    /// The same error with its invalid input named `name` in messages (how an adapter names
    /// the input it received: a flag with its value, a manifest row).
    pub fn named_as(self, name: impl Into<String>) -> Self {
        match self {
            IdentityError::Invalid(i) => IdentityError::Invalid(i.named(name)),
            IdentityError::SampleUds(i) => IdentityError::SampleUds(i.named(name)),
            other => other,
        }
    }
    /// The same error about `input` instead (an image read from a build directory is that
    /// directory's problem).
    pub(crate) fn about_input(self, input: Input) -> Self {
        match self {
            IdentityError::Invalid(mut i) => {
                i.input = input;
                IdentityError::Invalid(i)
            }
            IdentityError::Io {
                path,
                reason,
                io_kind,
                ..
            } => IdentityError::Io {
                path,
                reason,
                io_kind,
                input: Some(input),
            },
            other => other,
        }
    }
}

/// The published sample UDS from the original tutorial: refused unless explicitly allowed.
pub const PUBLISHED_SAMPLE_UDS: &str =
    "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae";

/// A Unique Device Secret. Zeroized on drop; deliberately has no Debug or Display.
pub struct Uds(Zeroizing<[u8; 32]>);

impl Uds {
    /// Parse 64 hex digits (any case, surrounding whitespace trimmed).
    pub fn parse(text: &str) -> Result<Uds, IdentityError> {
        uds::parse(text)
    }
    /// A fresh UDS from the operating system's cryptographic random source.
    pub fn generate() -> Uds {
        uds::generate()
    }
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Lower-case hex, zeroized on drop (what is sent to the device with `set_dps_uds`).
    #[allow(clippy::needless_borrows_for_generic_args)] // by reference: no unzeroized copy
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&*self.0))
    }
    /// True for the UDS published in the original tutorial.
    pub fn is_published_sample(&self) -> bool {
        self.to_hex().as_str() == PUBLISHED_SAMPLE_UDS
    }
}

/// A registration ID the device and DPS both accept: 1..=64 chars of `[a-z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistrationId(String);

impl RegistrationId {
    /// Validate `text`; the error names the rule that failed.
    pub fn parse(text: &str) -> Result<RegistrationId, IdentityError> {
        regid::parse(text)
    }
    /// The valid ID closest to an invalid `text` (lower case, other characters made `-`, at
    /// most 64 characters): what a quick fix offers. `None` when `text` is valid or nothing
    /// usable is left.
    pub fn suggest(text: &str) -> Option<RegistrationId> {
        regid::suggest(text)
    }
    /// `az-<mac>v<major>v<minor>v<patch>` from a MAC (any accepted form) and `N.N.N`.
    pub fn from_mac_and_version(
        mac: &str,
        firmware_version: &str,
    ) -> Result<RegistrationId, IdentityError> {
        regid::from_mac_and_version(mac, firmware_version)
    }
    /// The registration ID from the inputs the adapters take: the ID itself (it wins), else
    /// the MAC address with the firmware version; one of the pair alone is refused, naming the
    /// other. The one rule for `generate-cert` in the CLI and the daemon.
    pub fn from_inputs(
        id: Option<&str>,
        mac: Option<&str>,
        firmware_version: Option<&str>,
    ) -> Result<RegistrationId, IdentityError> {
        match (id, mac, firmware_version) {
            (Some(id), _, _) => RegistrationId::parse(id),
            (None, Some(mac), Some(v)) => RegistrationId::from_mac_and_version(mac, v),
            (None, Some(_), None) => Err(IdentityError::invalid(
                Input::FirmwareVersion,
                "is required with the MAC address (X.Y.Z, the DevKit SDK version)",
            )),
            (None, None, Some(_)) => Err(IdentityError::invalid(
                Input::Mac,
                "is required with the firmware version (12 hex digits)",
            )),
            (None, None, None) => Err(IdentityError::invalid(
                Input::RegistrationId,
                "is required: give the registration ID, or the MAC address and the firmware version",
            )),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RegistrationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Normalise a MAC: 12 hex digits, optional `:`/`-` separators, any case → lower-case, no separators.
pub fn normalize_mac(mac: &str) -> Result<String, IdentityError> {
    regid::normalize_mac(mac)
}

/// Validate a firmware version `N.N.N` (digits only; `2.0.10` is valid).
pub fn validate_firmware_version(version: &str) -> Result<(), IdentityError> {
    regid::firmware_version(version).map(|_| ())
}

/// A firmware image with its RIoT regions located from the map file. Both digests are
/// computed once, when the image is built (cheap to clone: the bytes are shared).
#[derive(Clone)]
pub struct FirmwareImage {
    pub flash_origin: u32,
    pub riot_core: std::ops::Range<u32>,
    pub riot_fw: std::ops::Range<u32>,
    bin: std::sync::Arc<[u8]>,
    core_digest: [u8; 32],
    fwid: [u8; 32],
}

impl std::fmt::Debug for FirmwareImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirmwareImage")
            .field("flash_origin", &format_args!("{:#x}", self.flash_origin))
            .field(
                "riot_core",
                &format_args!("{:#x}..{:#x}", self.riot_core.start, self.riot_core.end),
            )
            .field(
                "riot_fw",
                &format_args!("{:#x}..{:#x}", self.riot_fw.start, self.riot_fw.end),
            )
            .field("bin_len", &self.bin.len())
            .field("fwid", &hex::encode(self.fwid))
            .finish()
    }
}

impl FirmwareImage {
    /// Read `bin` and `map` from disk (bounded; the one reader of both adapters).
    pub fn load(bin: &Path, map: &Path) -> Result<FirmwareImage, IdentityError> {
        image::load(
            bin,
            map,
            &format!("firmware image {:?}", bin.display().to_string()),
            &format!("map file {:?}", map.display().to_string()),
        )
    }
    /// Like [`FirmwareImage::load`], naming the files in messages as the caller does
    /// (e.g. `--bin "build/x.ino.bin"`).
    pub fn load_named(
        bin: &Path,
        map: &Path,
        bin_name: &str,
        map_name: &str,
    ) -> Result<FirmwareImage, IdentityError> {
        image::load(bin, map, bin_name, map_name)
    }
    /// From bytes already in memory (`map` is the map file's text).
    pub fn from_parts(bin: Vec<u8>, map: &str) -> Result<FirmwareImage, IdentityError> {
        image::from_parts(bin, map, "firmware image", "map file")
    }
    /// Like [`FirmwareImage::from_parts`], naming the inputs in error messages
    /// (e.g. `--bin "build/x.ino.bin"`).
    pub fn from_parts_named(
        bin: Vec<u8>,
        map: &str,
        bin_name: &str,
        map_name: &str,
    ) -> Result<FirmwareImage, IdentityError> {
        image::from_parts(bin, map, bin_name, map_name)
    }
    /// The whole image.
    pub fn bin(&self) -> &[u8] {
        &self.bin
    }
    /// DSHA of the `.riot_core` bytes (the device's non-standard hash).
    pub fn core_digest(&self) -> [u8; 32] {
        self.core_digest
    }
    /// FWID: standard SHA-256 of the `.riot_fw` bytes.
    pub fn fwid(&self) -> [u8; 32] {
        self.fwid
    }
}

/// Everything the device computes at boot, as the host reproduces it.
pub struct DeviceIdentity {
    pub registration_id: RegistrationId,
    pub fwid: [u8; 32],
    /// DSHA of the `.riot_core` bytes: with the UDS it fixes the DeviceID key (public data).
    pub core_digest: [u8; 32],
    /// Alias certificate, DER (what DPS sees).
    pub alias_cert_der: Vec<u8>,
    /// DeviceID certificate (self-signed), DER. Never use it as a CA: see the fixed-nonce note.
    pub device_cert_der: Vec<u8>,
    /// DeviceID public key, uncompressed SEC1 point (65 bytes).
    pub device_id_public: [u8; 65],
    /// Alias public key, uncompressed SEC1 point (65 bytes).
    pub alias_public: [u8; 65],
    alias_private: Zeroizing<[u8; 32]>,
}

impl DeviceIdentity {
    /// Alias certificate as 64-column PEM.
    pub fn alias_cert_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.alias_cert_der)
    }
    /// DeviceID certificate as 64-column PEM.
    pub fn device_cert_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.device_cert_der)
    }
    /// DeviceID public key as a `PUBLIC KEY` PEM (SubjectPublicKeyInfo).
    pub fn device_id_public_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &der::spki(&self.device_id_public))
    }
    /// Alias private key as PEM in the vectors' format (zeroized on drop).
    pub fn alias_key_pem(&self) -> Zeroizing<String> {
        let der = der::sec1_private_key(&self.alias_private, &self.alias_public, true);
        Zeroizing::new(pem::encode("EC PRIVATE KEY", &der))
    }
    /// Alias private key as PKCS#8 DER (zeroized on drop), for TLS client authentication.
    pub fn alias_key_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        der::pkcs8_private_key(&self.alias_private, &self.alias_public)
    }
    /// FWID as lower-case hex (as `case.json` and the JSON output show it).
    pub fn fwid_hex(&self) -> String {
        hex::encode(self.fwid)
    }
    /// The raw alias private scalar, big-endian.
    pub fn alias_private_scalar(&self) -> &[u8; 32] {
        &self.alias_private
    }
    /// Upper-case hex SHA-1 of the alias certificate DER, as the Azure CLI shows it.
    pub fn sha1_thumbprint(&self) -> String {
        sha1_thumbprint(&self.alias_cert_der)
    }
    /// Upper-case hex SHA-256 of the alias certificate DER.
    pub fn sha256_thumbprint(&self) -> String {
        sha256_thumbprint(&self.alias_cert_der)
    }
}

/// Compute the device identity exactly as the DevKit does at boot.
// Secrets are hashed through references on purpose: passing the arrays by value would leave
// unzeroized copies behind.
#[allow(clippy::needless_borrows_for_generic_args)]
pub fn derive(
    uds: &Uds,
    image: &FirmwareImage,
    registration_id: &RegistrationId,
) -> Result<DeviceIdentity, IdentityError> {
    use sha2::Digest;
    let c = Zeroizing::new(<[u8; 32]>::from(sha2::Sha256::digest(&*cdi(uds, image))));
    let device_id = keys::kdf(&c, "Identity")?;
    let fwid = image.fwid();
    let mut c2_input = Zeroizing::new([0u8; 64]);
    c2_input[..32].copy_from_slice(&*c);
    c2_input[32..].copy_from_slice(&fwid);
    let c2 = Zeroizing::new(<[u8; 32]>::from(sha2::Sha256::digest(&*c2_input)));
    let alias = keys::kdf(&c2, "Alias")?;
    let device_id_public = device_id.public_point();
    let alias_public = alias.public_point();
    let (alias_cert_der, device_cert_der) = cert::build(
        registration_id.as_str(),
        &device_id_public,
        &device_id,
        &alias_public,
        &fwid,
    )?;
    Ok(DeviceIdentity {
        registration_id: registration_id.clone(),
        fwid,
        core_digest: image.core_digest(),
        alias_cert_der,
        device_cert_der,
        device_id_public,
        alias_public,
        alias_private: alias.to_be_bytes(),
    })
}

/// The Compound Device Identifier, `DSHA(DSHA(uds) || core_digest)` (facts §3 steps 1-3).
/// Secret: exposed for cross-checking against device-verified vectors only.
pub fn cdi(uds: &Uds, image: &FirmwareImage) -> Zeroizing<[u8; 32]> {
    let mut input = Zeroizing::new([0u8; 64]);
    input[..32].copy_from_slice(&dsha::dsha(uds.as_bytes()));
    input[32..].copy_from_slice(&image.core_digest());
    Zeroizing::new(dsha::dsha(&*input))
}

/// What a lenient read of a RIoT certificate finds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertInfo {
    pub subject_cn: String,
    pub issuer_cn: String,
    /// Uncompressed point of the certificate's own key, upper-case hex.
    pub public_key: String,
    /// DeviceID public key embedded in the RIoT extension (alias certificates only), upper-case hex.
    pub device_id_public_key: Option<String>,
    /// FWID from the RIoT extension (alias certificates only), lower-case hex (as `generate-cert --json`).
    pub fwid: Option<String>,
    /// Whether the signature verifies with the embedded DeviceID key (alias) or own key (DeviceID cert).
    pub signature_valid: bool,
    pub is_alias: bool,
    pub sha1_thumbprint: String,
    pub sha256_thumbprint: String,
}

/// Leniently parse a RIoT alias or DeviceID certificate (DER).
pub fn inspect(der: &[u8]) -> Result<CertInfo, IdentityError> {
    inspect::inspect(der)
}

/// Like [`inspect`], for a file's contents: PEM (a `CERTIFICATE` block preferred, any block
/// otherwise; one-line base64 and CRLF accepted) or raw DER.
pub fn inspect_bytes(bytes: &[u8]) -> Result<CertInfo, IdentityError> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let der =
                pem::decode(text, Some("CERTIFICATE")).or_else(|_| pem::decode(text, None))?;
            inspect::inspect(&der)
        }
        _ => inspect::inspect(bytes),
    }
}

/// Upper-case hex SHA-1 of `der`.
pub fn sha1_thumbprint(der: &[u8]) -> String {
    use sha1::Digest;
    hex::encode_upper(sha1::Sha1::digest(der))
}

/// Upper-case hex SHA-256 of `der`.
pub fn sha256_thumbprint(der: &[u8]) -> String {
    use sha2::Digest;
    hex::encode_upper(sha2::Sha256::digest(der))
}

/// PEM helpers (64-column output, lenient input: CRLF, one-line base64).
pub mod pem;

/// A device-verified vector's directory (`tests/fixtures/dice-vectors/<case>`), for unit tests.
#[cfg(test)]
pub(crate) fn test_vector(case: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dice-vectors")
        .join(case)
}
