//! What of a device line may go into an event: bounded in length, and never anything that
//! looks like a secret.
//!
//! Events travel further than the log (daemon notifications, the extension's UI, progress
//! messages, bug reports), so every piece of free text copied from the input passes through
//! [`field`]: key-like values (SAS keys and signatures, `Authorization:` values, passwords,
//! PEM blocks, long base64/hex runs such as a UDS or a key with or without its `=` padding,
//! hex dumps of 16 bytes or more in any case and with any of the usual separators, such as
//! `AB CD EF ...`, `ab:cd:ef:...` or `0xab, 0xcd, ...`) become `<redacted>`, and the result is
//! cut to [`MAX_FIELD`] characters.
//!
//! DPS tracking IDs are kept: they are not secrets, and Azure support asks for them. Besides
//! the UUID form (`f40da7ba-8c91-...`), DPS and IoT Hub write them as 32 hex digits with a
//! gateway and time suffix (`EEC3FA1F7928480391CDF3FE09366AE9-G2:-TimeStamp:...`,
//! azure-iot-sdk-c#2362), a run a key-run rule alone would redact: exactly 32 hex digits
//! right after a `trackingId` / `Tracking ID:` label stay.

/// The longest piece of input an event field holds (characters).
pub const MAX_FIELD: usize = 256;
/// A run of base64/hex characters at least this long is treated as key material (a UDS is 64
/// hex digits, a SAS key 44 base64 characters).
const KEY_RUN: usize = 32;
const REDACTED: &str = "<redacted>";
/// Markers after which the next token is a secret (matched ignoring case).
const SECRET_MARKERS: [&str; 9] = [
    "sharedaccesskey=",
    "sharedaccesskey:",
    "sharedaccesssignature ",
    "sig=",
    "authorization:",
    "password:",
    "password=",
    "passphrase:",
    "key=",
];

/// A piece of input as an event may hold it: secrets redacted, then bounded.
pub fn field(text: &str) -> String {
    clip(&redact(text.trim()), MAX_FIELD)
}

/// At most `max` characters (an ellipsis marks the cut).
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Replace everything that looks like a secret with `<redacted>`.
pub fn redact(text: &str) -> String {
    let text = match text.find("-----BEGIN") {
        Some(i) => format!("{}{REDACTED}", &text[..i]),
        None => text.to_string(),
    };
    redact_key_runs(&redact_hex_dumps(&redact_after_markers(&text)))
}

/// The fewest bytes a separated hex dump shows to be key material: 16, half a UDS (a dump of
/// 16 bytes a line shows a UDS in two lines).
const DUMP_BYTES: usize = 16;
/// What may stand between the groups of a dump (at most [`MAX_DUMP_GAP`] of them: `", "`,
/// `"  "` in the middle of a `hexdump -C` line).
const DUMP_SEPARATORS: &[u8] = b" :-,";
const MAX_DUMP_GAP: usize = 3;

/// A byte that continues a word: a dump's group starts and ends at a word boundary.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || !b.is_ascii()
}

/// The hex group (an optional `0x`, then hex digits of either case, then a word boundary) at
/// `i`: its number of digits and its end.
fn hex_group(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if b.len() > j + 1 && b[j] == b'0' && (b[j + 1] | 0x20) == b'x' {
        j += 2;
    }
    let digits = j;
    while j < b.len() && b[j].is_ascii_hexdigit() {
        j += 1;
    }
    let n = j - digits;
    (n > 0 && !(j < b.len() && is_word_byte(b[j]))).then_some((n, j))
}

/// The end of the hex dump starting at `start`, when one does: groups of one width (2, 4 or 8
/// digits: bytes, or words as `xxd` and `od` print them) with separators between them, at least
/// [`DUMP_BYTES`] bytes in all. A UUID (groups of 8, 4, 4, 4 and 12 digits) is no dump.
fn hex_dump_at(b: &[u8], start: usize) -> Option<usize> {
    let (width, mut end) = hex_group(b, start)?;
    if ![2, 4, 8].contains(&width) {
        return None;
    }
    let mut digits = width;
    loop {
        let mut j = end;
        while j < b.len() && j - end < MAX_DUMP_GAP && DUMP_SEPARATORS.contains(&b[j]) {
            j += 1;
        }
        if j == end {
            break;
        }
        match hex_group(b, j) {
            Some((w, e)) if w == width => {
                digits += w;
                end = e;
            }
            _ => break,
        }
    }
    (digits >= 2 * DUMP_BYTES).then_some(end)
}

/// Replace separated hex dumps (see [`hex_dump_at`]) with `<redacted>`.
fn redact_hex_dumps(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if i == 0 || !is_word_byte(b[i - 1]) {
            if let Some(end) = hex_dump_at(b, i) {
                // Dumps start and end at ASCII bytes: char boundaries.
                out.push_str(&text[copied..i]);
                out.push_str(REDACTED);
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn redact_after_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let lower = rest.to_ascii_lowercase();
        let hit = SECRET_MARKERS
            .iter()
            .filter_map(|m| lower.find(m).map(|i| (i, m.len())))
            .min();
        let Some((i, len)) = hit else {
            out.push_str(rest);
            return out;
        };
        // `lower` is the ASCII lowering of `rest`: byte offsets agree.
        out.push_str(&rest[..i + len]);
        let value = &rest[i + len..];
        let spaces = value.len() - value.trim_start_matches(' ').len();
        let token_len = value[spaces..]
            .find(|c: char| c.is_whitespace() || ";&\",'}".contains(c))
            .unwrap_or(value.len() - spaces);
        out.push_str(&value[..spaces]);
        if token_len > 0 {
            out.push_str(REDACTED);
        }
        rest = &value[spaces + token_len..];
    }
}

/// The longest tracking ID kept (the longest DPS writes, with its suffix, is about 90).
const MAX_TRACKING_ID: usize = 128;

/// A DPS tracking ID as an event may hold it: `None` when `raw` is not shaped like one (a
/// UUID, 32 hex digits with DPS's `-G...:-TimeStamp:...` suffix, or another short token) or holds
/// anything key-like besides its 32 leading hex digits.
pub fn tracking_id(raw: &str) -> Option<String> {
    let t = raw.trim();
    let shaped = (1..=MAX_TRACKING_ID).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-:./+ _".contains(c))
        && t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let kept = redact_key_runs_after(&redact_hex_dumps(t), true);
    (shaped && kept == t).then(|| t.to_string())
}

/// Whether `before` (the text up to a key-like run) ends with a tracking-ID label:
/// `"trackingId":"`, `\"trackingId\":\"` (DPS's message nested in a string), `Tracking ID:`.
fn after_tracking_label(before: &str) -> bool {
    let tail: String = before
        .chars()
        .rev()
        .take(24)
        .filter(|c| !matches!(c, '"' | '\\' | ':' | ' ' | '='))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<String>()
        .to_ascii_lowercase();
    tail.ends_with("trackingid")
}

fn redact_key_runs(text: &str) -> String {
    redact_key_runs_after(text, false)
}

/// [`redact_key_runs`]; with `leading_tracking_id`, a run of exactly 32 hex digits at the very
/// start is a tracking ID as well.
fn redact_key_runs_after(text: &str, leading_tracking_id: bool) -> String {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || "+/=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let tracking = run.len() == 32
            && run.chars().all(|c| c.is_ascii_hexdigit())
            && ((leading_tracking_id && out.is_empty()) || after_tracking_label(out));
        if run.chars().count() >= KEY_RUN && !tracking {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_key_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let key = "nz68jY29+MgnH9ZWoIKeQKC6iM1FhuOdzB9y7GITj4M=";
        let uds = "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae";
        for text in [
            format!("HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey={key}"),
            format!("Password = SharedAccessSignature sr=0ne%2fregistrations%2fx&sig=wGYPvlsXKw%2FVO34BVbSfo%3D&se=1646989322 {key}"),
            format!("Authorization: {key}"),
            format!("UDS {uds} stored"),
            "-----BEGIN EC PRIVATE KEY-----MHcCAQEEI".to_string(),
            "Wi-Fi password: hunter2".to_string(),
        ] {
            let r = field(&text);
            for secret in [key, uds, "wGYPvlsXKw", "hunter2", "MHcCAQEEI"] {
                assert!(!r.contains(secret), "{r}");
            }
        }
    }

    #[test]
    fn ordinary_text_is_kept() {
        for text in [
            "Invalid certificate",
            "Failed to connect Wi-Fi DevKit-Lab.",
            "{\"Message\":\"ErrorCode:IotHubUnauthorizedAccess;Unauthorized\",\"ExceptionMessage\":\"Tracking ID:0b9c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3\"}",
            "registration az-c0bdd1a2b3c4v1v6v2 in 0ne000A1B2C",
        ] {
            assert_eq!(field(text), text);
        }
    }

    #[test]
    fn tracking_ids_are_kept_and_nothing_else_is() {
        let long =
            "EEC3FA1F7928480391CDF3FE09366AE9-G2:-TimeStamp:2022-09-05T11:40:18.035277889+00:00";
        for id in [
            long,
            "f40da7ba-8c91-4796-8fc3-89e1dfbdbe05",
            "0b9c1d2e3f404a5b8c6d7e8f90a1b2c3",
        ] {
            assert_eq!(tracking_id(id).as_deref(), Some(id));
        }
        let nested = format!("{{\\\"trackingId\\\":\\\"{long}\\\"}}");
        assert_eq!(field(&nested), nested);
        assert_eq!(
            field("Tracking ID:0b9c1d2e3f404a5b8c6d7e8f90a1b2c3-G:10"),
            "Tracking ID:0b9c1d2e3f404a5b8c6d7e8f90a1b2c3-G:10"
        );
        // The same 32 hex digits without the label, a longer run after it, a key as an ID.
        assert_eq!(
            field("id 0b9c1d2e3f404a5b8c6d7e8f90a1b2c3"),
            "id <redacted>"
        );
        assert!(field(
            "Tracking ID:19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae"
        )
        .ends_with("<redacted>"));
        assert_eq!(
            tracking_id("nz68jY29+MgnH9ZWoIKeQKC6iM1FhuOdzB9y7GITj4M="),
            None
        );
        assert_eq!(
            tracking_id(
                "0b9c1d2e3f404a5b8c6d7e8f90a1b2c3-nz68jY29MgnH9ZWoIKeQKC6iM1FhuOdzB9y7GITj4M"
            ),
            None
        );
    }

    const UDS: &str = "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae";

    /// Whether `out` still shows 4 consecutive bytes of `uds` in any case, separator or `0x`
    /// form.
    fn shows_part_of(out: &str, uds: &str) -> bool {
        let flat: String = out
            .to_ascii_lowercase()
            .replace("0x", "")
            .chars()
            .filter(|c| !" :-,".contains(*c))
            .collect();
        (0..=uds.len() - 8)
            .step_by(2)
            .any(|i| flat.contains(&uds[i..i + 8]))
    }

    #[test]
    fn hex_dumps_are_redacted() {
        let bytes: Vec<&str> = (0..32).map(|i| &UDS[2 * i..2 * i + 2]).collect();
        let words =
            |n: usize| -> Vec<&str> { (0..64 / n).map(|i| &UDS[n * i..n * i + n]).collect() };
        let mixed: String = UDS
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 3 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        for text in [
            format!("UDS: {}", bytes.join(" ").to_uppercase()),
            format!("UDS: {}", bytes.join(":")),
            format!("UDS: {}", bytes.join("-")),
            format!("uds[] = {{ 0x{} }};", bytes.join(", 0x")),
            format!("UDS {}", words(4).join(" ")),
            format!("UDS {}", words(8).join(" ")),
            format!("UDS {mixed}"),
            format!(
                "00000000  {}  {}  |..Z%..+.:....\\H.|",
                bytes[..8].join(" "),
                bytes[8..16].join(" ")
            ),
        ] {
            let r = field(&text);
            assert!(!shows_part_of(&r, UDS), "{text} -> {r}");
            assert!(r.contains(REDACTED), "{r}");
        }
    }

    #[test]
    fn short_hex_groups_and_uuids_are_not_dumps() {
        for text in [
            "DevKit MAC Address: 00:80:E1:B8:7E:3A",
            "Time:Sat Nov 28 17:00:00 2026 at 11:40:18.035",
            "Tracking ID:f40da7ba-8c91-4796-8fc3-89e1dfbdbe05",
            "2022-09-05T11:40:18.035277889+00:00",
            "version 1.6.2 build 20 21 22",
        ] {
            assert_eq!(field(text), text);
        }
        // A dump is no tracking ID.
        let bytes: Vec<&str> = (0..32).map(|i| &UDS[2 * i..2 * i + 2]).collect();
        assert_eq!(tracking_id(&bytes.join(":")), None);
    }

    proptest::proptest! {
        /// A UDS as hex, in any case, any separator and grouping, with or without `0x`, with
        /// any text around it, is never shown.
        #[test]
        fn a_uds_is_redacted_in_any_case_separator_and_grouping(
            uds in proptest::array::uniform32(proptest::prelude::any::<u8>()),
            upper in proptest::collection::vec(proptest::prelude::any::<bool>(), 64),
            sep in proptest::sample::select(vec![" ", ":", "-", ",", ", ", "  ", " : "]),
            width in proptest::sample::select(vec![2usize, 4, 8, 64]),
            prefix in proptest::prelude::any::<bool>(),
            pre in "[ -~]{0,20}",
            post in "[ -~]{0,20}",
        ) {
            let hex = hex::encode(uds);
            let cased: String = hex
                .chars()
                .zip(&upper)
                .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
                .collect();
            let groups: Vec<String> = (0..64 / width)
                .map(|i| {
                    let g = &cased[width * i..width * (i + 1)];
                    if prefix { format!("0x{g}") } else { g.to_string() }
                })
                .collect();
            let text = format!("{pre} {} {post}", groups.join(sep));
            let r = redact(&text);
            proptest::prop_assert!(!shows_part_of(&r, &hex), "{text} -> {r}");
        }

        /// A SAS key (32 or 64 random bytes in base64) with or without its `=` padding is never
        /// shown.
        #[test]
        fn a_key_is_redacted_with_or_without_padding(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 32..=64),
            padded in proptest::prelude::any::<bool>(),
            pre in "[ -~]{0,20}",
            post in "[ -~]{0,20}",
        ) {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
            let shown = if padded { b64.as_str() } else { b64.trim_end_matches('=') };
            let text = format!("{pre} {shown} {post}");
            let r = redact(&text);
            let core = b64.trim_end_matches('=');
            for i in 0..=core.len() - 12 {
                proptest::prop_assert!(!r.contains(&core[i..i + 12]), "{text} -> {r}");
            }
        }
    }

    #[test]
    fn fields_are_bounded() {
        let long = "word ".repeat(1000);
        assert_eq!(field(&long).chars().count(), MAX_FIELD);
        assert_eq!(clip("short", 10), "short");
    }
}
