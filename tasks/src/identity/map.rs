//! Reading the linker map (facts §3): the FLASH origin and the four RIoT section symbols.
//!
//! As the original tool: the origin is the number after `0x` on the `FLASH            0x…`
//! memory-configuration line; each symbol is read from the LAST line containing it and `0x`,
//! taking the first `0x` number on that line. We also tolerate CRLF line ends, 64-bit address
//! columns (`0x0000000008000000`) and any spacing between `FLASH` and its origin.

use std::ops::Range;

/// What the map says about the RIoT regions (addresses, not yet checked against an image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    pub flash_origin: u32,
    pub riot_core: Range<u32>,
    pub riot_fw: Range<u32>,
}

const FLASH_EXACT: &str = "FLASH            0x";

const SYMBOLS: [&str; 4] = [
    "__start_riot_core",
    "__stop_riot_core",
    "__start_riot_fw",
    "__stop_riot_fw",
];

/// Parse the map text. Errors are reasons (the caller names the input).
pub fn parse(map: &str) -> Result<MapInfo, String> {
    let mut origin: Option<&str> = None;
    let mut last: [Option<&str>; 4] = [None; 4];
    for line in map.lines() {
        if origin.is_none() {
            // As the original: the number right after `FLASH` + 12 spaces + `0x`; also any
            // spacing when `FLASH` is the line's first word.
            if let Some(pos) = line.find(FLASH_EXACT) {
                origin = Some(&line[pos + FLASH_EXACT.len() - 2..]);
            } else {
                let mut words = line.split_whitespace();
                if words.next() == Some("FLASH")
                    && words.next().is_some_and(|w| w.starts_with("0x"))
                {
                    origin = Some(line);
                }
            }
        }
        if line.contains("_riot_") && line.contains("0x") {
            for (slot, sym) in last.iter_mut().zip(SYMBOLS) {
                if contains_symbol(line, sym) {
                    *slot = Some(line);
                }
            }
        }
    }
    let origin = origin.ok_or(
        "no FLASH memory region line (`FLASH            0x<origin> ...`) found; is this the linker map of a DevKit build?",
    )?;
    let flash_origin = first_hex(origin).map_err(|e| format!("FLASH line: {e}"))?;
    let mut addrs = [0u32; 4];
    for ((addr, line), sym) in addrs.iter_mut().zip(last).zip(SYMBOLS) {
        let line = line.ok_or_else(|| {
            format!("symbol {sym} not found (a line with it and a 0x address); the sketch must place the RIoT code in the .riot_core/.riot_fw sections")
        })?;
        *addr = first_hex(line).map_err(|e| format!("{sym}: {e}"))?;
    }
    let [core_start, core_stop, fw_start, fw_stop] = addrs;
    if core_stop < core_start {
        return Err(format!(
            "__stop_riot_core ({core_stop:#x}) is before __start_riot_core ({core_start:#x})"
        ));
    }
    if fw_stop < fw_start {
        return Err(format!(
            "__stop_riot_fw ({fw_stop:#x}) is before __start_riot_fw ({fw_start:#x})"
        ));
    }
    Ok(MapInfo {
        flash_origin,
        riot_core: core_start..core_stop,
        riot_fw: fw_start..fw_stop,
    })
}

/// `sym` occurs in `line` as a whole identifier.
fn contains_symbol(line: &str, sym: &str) -> bool {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    line.match_indices(sym).any(|(i, _)| {
        let before = i
            .checked_sub(1)
            .and_then(|j| line.as_bytes().get(j))
            .copied();
        let after = line.as_bytes().get(i + sym.len()).copied();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// The first `0x` number on `line`, as a 32-bit address (64-bit columns allowed if they fit).
fn first_hex(line: &str) -> Result<u32, String> {
    let start = line.find("0x").ok_or("no 0x address")? + 2;
    let digits: &str = &line[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(digits.len());
    let digits = &digits[..end];
    if digits.is_empty() {
        return Err("0x is not followed by hexadecimal digits".into());
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 8 {
        return Err(format!("address 0x{digits} does not fit in 32 bits"));
    }
    u32::from_str_radix(
        if significant.is_empty() {
            "0"
        } else {
            significant
        },
        16,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "FLASH            0x0800c000         0x000f4000         xr\n\
        0x08000100 __start_riot_core = .\n\
        0x08000200                        __start_riot_core = .\n\
        0x08000300 __stop_riot_core = .\n\
        0x08000300 __start_riot_fw = .\n\
        0x08000400 __stop_riot_fw = .\n";

    #[test]
    fn last_match_wins_and_crlf_and_64_bit_columns() {
        let m = parse(MAP).unwrap();
        assert_eq!(
            m,
            MapInfo {
                flash_origin: 0x0800c000,
                riot_core: 0x08000200..0x08000300,
                riot_fw: 0x08000300..0x08000400
            }
        );
        assert_eq!(parse(&MAP.replace('\n', "\r\n")).unwrap(), m);
        let wide = MAP.replace("0x080", "0x00000000080");
        assert_eq!(parse(&wide).unwrap(), m);
        let tabs = MAP.replace("FLASH            0x", "FLASH\t0x");
        assert_eq!(parse(&tabs).unwrap(), m);
        let prefixed = MAP.replace("FLASH            0x", "  region FLASH            0x");
        assert_eq!(parse(&prefixed).unwrap(), m);
    }

    #[test]
    fn rejections() {
        assert!(parse(&MAP.replace("FLASH", "FLESH"))
            .unwrap_err()
            .contains("FLASH"));
        assert!(parse(&MAP.replace("__stop_riot_fw", "__stop_other"))
            .unwrap_err()
            .contains("__stop_riot_fw"));
        let backwards = MAP.replace("0x08000400 __stop_riot_fw", "0x08000000 __stop_riot_fw");
        assert!(parse(&backwards).unwrap_err().contains("before"));
        assert!(parse(&MAP.replace("0x0800c000", "0x1234567890"))
            .unwrap_err()
            .contains("32 bits"));
        // A longer identifier containing the symbol is not the symbol.
        assert!(parse(&MAP.replace("__stop_riot_core = .", "__stop_riot_core_x = .")).is_err());
    }
}
