//! Slicing the RIoT regions out of the firmware image, with bounds checks, and hashing them
//! once per image (a batch reuses the digests for every device).

use super::{dsha::dsha, map, FirmwareImage, IdentityError};
use crate::error::Input;
use std::ops::Range;
use std::path::Path;

/// Build an image; `bin_name` / `map_name` name the inputs in error messages.
pub(crate) fn from_parts(
    bin: Vec<u8>,
    map_text: &str,
    bin_name: &str,
    map_name: &str,
) -> Result<FirmwareImage, IdentityError> {
    let info = map::parse(map_text)
        .map_err(|reason| IdentityError::named(Input::Map, map_name, reason))?;
    if bin.is_empty() {
        return Err(IdentityError::named(
            Input::Bin,
            bin_name,
            "is empty; expected the sketch's .bin built with the map",
        ));
    }
    let core = region(
        &bin,
        info.flash_origin,
        &info.riot_core,
        ".riot_core",
        bin_name,
    )?;
    if core.len() < 8 {
        return Err(IdentityError::named(
            Input::Map,
            map_name,
            format!(
                ".riot_core region is {} bytes; at least 8 are expected (the RIoT core code)",
                core.len()
            ),
        ));
    }
    let fw = region(&bin, info.flash_origin, &info.riot_fw, ".riot_fw", bin_name)?;
    let core_digest = dsha(&bin[core.clone()]);
    let fwid = {
        use sha2::Digest;
        sha2::Sha256::digest(&bin[fw]).into()
    };
    Ok(FirmwareImage {
        flash_origin: info.flash_origin,
        riot_core: info.riot_core,
        riot_fw: info.riot_fw,
        bin: bin.into(),
        core_digest,
        fwid,
    })
}

/// The byte range of `addrs` in `bin`, or an error naming the image.
fn region(
    bin: &[u8],
    origin: u32,
    addrs: &Range<u32>,
    name: &str,
    bin_name: &str,
) -> Result<Range<usize>, IdentityError> {
    let flash_end = origin as u64 + bin.len() as u64;
    if addrs.start < origin || addrs.end as u64 > flash_end {
        let why = if addrs.start < origin {
            "the map's FLASH origin is above the region, so this image and map do not belong together"
        } else {
            "the image is truncated or was not built with this map"
        };
        return Err(IdentityError::named(
            Input::Bin,
            bin_name,
            format!(
                "{name} ({:#x}..{:#x}) lies outside the image ({origin:#x}..{flash_end:#x}, {} bytes): {why}",
                addrs.start,
                addrs.end,
                bin.len()
            ),
        ));
    }
    Ok((addrs.start - origin) as usize..(addrs.end - origin) as usize)
}

pub(crate) fn load(
    bin: &Path,
    map: &Path,
    bin_name: &str,
    map_name: &str,
) -> Result<FirmwareImage, IdentityError> {
    use crate::fsutil::{limits, read_bounded, InputError};
    let err = |path: &Path, input: crate::error::Input, e: InputError| match e.io_kind {
        Some(io_kind) => IdentityError::Io {
            path: path.to_path_buf(),
            reason: e.reason,
            io_kind,
            input: Some(input),
        },
        None => IdentityError::Invalid(e.into_invalid(input)),
    };
    let bin_bytes = read_bounded(bin, bin_name, limits::FIRMWARE_BIN)
        .map_err(|e| err(bin, crate::error::Input::Bin, e))?;
    let map_bytes = read_bounded(map, map_name, limits::MAP_FILE)
        .map_err(|e| err(map, crate::error::Input::Map, e))?;
    // Maps are ASCII in practice; tolerate stray non-UTF-8 bytes (e.g. in paths).
    let map_text = String::from_utf8_lossy(&map_bytes);
    from_parts(bin_bytes, &map_text, bin_name, map_name)
}

#[cfg(test)]
mod tests {
    use crate::error::{DomainError, ErrorKind, Input};
    use crate::identity::FirmwareImage;
    use std::path::Path;

    /// A missing image is the caller's input (the CLI names its flag, the daemon its field),
    /// said once, under the name the caller gave.
    #[test]
    fn a_missing_image_names_its_input_once() {
        let e = FirmwareImage::load_named(
            Path::new("/nonexistent/x.bin"),
            Path::new("/nonexistent/x.map"),
            "--bin \"x.bin\"",
            "--map \"x.map\"",
        )
        .unwrap_err();
        assert_eq!(
            (e.kind(), e.input()),
            (ErrorKind::NotFound, Some(Input::Bin))
        );
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert_eq!(text.matches("cannot be read").count(), 1, "{text}");
        assert!(text.starts_with("/nonexistent/x.bin: "), "{text}");
    }
}
