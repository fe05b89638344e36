//! Line framing for serial output: CR, LF and CRLF all end a line; partial lines are kept
//! until their end arrives (a chunk boundary never splits a line in two).
//!
//! Shared by the monitor (line events, log files) and [`crate::logs::EventParser`].

/// The longest line kept; a longer run without a line end is cut here, so a device spewing
/// binary cannot make us grow without bound.
pub const MAX_LINE: usize = 16 * 1024;

/// Splits a byte stream into lines, normalising CR/LF. Lines are decoded lossily as UTF-8.
#[derive(Debug, Default, Clone)]
pub struct LineFramer {
    partial: Vec<u8>,
    /// The previous chunk ended in CR: a LF starting this chunk belongs to that line end.
    after_cr: bool,
}

impl LineFramer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; returns the lines completed by them (without their terminators).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    lines.push(self.take());
                }
                _ => {
                    self.after_cr = false;
                    self.partial.push(b);
                    if self.partial.len() >= MAX_LINE {
                        lines.push(self.take());
                    }
                }
            }
        }
        lines
    }

    /// The partial line received so far (no terminator yet).
    pub fn partial(&self) -> String {
        String::from_utf8_lossy(&self.partial).into_owned()
    }

    /// End of input: the partial line, if any, as a last line.
    pub fn finish(&mut self) -> Option<String> {
        self.after_cr = false;
        if self.partial.is_empty() {
            None
        } else {
            Some(self.take())
        }
    }

    fn take(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_cr_and_lf_end_lines_across_chunks() {
        let mut f = LineFramer::new();
        assert_eq!(f.push(b"one\r"), vec!["one"]);
        assert_eq!(f.push(b"\ntwo\nthr"), vec!["two"]);
        assert_eq!(f.partial(), "thr");
        assert_eq!(f.push(b"ee\r\n\r\nfour\r"), vec!["three", "", "four"]);
        assert_eq!(f.push(b"five"), Vec::<String>::new());
        assert_eq!(f.finish().as_deref(), Some("five"));
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn overlong_lines_are_cut() {
        let mut f = LineFramer::new();
        let lines = f.push(&vec![b'x'; MAX_LINE + 10]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(f.partial().len(), 10);
    }
}
