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
        self.push_each(bytes, |l| lines.push(l));
        lines
    }

    /// Feed bytes; `line` gets each line they complete (without its terminator) as it is
    /// found, so a large input is never held as a list of lines. Only the partial line is
    /// kept between calls (at most [`MAX_LINE`] bytes).
    pub fn push_each(&mut self, mut bytes: &[u8], mut line: impl FnMut(String)) {
        while let Some(&first) = bytes.first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            let room = MAX_LINE - self.partial.len();
            let scan = &bytes[..bytes.len().min(room)];
            match scan.iter().position(|&b| b == b'\r' || b == b'\n') {
                Some(i) => {
                    self.extend(&scan[..i]);
                    self.after_cr = scan[i] == b'\r';
                    line(self.take());
                    bytes = &bytes[i + 1..];
                }
                None => {
                    self.extend(scan);
                    bytes = &bytes[scan.len()..];
                    if self.partial.len() >= MAX_LINE {
                        line(self.take());
                    }
                }
            }
        }
    }

    /// Add to the partial line, its buffer never growing past [`MAX_LINE`].
    fn extend(&mut self, bytes: &[u8]) {
        let want = (self.partial.len() + bytes.len())
            .next_power_of_two()
            .min(MAX_LINE);
        if want > self.partial.capacity() {
            self.partial.reserve_exact(want - self.partial.len());
        }
        self.partial.extend_from_slice(bytes);
    }

    /// The bytes held for the partial line (its buffer's capacity): the framer's only state.
    pub fn retained_bytes(&self) -> usize {
        self.partial.capacity()
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

    /// The scanning framer ends lines exactly where a byte-at-a-time reading does, however the
    /// input is cut into chunks.
    #[test]
    fn chunking_never_changes_the_lines() {
        fn bytewise(input: &[u8]) -> Vec<String> {
            let (mut lines, mut partial, mut after_cr) = (Vec::new(), Vec::new(), false);
            for &b in input {
                match b {
                    b'\n' if after_cr => after_cr = false,
                    b'\r' | b'\n' => {
                        after_cr = b == b'\r';
                        lines.push(String::from_utf8_lossy(&partial).into_owned());
                        partial.clear();
                    }
                    _ => {
                        after_cr = false;
                        partial.push(b);
                        if partial.len() >= MAX_LINE {
                            lines.push(String::from_utf8_lossy(&partial).into_owned());
                            partial.clear();
                        }
                    }
                }
            }
            if !partial.is_empty() {
                lines.push(String::from_utf8_lossy(&partial).into_owned());
            }
            lines
        }
        let mut input = b"a\r\nb\n\rc\r\r\n\nd".to_vec();
        input.extend(vec![b'x'; MAX_LINE]);
        input.extend(b"\n\r\ny");
        input.extend(vec![b'z'; MAX_LINE - 1]);
        input.extend(b"\r\n");
        for cut in [1, 2, 3, 7, 1000, MAX_LINE - 1, MAX_LINE + 5, input.len()] {
            let mut f = LineFramer::new();
            let mut lines = Vec::new();
            for chunk in input.chunks(cut) {
                f.push_each(chunk, |l| lines.push(l));
                assert!(f.retained_bytes() <= MAX_LINE, "{}", f.retained_bytes());
            }
            lines.extend(f.finish());
            assert_eq!(lines, bytewise(&input), "chunks of {cut}");
        }
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
