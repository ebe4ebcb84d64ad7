//! Durations as people write them: in check options, stack files, config and command-line flags.
//! One parser, so `"500ms"` means the same everywhere and a bare number is refused everywhere.

use std::time::Duration;

/// Parses `"500ms"`, `"30s"`, `"1m30s"`, `"2h"`; a bare number is refused because its unit would
/// be a guess. The error says what was written and how to write it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid duration \"{text}\": add a unit, e.g. \"{text}s\" or \"{text}ms\""
        ));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration \"{text}\": {e} (write e.g. \"500ms\", \"30s\", \"1m30s\")")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("30").unwrap_err().contains("add a unit"));
        assert!(parse_duration("5x")
            .unwrap_err()
            .contains("invalid duration \"5x\""));
    }
}
