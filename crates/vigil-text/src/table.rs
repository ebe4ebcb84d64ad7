//! Reading a TOML table into a serde type with every bad key reported at its position, so that
//! one typo never hides the next.
//!
//! Each error is placed at the key or value it is about, that key is taken out of the table and
//! the rest is read again, until what is left reads. Errors serde raises after the whole table is
//! read carry no position of their own — those of a `#[serde(flatten)]`ed part, such as the probe
//! options of a check — and are placed by finding the key whose removal makes them go away.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::position::Errors;

/// What [`deserialize_table`] made of a table.
#[derive(Debug)]
pub struct Read<T> {
    /// The value of what is left once the bad keys are out, if that reads.
    pub value: Option<T>,
    /// The keys taken out for an error (empty: nothing was wrong with any key).
    pub removed: Vec<String>,
}

/// Deserializes one table (whose whole span is `span`), recording every bad key in `errors`.
pub fn deserialize_table<T: DeserializeOwned>(
    table: &DeTable<'_>,
    span: Range<usize>,
    errors: &mut Errors<'_>,
) -> Read<T> {
    let mut table = table.clone();
    let mut removed: Vec<String> = Vec::new();
    loop {
        let error = match read::<T>(&table, &span) {
            Ok(value) => {
                return Read {
                    value: Some(value),
                    removed,
                }
            }
            Err(error) => error,
        };
        let message = error.message().to_owned();
        // A required key taken out because its value was wrong is not missing as well.
        if let Some(field) = missing_field(&message) {
            if removed.iter().any(|key| key == field) {
                return Read {
                    value: None,
                    removed,
                };
            }
        }
        let placed = error
            .span()
            .filter(|at| *at != span)
            .and_then(|at| written_at(&table, &at).map(|culprit| (culprit, at)))
            .or_else(|| {
                let culprit = unplaced_culprit::<T>(&table, &span, &message)?;
                let at = if culprit.in_value {
                    let (key, value) = table
                        .iter()
                        .find(|(key, _)| key.get_ref().as_ref() == culprit.key)?;
                    let persists = |replaced: Spanned<DeValue<'_>>| {
                        let mut with = table.clone();
                        with.insert(key.clone(), replaced);
                        read::<T>(&with, &span)
                            .err()
                            .is_some_and(|e| e.message() == message)
                    };
                    narrow(value, &persists)
                } else {
                    key_span(&table, &culprit.key)?
                };
                Some((culprit, at))
            });
        match placed {
            Some((culprit, at)) => {
                if culprit.in_value {
                    errors.at(at, format!("{}: {message}", culprit.key));
                } else {
                    errors.at(at, message);
                }
                table.remove(culprit.key.as_str());
                removed.push(culprit.key);
            }
            None => {
                errors.at(error.span().unwrap_or(span), message);
                return Read {
                    value: None,
                    removed,
                };
            }
        }
    }
}

/// The key an error is about, and whether it is about its value (else the key itself).
struct Culprit {
    key: String,
    in_value: bool,
}

fn read<T: DeserializeOwned>(
    table: &DeTable<'_>,
    span: &Range<usize>,
) -> Result<T, toml::de::Error> {
    let value = Spanned::new(span.clone(), DeValue::Table(table.clone()));
    T::deserialize(ValueDeserializer::from(value))
}

/// The key whose name or value holds the span `at`.
fn written_at(table: &DeTable<'_>, at: &Range<usize>) -> Option<Culprit> {
    table.iter().find_map(|(key, value)| {
        let in_value = if contains(&key.span(), at) {
            false
        } else if contains(&value.span(), at) {
            true
        } else {
            return None;
        };
        Some(Culprit {
            key: key.get_ref().to_string(),
            in_value,
        })
    })
}

/// The key of an error without a position of its own: the key it names as unknown, else the
/// first key without which the error goes away (or turns into another one, not about that key
/// missing).
fn unplaced_culprit<T: DeserializeOwned>(
    table: &DeTable<'_>,
    span: &Range<usize>,
    message: &str,
) -> Option<Culprit> {
    if let Some(unknown) = unknown_field(message) {
        return key_span(table, unknown).map(|_| Culprit {
            key: unknown.to_owned(),
            in_value: false,
        });
    }
    table.iter().find_map(|(key, _)| {
        let name = key.get_ref().to_string();
        let mut without = table.clone();
        without.remove(name.as_str());
        let culprit = match read::<T>(&without, span) {
            Ok(_) => true,
            Err(other) => {
                other.message() != message && missing_field(other.message()) != Some(name.as_str())
            }
        };
        culprit.then_some(Culprit {
            key: name,
            in_value: true,
        })
    })
}

/// The span of the innermost part of `value` (an entry of a table, an element of an array) the
/// error is about: the first part without which it goes away. `persists` says whether the error
/// is still there with `value` replaced by what it is given.
fn narrow(
    value: &Spanned<DeValue<'_>>,
    persists: &dyn Fn(Spanned<DeValue<'_>>) -> bool,
) -> Range<usize> {
    let span = value.span();
    match value.get_ref() {
        DeValue::Table(inner) => {
            for (key, part) in inner.iter() {
                let mut without = inner.clone();
                without.remove(key.get_ref().as_ref());
                if !persists(Spanned::new(span.clone(), DeValue::Table(without))) {
                    return narrow(part, &|replaced| {
                        let mut with = inner.clone();
                        with.insert(key.clone(), replaced);
                        persists(Spanned::new(span.clone(), DeValue::Table(with)))
                    });
                }
            }
        }
        DeValue::Array(items) => {
            for (index, part) in items.iter().enumerate() {
                let without = items
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != index)
                    .map(|(_, item)| item.clone())
                    .collect();
                if !persists(Spanned::new(span.clone(), DeValue::Array(without))) {
                    return narrow(part, &|replaced| {
                        let mut with = items.clone();
                        with.as_mut()[index] = replaced;
                        persists(Spanned::new(span.clone(), DeValue::Array(with)))
                    });
                }
            }
        }
        _ => {}
    }
    span
}

fn key_span(table: &DeTable<'_>, name: &str) -> Option<Range<usize>> {
    table
        .iter()
        .find(|(key, _)| key.get_ref().as_ref() == name)
        .map(|(key, _)| key.span())
}

/// The field of serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// The field of serde's "unknown field `x`…" message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize)]
    struct Options {
        level: Option<u8>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        #[allow(dead_code, reason = "read only to be validated")]
        name: String,
        #[serde(flatten)]
        options: Options,
    }

    fn errors(source: &str) -> (Vec<String>, Option<Entry>) {
        let (document, syntax) = DeTable::parse_recoverable(source);
        assert!(syntax.is_empty(), "{syntax:?}");
        let document = document.into_inner();
        let mut errors = Errors::new(source, "t.toml");
        let read = deserialize_table::<Entry>(&document, 0..source.len(), &mut errors);
        let lines = errors
            .into_errors()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        (lines, read.value)
    }

    #[test]
    fn every_bad_key_is_placed_even_in_a_flattened_part() {
        let (found, value) = errors("name = \"a\"\nlevel = \"high\"\ncolour = 1\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("t.toml:2:9: level: invalid type"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("t.toml:3:1: unknown field `colour`"),
            "{found:?}"
        );
        assert!(value.is_some(), "what is left reads");
    }

    #[test]
    fn a_good_table_reads_with_its_flattened_part() {
        let (found, value) = errors("name = \"a\"\nlevel = 3\n");
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(value.and_then(|v| v.options.level), Some(3));
    }
}
