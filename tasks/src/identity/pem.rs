//! PEM helpers: 64-column output, lenient input (CRLF, one-line base64 as the original tool
//! writes it, text around the block).

use super::IdentityError;
use base64::Engine;

/// Encode `der` under `label` with 64-column lines.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decode the first PEM block labelled `label` (any label when `None`).
pub fn decode(text: &str, label: Option<&str>) -> Result<Vec<u8>, IdentityError> {
    let what = || match label {
        Some(l) => format!("a PEM \"{l}\" block"),
        None => "a PEM block".to_string(),
    };
    let mut search = text;
    loop {
        let Some(begin) = search.find("-----BEGIN ") else {
            return Err(IdentityError::named(
                crate::error::Input::Cert,
                "PEM input",
                format!("no {} found", what()),
            ));
        };
        let after_begin = &search[begin + "-----BEGIN ".len()..];
        let Some(label_end) = after_begin.find("-----") else {
            return Err(IdentityError::named(
                crate::error::Input::Cert,
                "PEM input",
                "unterminated BEGIN line",
            ));
        };
        let found = after_begin[..label_end].trim();
        let body_start = &after_begin[label_end + 5..];
        if label.is_some_and(|l| l != found) {
            search = body_start;
            continue;
        }
        let end_marker = format!("-----END {found}-----");
        let Some(end) = body_start.find(&end_marker) else {
            return Err(IdentityError::named(
                crate::error::Input::Cert,
                "PEM input",
                format!("the \"{found}\" block has no END line"),
            ));
        };
        let body: String = body_start[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        return base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| {
                IdentityError::named(
                    crate::error::Input::Cert,
                    "PEM input",
                    format!("the \"{found}\" block is not valid base64"),
                )
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_64_columns() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(pem.lines().nth(1).unwrap().len(), 64);
        assert_eq!(decode(&pem, Some("CERTIFICATE")).unwrap(), der);
        assert_eq!(decode(&pem.replace('\n', "\r\n"), None).unwrap(), der);
    }

    #[test]
    fn picks_the_requested_label_and_reports_missing() {
        let text = format!(
            "junk\n{}{}",
            encode("PUBLIC KEY", b"pk"),
            encode("CERTIFICATE", b"cert")
        );
        assert_eq!(decode(&text, Some("CERTIFICATE")).unwrap(), b"cert");
        assert_eq!(decode(&text, None).unwrap(), b"pk");
        assert!(decode(&text, Some("EC PRIVATE KEY")).is_err());
        assert!(decode("-----BEGIN X-----\n!!!\n-----END X-----\n", None).is_err());
    }
}
