//! Line cleaning before recognition: terminal escape sequences, control characters and the
//! prefixes other tools put in front of the device's text.
//!
//! Device logs reach us through many hands: `devkit monitor --timestamps` (`[12:34:56.789] `),
//! PlatformIO / Arduino IDE monitors (`12:34:56.789 > `, `12:34:56.789 -> `), syslog and
//! journald (`Nov 28 17:01:02 host tag[123]: `, ISO 8601 stamps), loggers that add a level and a
//! name (`[INFO] devkit: `), and terminals that add ANSI colours. The parser recognises the
//! SDK's text after those, so they are removed here, in one place.

/// The SDK's own level prefixes (`Info: `, `Error: Time:...`): never mistaken for a logger's
/// name or a syslog tag.
const SDK_LEVELS: [&str; 5] = ["info", "error", "warning", "critical", "verbose"];
/// Level words that loggers put in brackets or in upper case before the text.
const LOGGER_LEVELS: [&str; 13] = [
    "trace", "debug", "info", "notice", "warn", "warning", "error", "err", "crit", "critical",
    "fatal", "verbose", "i",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// How many stacked prefixes are removed at most (`2026-... [INFO] name: [12:00:00] text`).
const MAX_PREFIXES: usize = 6;

/// Drop ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL`, two-byte `ESC x`)
/// and control characters; a tab becomes a space.
pub(super) fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']') => {
                    // OSC: up to BEL or ESC (the ST's backslash is then dropped as well).
                    while let Some(n) = chars.next() {
                        if n == '\u{7}' {
                            break;
                        }
                        if n == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Parameter and intermediate bytes, then one final byte; anything else ends the sequence
/// without being eaten (a cut sequence never swallows the text after it).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&n) = chars.peek() {
        if ('\u{20}'..='\u{3f}').contains(&n) {
            chars.next();
        } else {
            if ('\u{40}'..='\u{7e}').contains(&n) {
                chars.next();
            }
            break;
        }
    }
}

/// The device's text without the prefixes of the tools that captured it.
pub(super) fn strip_prefixes(text: &str) -> &str {
    let mut text = text.trim_start();
    for _ in 0..MAX_PREFIXES {
        let Some(rest) = bracketed(text)
            .or_else(|| syslog(text))
            .or_else(|| iso_timestamp(text))
            .or_else(|| clock(text))
            .or_else(|| bare_level(text))
        else {
            break;
        };
        text = rest.trim_start();
    }
    text
}

/// `[12:34:56.789]`, `[2026-11-28 17:01:02]`, `[INFO]` (then an optional `name: `).
fn bracketed(text: &str) -> Option<&str> {
    let inner_and_rest = text.strip_prefix('[')?;
    let end = inner_and_rest.find(']')?;
    let inner = inner_and_rest[..end].trim();
    if end > 40 || inner.is_empty() {
        return None;
    }
    let rest = &inner_and_rest[end + 1..];
    if inner
        .chars()
        .all(|c| c.is_ascii_digit() || ":.-+TZ/, ".contains(c))
        && inner.chars().any(|c| c.is_ascii_digit())
    {
        return Some(rest);
    }
    if LOGGER_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(inner)) {
        return Some(logger_name(rest.trim_start()).unwrap_or(rest));
    }
    None
}

/// `name: ` after a logger's level (`[INFO] devkit: ...`); never the SDK's `Info:`/`Error:`.
fn logger_name(text: &str) -> Option<&str> {
    let colon = text.find(": ")?;
    let name = &text[..colon];
    let ok = (1..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/[]".contains(c))
        && !SDK_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(name));
    ok.then(|| &text[colon + 2..])
}

/// `Nov 28 17:01:02 host tag[123]: ` (RFC 3164: the host always, the tag when it ends in `:`).
fn syslog(text: &str) -> Option<&str> {
    let month = text.get(..3)?;
    if !MONTHS.contains(&month) {
        return None;
    }
    let rest = text[3..].trim_start();
    let day_len = rest.chars().take_while(char::is_ascii_digit).count();
    if !(1..=2).contains(&day_len) {
        return None;
    }
    let rest = clock_prefix(rest[day_len..].strip_prefix(' ')?)?.strip_prefix(' ')?;
    let (host, rest) = rest.split_once(' ')?;
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return None;
    }
    Some(syslog_tag(rest).unwrap_or(rest))
}

/// `tag[123]: ` or `tag: ` (not the SDK's `Info:`).
fn syslog_tag(text: &str) -> Option<&str> {
    let (tag, rest) = text.split_once(' ')?;
    let name = tag.strip_suffix(':')?;
    let base = name.split('[').next().unwrap_or(name);
    let ok = !base.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/[]".contains(c))
        && !SDK_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(base));
    ok.then_some(rest)
}

/// `2026-11-28T17:01:02.123Z ` (any fraction, `Z` or an offset), then `host tag[pid]: ` when
/// the tag carries a pid (journald's short-iso output).
fn iso_timestamp(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let date_ok = b.len() > 11
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !date_ok || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let rest = clock_prefix(&text[11..])?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || "Z+-:".contains(c));
    let rest = rest.strip_prefix(' ')?;
    // `host tag[123]: text`
    if let Some((host, after)) = rest.split_once(' ') {
        if let Some((tag, text)) = after.split_once(": ") {
            let pid_tag = tag.ends_with(']') && tag.contains('[') && !tag.contains(' ');
            if pid_tag
                && !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
            {
                return Some(text);
            }
        }
    }
    Some(rest)
}

/// `17:01:02.123 ` (optionally followed by `> ` or `-> `, as serial monitors write it).
fn clock(text: &str) -> Option<&str> {
    let rest = clock_prefix(text)?.strip_prefix(' ')?;
    let rest = rest
        .strip_prefix("-> ")
        .or_else(|| rest.strip_prefix("> "))
        .unwrap_or(rest);
    Some(rest)
}

/// `HH:MM:SS` with an optional `.fraction`; returns what follows.
fn clock_prefix(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let ok = b.len() >= 8
        && b[..8].iter().enumerate().all(|(i, c)| {
            if i == 2 || i == 5 {
                *c == b':'
            } else {
                c.is_ascii_digit()
            }
        });
    if !ok {
        return None;
    }
    let rest = &text[8..];
    Some(match rest.strip_prefix(['.', ',']) {
        Some(frac) => frac.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    })
}

/// `INFO ` / `ERROR ` in upper case without a colon (the SDK writes `Info:`/`Error:`).
fn bare_level(text: &str) -> Option<&str> {
    let (word, rest) = text.split_once(' ')?;
    let upper = word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase());
    (upper && LOGGER_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(word)))
        .then(|| logger_name(rest.trim_start()).unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_colours_and_controls_go() {
        assert_eq!(clean("\u{1b}[1;31mError:\u{1b}[0m x\ty\u{7}"), "Error: x y");
        assert_eq!(clean("\u{1b}]0;title\u{7}Info: a"), "Info: a");
        assert_eq!(clean("cut \u{1b}["), "cut ");
        assert_eq!(
            clean("\u{1b}[é"),
            "é",
            "a broken sequence does not eat text"
        );
    }

    #[test]
    fn prefixes_of_monitors_loggers_and_syslog_go() {
        let sdk = "Info: >>>Provisioning Status: PROV_DEVICE_REG_STATUS_CONNECTED";
        for prefix in [
            "[12:34:56.789] ",
            "12:34:56.789 > ",
            "12:34:56.789 -> ",
            "Nov 28 17:01:02 raspberrypi devkit[812]: ",
            "Nov  8 17:01:02 raspberrypi devkit: ",
            "2026-11-28T17:01:02.123456+00:00 raspberrypi devkit[812]: ",
            "2026-11-28 17:01:02,123 ",
            "[INFO] DevKitDPS: ",
            "2026-11-28T17:01:02Z [INFO] serial: [17:01:02.001] ",
            "INFO devkit: ",
        ] {
            assert_eq!(strip_prefixes(&format!("{prefix}{sdk}")), sdk, "{prefix:?}");
        }
    }

    #[test]
    fn the_sdk_text_itself_is_kept() {
        for text in [
            "Info: DevKit MAC Address: c0bdd1a2b3c4",
            "Error: Time:Sat Nov 28 17:01:02 2026 File:x.c Func:f Line:1 text",
            "HTTP Status: 401",
            "Registration status: CONNECTED",
            "[not a stamp] x",
            "DPS registration failed. Error code: PROV_DEVICE_RESULT_DEV_AUTH_ERROR",
        ] {
            assert_eq!(strip_prefixes(text), text);
        }
        assert_eq!(
            strip_prefixes("Nov 28 17:01:02 pi HTTP Status: 401"),
            "HTTP Status: 401"
        );
        assert_eq!(strip_prefixes("[INFO] Error: Time:x"), "Error: Time:x");
    }
}
