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

/// How wide output may be: `COLUMNS` when set, else the terminal's width when stdout is one;
/// `None` (no limit) when piped, so nothing is lost to a file or a `grep`.
pub fn output_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return Some(columns);
    }
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(&stdout).map(|(width, _)| usize::from(width.0))
}

/// The fewest characters the last column keeps when cut to fit, so a cut cell still says
/// something.
const LAST_COLUMN_MIN: usize = 16;

/// A table of rows under a header, or of name–value fields without one.
pub struct Table {
    header: Option<Vec<&'static str>>,
    rows: Vec<Vec<(String, Tone)>>,
}

impl Table {
    /// A table under `header`, with as many columns.
    pub fn new(header: Vec<&'static str>) -> Self {
        Table {
            header: Some(header),
            rows: Vec::new(),
        }
    }

    /// Two columns, names and values, without a header: see [`Table::field`].
    pub fn fields() -> Self {
        Table {
            header: None,
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<(String, Tone)>) {
        self.rows.push(cells);
    }

    /// Adds a name–value row.
    pub fn field(&mut self, name: &str, value: String, tone: Tone) {
        self.rows
            .push(vec![(name.to_owned(), Tone::Plain), (value, tone)]);
    }

    fn columns(&self) -> usize {
        self.header.as_ref().map_or(2, Vec::len)
    }

    /// Cuts the last column's cells, marking each cut with `…`, so that no line is wider than
    /// `width` characters; the last column keeps at least a few characters whatever `width`.
    pub fn fit_last_column(&mut self, width: usize) {
        let columns = self.columns();
        let Some(last) = columns.checked_sub(1) else {
            return;
        };
        let widths = self.widths();
        let start: usize = widths.iter().take(last).map(|w| w + 2).sum();
        let room = width.saturating_sub(start).max(LAST_COLUMN_MIN);
        for row in &mut self.rows {
            if let Some((cell, _)) = row.get_mut(last) {
                if cell.chars().count() > room {
                    let mut cut: String = cell.chars().take(room - 1).collect();
                    cut.push('…');
                    *cell = cut;
                }
            }
        }
    }

    /// Each column's width, in characters.
    fn widths(&self) -> Vec<usize> {
        let columns = self.columns();
        let mut widths: Vec<usize> = match &self.header {
            Some(header) => header.iter().map(|h| h.chars().count()).collect(),
            None => vec![0; columns],
        };
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        widths
    }

    /// Renders the table; the last column is not padded.
    pub fn render(&self, colour: bool) -> String {
        let columns = self.columns();
        let widths = self.widths();
        let mut out = String::new();
        let header: Option<Vec<(String, Tone)>> = self.header.as_ref().map(|header| {
            header
                .iter()
                .map(|h| (h.to_string(), Tone::Plain))
                .collect()
        });
        for row in header.iter().chain(&self.rows) {
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

    #[test]
    fn fields_have_no_header() {
        let mut t = Table::fields();
        t.field("node", "a".into(), Tone::Plain);
        t.field("status", "healthy".into(), Tone::Good);
        assert_eq!(t.render(false), "node    a\nstatus  healthy\n");
    }

    #[test]
    fn the_last_column_is_cut_to_the_width_with_an_ellipsis() {
        let mut t = Table::new(vec!["NAME", "MESSAGE"]);
        t.row(vec![
            ("disk".into(), Tone::Plain),
            ("x".repeat(40), Tone::Plain),
        ]);
        t.row(vec![
            ("mem".into(), Tone::Plain),
            ("short".into(), Tone::Plain),
        ]);
        t.fit_last_column(30);
        let text = t.render(false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], format!("disk  {}…", "x".repeat(23)));
        assert_eq!(lines[1].chars().count(), 30);
        assert_eq!(lines[2], "mem   short");

        let mut narrow = Table::new(vec!["NAME", "MESSAGE"]);
        narrow.row(vec![
            ("disk".into(), Tone::Plain),
            ("y".repeat(40), Tone::Plain),
        ]);
        narrow.fit_last_column(5);
        let text = narrow.render(false);
        assert_eq!(
            text.lines().nth(1).map(|l| l.chars().count()),
            Some(6 + LAST_COLUMN_MIN),
            "a cut cell keeps a few characters: {text}"
        );
    }
}
