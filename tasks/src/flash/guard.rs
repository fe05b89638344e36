//! What may be written to the DevKit's flash, checked before any probe is opened.
//!
//! The bootloader lives in 0x0800_0000..0x0800_C000 and must never be touched; the application
//! is linked at 0x0800_C000 with 1 MiB - 0xC000 = 999,424 bytes of room.

use super::FlashError;
use crate::error::Input;

/// Start of the STM32F412RG's flash.
pub const FLASH_BASE: u32 = 0x0800_0000;
/// One past the end of its 1 MiB of flash.
pub const FLASH_END: u32 = 0x0810_0000;
/// Where the application (the sketch) is linked.
pub const APP_BASE: u32 = 0x0800_C000;
/// The largest application image.
pub const MAX_APP_SIZE: usize = (FLASH_END - APP_BASE) as usize;

/// Refuse empty images, images that do not fit, and anything that would touch the bootloader.
pub fn check(address: u32, len: usize) -> Result<(), FlashError> {
    if len == 0 {
        return Err(FlashError::invalid(
            Input::Bin,
            "it is empty (0 bytes); build the sketch first",
        ));
    }
    if address < APP_BASE {
        return Err(FlashError::invalid(
            Input::Address,
            format!("{address:#010x} is below {APP_BASE:#010x}: the bootloader occupies {FLASH_BASE:#010x}..{APP_BASE:#010x} and is never overwritten"),
        ));
    }
    if address >= FLASH_END {
        return Err(FlashError::invalid(
            Input::Address,
            format!("{address:#010x} is past the end of flash ({FLASH_END:#010x})"),
        ));
    }
    if len > MAX_APP_SIZE {
        return Err(FlashError::invalid(
            Input::Bin,
            format!("it is {len} bytes; the application area holds at most {MAX_APP_SIZE} bytes"),
        ));
    }
    let end = address as u64 + len as u64;
    if end > FLASH_END as u64 {
        return Err(FlashError::invalid(Input::Bin, format!("{len} bytes at {address:#010x} would end at {end:#010x}, past the end of flash ({FLASH_END:#010x})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::error::DomainError;

    #[test]
    fn limits() {
        assert_eq!(MAX_APP_SIZE, 999_424);
        check(APP_BASE, 1).unwrap();
        check(APP_BASE, MAX_APP_SIZE).unwrap();
        check(FLASH_END - 4, 4).unwrap();
        let cases = [
            (APP_BASE, 0, "empty"),
            (APP_BASE, MAX_APP_SIZE + 1, "999424"),
            (APP_BASE - 1, 1, "bootloader"),
            (FLASH_BASE, 16, "bootloader"),
            (0, 16, "bootloader"),
            (FLASH_END, 1, "past the end"),
            (FLASH_END - 4, 5, "past the end"),
            (u32::MAX, 1, "past the end"),
        ];
        for (addr, len, needle) in cases {
            let e = check(addr, len).unwrap_err();
            assert!(e.is_invalid_input());
            assert!(e.to_string().contains(needle), "{addr:#x}+{len}: {e}");
        }
    }
}
