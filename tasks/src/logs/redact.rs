//! What of a device line may go into an event: bounded in length, and never anything that
//! looks like a secret.
//!
//! Events travel further than the log (daemon notifications, the extension's UI, progress
//! messages, bug reports), so every piece of free text copied from the input passes through
//! [`field`]: key-like values (SAS keys and signatures, `Authorization:` values, passwords,
//! PEM blocks, long base64/hex runs such as a UDS) become `<redacted>`, and the result is cut
//! to [`MAX_FIELD`] characters.
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
    redact_key_runs(&redact_after_markers(&text))
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
    let kept = redact_key_runs_after(t, true);
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

    #[test]
    fn fields_are_bounded() {
        let long = "word ".repeat(1000);
        assert_eq!(field(&long).chars().count(), MAX_FIELD);
        assert_eq!(clip("short", 10), "short");
    }
}
