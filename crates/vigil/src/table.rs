//! Aligned text tables for the terminal, coloured by state when stdout is a terminal.

use std::io::IsTerminal;

/// A cell's colour, chosen by meaning so that the text alone still says the same.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
    Muted,
}

impl Tone {
    /// The tone of a state or status word.
    pub fn of(word: &str) -> Tone {
        match word {
            "passing" | "healthy" | "ok" | "alive" => Tone::Good,
            "warning" | "degraded" | "starting" | "suspect" => Tone::Warn,
            "critical" | "unhealthy" | "stopping" | "dead" => Tone::Bad,
            "unknown" | "disabled" | "left" => Tone::Muted,
            _ => Tone::Plain,
        }
    }

    /// `text` wrapped in this tone's colour, or as it is when `colour` is off.
    pub fn paint(self, text: &str, colour: bool) -> String {
        match self.ansi().filter(|_| colour) {
            Some(code) => format!("{code}{text}\x1b[0m"),
            None => text.to_owned(),
        }
    }

    fn ansi(self) -> Option<&'static str> {
        match self {
            Tone::Plain => None,
            Tone::Good => Some("\x1b[32m"),
            Tone::Warn => Some("\x1b[33m"),
            Tone::Bad => Some("\x1b[1;31m"),
            Tone::Muted => Some("\x1b[2m"),
        }
    }
}

/// Colour only when stdout is a terminal and `NO_COLOR` is unset (<https://no-color.org>).
pub fn colour_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A table of rows under a header.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<(String, Tone)>>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Self {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<(String, Tone)>) {
        self.rows.push(cells);
    }

    /// Renders the table; the last column is not padded.
    pub fn render(&self, colour: bool) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<(String, Tone)> = self
            .header
            .iter()
            .map(|h| (h.to_string(), Tone::Plain))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, tone)) in row.iter().enumerate().take(columns) {
                let pad = if i + 1 == columns {
                    0
                } else {
                    widths[i] - cell.chars().count() + 2
                };
                line.push_str(&tone.paint(cell, colour));
                line.push_str(&" ".repeat(pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table, in colour when [`colour_enabled`].
    pub fn print(&self) {
        print!("{}", self.render(colour_enabled()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_wraps_cells_but_not_their_padding() {
        let mut t = Table::new(vec!["NAME", "STATE"]);
        t.row(vec![("c".into(), Tone::Plain), ("dead".into(), Tone::Bad)]);
        assert_eq!(t.render(true), "NAME  STATE\nc     \x1b[1;31mdead\x1b[0m\n");
    }

    #[test]
    fn columns_align_without_colour() {
        let mut t = Table::new(vec!["NAME", "STATE"]);
        t.row(vec![
            ("db".into(), Tone::Good),
            ("passing".into(), Tone::Good),
        ]);
        t.row(vec![
            ("cache-flaky".into(), Tone::Plain),
            ("warning".into(), Tone::Warn),
        ]);
        assert_eq!(
            t.render(false),
            "NAME         STATE\ndb           passing\ncache-flaky  warning\n"
        );
    }
}
