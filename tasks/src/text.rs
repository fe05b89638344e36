//! Positions in text as `tasks` holds them: byte offsets into the file, with a [`LineIndex`]
//! to turn an offset into a line and a byte column. No encoding of any editor lives here: the
//! daemon converts to LSP's UTF-16 positions at its edge (`server/src/lsp/to_proto.rs`), as
//! rust-analyzer does.

/// A range of bytes, `start..end`, into the text it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TextRange {
    pub start: u32,
    pub end: u32,
}

impl TextRange {
    pub fn new(start: u32, end: u32) -> Self {
        debug_assert!(start <= end);
        TextRange { start, end }
    }
    /// An empty range at `offset` (an insertion point).
    pub fn empty(offset: u32) -> Self {
        TextRange::new(offset, offset)
    }
    pub fn as_usize(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A line (0-based) and a byte column (0-based) in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}

/// Where each line of a text starts (after `\n`; a `\r` before it stays on its line, as LSP
/// counts lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineIndex {
    starts: Vec<u32>,
    len: u32,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i as u32 + 1),
            )
            .collect();
        LineIndex {
            starts,
            len: text.len() as u32,
        }
    }

    /// The line and byte column of `offset` (clamped to the end of the text).
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(self.len);
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        LineCol {
            line: line as u32,
            col: offset - self.starts[line],
        }
    }

    /// The byte offset where `line` starts (`None` past the last line).
    pub fn line_start(&self, line: u32) -> Option<u32> {
        self.starts.get(line as usize).copied()
    }

    /// The byte offset of a line and byte column (`None` past the last line; the column is
    /// clamped to the text's end).
    pub fn offset(&self, lc: LineCol) -> Option<u32> {
        self.line_start(lc.line)
            .map(|s| s.saturating_add(lc.col).min(self.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_byte_columns() {
        let text = "ab\r\n// é日本 x\n\nlast";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap() as u32;
        // `é` is 2 bytes, `日` and `本` 3 each: the column counts bytes.
        assert_eq!(index.line_col(x), LineCol { line: 1, col: 12 });
        assert_eq!(index.line_col(0), LineCol { line: 0, col: 0 });
        assert_eq!(index.line_col(2), LineCol { line: 0, col: 2 });
        assert_eq!(
            index.line_col(text.len() as u32 + 9),
            LineCol { line: 3, col: 4 }
        );
        assert_eq!(index.offset(LineCol { line: 1, col: 12 }), Some(x));
        assert_eq!(index.line_start(2), Some(x + 2));
        assert_eq!(index.offset(LineCol { line: 4, col: 0 }), None);
        assert_eq!(&text[TextRange::new(x, x + 1).as_usize()], "x");
    }
}
