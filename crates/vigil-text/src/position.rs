//! Errors in files that vigil reads (stack files, compose files, the agent's config), each located
//! at `file:line:column`, and the collector that turns byte offsets into those positions. One
//! collector for every reader, so all of them place and order their errors the same way.

use std::fmt;
use std::ops::Range;

/// One problem in a file, where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// The file as given on the command line, or what else the problem came from (e.g.
    /// `environment` for a variable).
    pub file: String,
    /// 1-based line; 0 when the problem has no position (an unreadable file, a variable).
    pub line: usize,
    /// 1-based column in characters; 0 when the problem has no position.
    pub column: usize,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// Every problem found in a file, in file order; what reads the file acts on none of it while
/// there is one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FileErrors(pub Vec<FileError>);

impl fmt::Display for FileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Collects located errors for one file.
pub struct Errors<'a> {
    source: &'a str,
    file: &'a str,
    found: Vec<(usize, FileError)>,
}

impl<'a> Errors<'a> {
    /// A collector for `source`, the text of the file named `file` in errors.
    pub fn new(source: &'a str, file: &'a str) -> Self {
        Errors {
            source,
            file,
            found: Vec::new(),
        }
    }

    /// Records a problem at a byte span of the source.
    pub fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_column(self.source, span.start);
        self.found.push((
            span.start,
            FileError {
                file: self.file.to_owned(),
                line,
                column,
                message: message.into(),
            },
        ));
    }

    /// Records a problem at a 1-based line and column.
    pub fn at_line(&mut self, line: usize, column: usize, message: impl Into<String>) {
        let offset = self
            .source
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum::<usize>()
            + column;
        self.found.push((
            offset,
            FileError {
                file: self.file.to_owned(),
                line,
                column,
                message: message.into(),
            },
        ));
    }

    /// The 1-based line of a byte offset of the source.
    pub fn line_of(&self, offset: usize) -> usize {
        line_column(self.source, offset).0
    }

    /// Whether no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The errors sorted by position.
    pub fn into_errors(mut self) -> FileErrors {
        self.found.sort_by_key(|(offset, _)| *offset);
        FileErrors(self.found.into_iter().map(|(_, e)| e).collect())
    }
}

/// The error for a file that cannot be read.
pub fn unreadable(file: &str, error: &std::io::Error) -> FileErrors {
    FileErrors(vec![FileError {
        file: file.to_owned(),
        line: 0,
        column: 0,
        message: format!("cannot read the file: {error}"),
    }])
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(line_column("a\nxé\u{1F600}z", 9), (2, 4));
        assert_eq!(line_column("ab", 0), (1, 1));
        assert_eq!(line_column("ab\n", 3), (2, 1));
    }
}
