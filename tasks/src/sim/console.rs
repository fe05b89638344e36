//! The configuration console's line discipline and argument parser, exactly as the DevKit
//! firmware implements them (devkit-facts.md §2), kept apart from I/O so they can be tested
//! byte by byte.

use zeroize::Zeroizing;

/// Input buffer size of the firmware: the 1024th character overflows it.
pub const INBUF_SIZE: usize = 1024;
/// At most this many words are parsed.
pub const MAX_CMD_ARG: usize = 4;
/// The prompt and the masked commands are the protocol's, shared with the client.
pub use crate::console::{MASKED_COMMANDS, PROMPT};

/// What one input byte produced. `Debug` never shows a line's content (it may be a secret).
#[derive(PartialEq, Eq)]
pub enum Fed {
    /// Nothing to run yet; `echo` is what the device writes back (possibly empty).
    Echo(Vec<u8>),
    /// CR ended a line: run it.
    Line(Zeroizing<Vec<u8>>),
    /// The buffer overflowed: print the overflow error and the prompt (already in the bytes).
    Overflow(Vec<u8>),
}

impl std::fmt::Debug for Fed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fed::Echo(e) => write!(f, "Echo({} bytes)", e.len()),
            Fed::Line(l) => write!(f, "Line({} bytes)", l.len()),
            Fed::Overflow(_) => write!(f, "Overflow"),
        }
    }
}

/// The firmware's `get_input`: one byte at a time.
#[derive(Default)]
pub struct LineDiscipline {
    buf: Zeroizing<Vec<u8>>,
}

impl LineDiscipline {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, byte: u8) -> Fed {
        let c = match byte {
            b'\r' => return Fed::Line(Zeroizing::new(std::mem::take(&mut *self.buf))),
            b'\t' => b' ',
            0x08 | 0x7f => {
                return if self.buf.pop().is_some() {
                    Fed::Echo(b"\x08 \x08".to_vec())
                } else {
                    Fed::Echo(Vec::new())
                };
            }
            c if c < b' ' => return Fed::Echo(Vec::new()),
            c => c,
        };
        let echo = if is_masked(&self.buf) { b'*' } else { c };
        self.buf.push(c);
        if self.buf.len() >= INBUF_SIZE {
            self.buf.clear();
            let mut out = vec![echo];
            out.extend_from_slice(b"\r\nError: input buffer overflow\r\n");
            out.extend_from_slice(PROMPT);
            return Fed::Overflow(out);
        }
        Fed::Echo(vec![echo])
    }
}

/// The line so far is a masked command followed by a space (`is_privacy_cmd`).
fn is_masked(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b' ') {
        Some(i) => MASKED_COMMANDS.iter().any(|m| m.as_bytes() == &line[..i]),
        None => false,
    }
}

/// The unterminated-quote error (`Error:Syntax error`).
#[derive(Debug, PartialEq, Eq)]
pub struct SyntaxError;

/// The firmware's `handle_input` tokenizer: spaces split, double quotes group, a backslash
/// before a quote or a space escapes it; at most [`MAX_CMD_ARG`] words.
pub fn parse_args(line: &[u8]) -> Result<Vec<Zeroizing<Vec<u8>>>, SyntaxError> {
    let mut b: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(line.len() + 1));
    b.extend_from_slice(line);
    b.push(0);
    let mut starts: Vec<usize> = Vec::new();
    let (mut in_arg, mut in_quote) = (false, false);
    let mut i = 0;
    loop {
        match b[i] {
            0 => {
                if in_quote {
                    return Err(SyntaxError);
                }
                break;
            }
            b'"' | b' ' if i > 0 && b[i - 1] == b'\\' && in_arg => {
                b.remove(i - 1);
                i -= 1;
            }
            b'"' => {
                if !in_quote && in_arg {
                    // A quote inside a word is an ordinary character.
                } else if in_quote && !in_arg {
                    return Err(SyntaxError);
                } else if !in_quote && !in_arg {
                    in_arg = true;
                    in_quote = true;
                    starts.push(i + 1);
                } else {
                    in_arg = false;
                    in_quote = false;
                    b[i] = 0;
                }
            }
            b' ' => {
                if !in_quote && in_arg {
                    in_arg = false;
                    b[i] = 0;
                }
            }
            _ => {
                if !in_arg {
                    in_arg = true;
                    starts.push(i);
                }
            }
        }
        i += 1;
        if i >= b.len() || starts.len() > MAX_CMD_ARG {
            break;
        }
    }
    if in_quote {
        return Err(SyntaxError);
    }
    Ok(starts
        .iter()
        .take(MAX_CMD_ARG)
        .map(|&s| {
            let end = b[s..]
                .iter()
                .position(|&c| c == 0)
                .map_or(b.len(), |e| s + e);
            Zeroizing::new(b[s..end].to_vec())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(d: &mut LineDiscipline, s: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut echo = Vec::new();
        for &b in s {
            match d.feed(b) {
                Fed::Echo(e) | Fed::Overflow(e) => echo.extend(e),
                Fed::Line(l) => return (echo, Some(l.to_vec())),
            }
        }
        (echo, None)
    }

    fn args(s: &str) -> Result<Vec<String>, SyntaxError> {
        parse_args(s.as_bytes()).map(|v| {
            v.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
    }

    #[test]
    fn masked_commands_echo_stars_after_the_space() {
        let mut d = LineDiscipline::new();
        let (echo, line) = feed_all(&mut d, b"set_dps_uds abc\r");
        assert_eq!(echo, b"set_dps_uds ***");
        assert_eq!(line.unwrap(), b"set_dps_uds abc");
        let (echo, _) = feed_all(&mut d, b"set_wifissid abc\r");
        assert_eq!(echo, b"set_wifissid abc");
        let (echo, _) = feed_all(&mut d, b"set_wifipwd\tpw\r");
        assert_eq!(echo, b"set_wifipwd **");
    }

    #[test]
    fn backspace_control_characters_and_tab() {
        let mut d = LineDiscipline::new();
        let (echo, line) = feed_all(&mut d, b"\x08hx\x7fe\nlp\x01\r");
        assert_eq!(echo, b"hx\x08 \x08elp");
        assert_eq!(line.unwrap(), b"help");
    }

    #[test]
    fn overflow_at_1024_characters() {
        let mut d = LineDiscipline::new();
        let (echo, line) = feed_all(&mut d, &vec![b'a'; INBUF_SIZE]);
        assert!(line.is_none());
        assert!(echo.ends_with(b"a\r\nError: input buffer overflow\r\n\r\n# "));
        let (_, line) = feed_all(&mut d, b"x\r");
        assert_eq!(line.unwrap(), b"x", "buffer emptied after overflow");
        let mut d = LineDiscipline::new();
        let (_, line) = feed_all(
            &mut d,
            &[vec![b'b'; INBUF_SIZE - 1], b"\r".to_vec()].concat(),
        );
        assert_eq!(line.unwrap().len(), INBUF_SIZE - 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_echoes_a_masked_value(input in proptest::collection::vec(proptest::num::u8::ANY, 0..3000)) {
            let mut d = LineDiscipline::new();
            for &b in &input {
                if let Fed::Line(line) = d.feed(b) {
                    let _ = parse_args(&line);
                }
            }
            let mut d = LineDiscipline::new();
            let (echo, _) = feed_all(&mut d, b"set_dps_uds ");
            let mut echo = echo;
            for &b in input.iter().filter(|&&b| b >= b' ' && b != 0x7f).take(500) {
                if let Fed::Echo(e) = d.feed(b) { echo.extend(e) }
            }
            proptest::prop_assert!(echo[b"set_dps_uds ".len()..].iter().all(|&c| c == b'*'));
        }
    }

    #[test]
    fn quotes_and_escapes_like_the_firmware() {
        assert_eq!(
            args("set_wifissid \"My Net\"").unwrap(),
            ["set_wifissid", "My Net"]
        );
        assert_eq!(
            args("set_wifissid My\\ Net\\\"s").unwrap(),
            ["set_wifissid", "My Net\"s"]
        );
        assert_eq!(args("set_wifissid a\"b").unwrap(), ["set_wifissid", "a\"b"]);
        assert_eq!(args("set_wifissid \\\"x").unwrap(), ["set_wifissid", "\"x"]);
        assert_eq!(
            args("set_wifissid a\\\\ b").unwrap(),
            ["set_wifissid", "a\\ b"]
        );
        assert_eq!(args("  help   ").unwrap(), ["help"]);
        assert_eq!(args("").unwrap(), Vec::<String>::new());
        assert_eq!(args("set_wifissid \"open"), Err(SyntaxError));
        assert_eq!(args("a b c d e f").unwrap(), ["a", "b", "c", "d"]);
    }
}
