//! The sample firmware image + map (`tasks/assets/sample-firmware/`), built into the binary so
//! that `devkit provision --simulate` works from any directory of a fresh clone.
//!
//! Built once with Debian's arm-none-eabi-gcc by `tasks/assets/sample-firmware/build.sh`
//! against the DevKit layout (FLASH ORIGIN 0x0800C000), with `.riot_core` and `.riot_fw`.

/// The raw image, starting at 0x0800C000.
pub const SAMPLE_BIN: &[u8] = include_bytes!("../../assets/sample-firmware/sample.bin");
/// Its GNU ld map.
pub const SAMPLE_MAP: &str = include_str!("../../assets/sample-firmware/sample.map");

/// The sample as a [`crate::identity::FirmwareImage`].
pub fn image() -> Result<crate::identity::FirmwareImage, crate::identity::IdentityError> {
    crate::identity::FirmwareImage::from_parts_named(
        SAMPLE_BIN.to_vec(),
        SAMPLE_MAP,
        "sample.bin",
        "sample.map",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sample_has_the_devkit_layout_and_both_riot_regions() {
        let image = super::image().unwrap();
        assert_eq!(image.flash_origin, 0x0800_C000);
        assert!(!image.riot_core.is_empty() && !image.riot_fw.is_empty());
        assert_eq!(image.riot_core.end, image.riot_fw.start);
        assert!(image.riot_fw.end as usize - 0x0800_C000 <= super::SAMPLE_BIN.len());
        // The FWID is a fixed property of the committed image (SHA-256 of 0x0800C090..0x0800C0AC).
        assert_eq!(
            hex::encode(image.fwid()),
            "6996cf3682e5bec2960c49c3342c06da353a1980b887612f8e0ee2c4cc4f7172"
        );
    }
}
