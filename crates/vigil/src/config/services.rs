//! `[[services]]`: service instances on this node, which the agent registers with the cluster's
//! registry when it starts. Each entry is a `POST /v1/services` body written in TOML, validated
//! by the API's own validator ([`vigil_api::validate_registration`]); its errors are placed at
//! the key they name. [`read_registration`] reads one such table, for stack files' `register`
//! tables too.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;
use vigil_api::wire::Registration;
use vigil_api::RegistrationField;
use vigil_text::Errors;

use super::{array_of_tables, Report};

/// Validates every `[[services]]` entry for node `node`; registrations are returned only for
/// entries without errors, in file order. An entry without `id` gets `NAME-ADDRESS:PORT`.
pub(super) fn registrations(
    value: &Spanned<DeValue<'_>>,
    node: &str,
    report: &mut Report<'_>,
) -> Vec<Registration> {
    let mut registrations = Vec::new();
    // (name, id) → line of the entry that registers it first.
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (table, entry_span) in array_of_tables(value, "services", "service", report) {
        if let Some((key, _)) = table.get_key_value("node") {
            report.at_span(
                key.span(),
                "[[services]] registers instances on this node; `node` is not one of its keys \
                 (register an instance of another node through that node's agent)",
            );
            continue;
        }
        let Some(registration) =
            read_registration(table, entry_span.clone(), None, node, &mut report.file)
        else {
            continue;
        };
        let line = report.line_of(entry_span.start);
        let key = (registration.name.clone(), registration.id.clone());
        if let Some(first) = seen.get(&key) {
            let id_written = table.get("id").is_some();
            let at = span_of(table, &entry_span, &RegistrationField::Id, id_written);
            report.at_span(
                at,
                format!(
                    "instance {:?} of service {:?} is already registered by the entry at line {first}; \
                     give each instance an id of its own",
                    registration.id, registration.name
                ),
            );
            continue;
        }
        seen.insert(key, line);
        registrations.push(registration);
    }
    registrations
}

/// The registration one TOML table (whose whole span is `span`) stands for, validated by
/// [`vigil_api::validate_registration`] for node `node`; `None` when something is wrong with it,
/// each problem recorded in `errors` at the key it is about. A table without `name` is named
/// `name` when one is given; one without `id` gets `NAME-ADDRESS:PORT`.
pub(crate) fn read_registration(
    table: &DeTable<'_>,
    span: Range<usize>,
    name: Option<&str>,
    node: &str,
    errors: &mut Errors<'_>,
) -> Option<Registration> {
    let read =
        vigil_text::table::deserialize_table::<serde_json::Value>(table, span.clone(), errors);
    let mut json = read.value.filter(|_| read.removed.is_empty())?;
    let id_written = table.get("id").is_some();
    if let Some(object) = json.as_object_mut() {
        if let Some(name) = name.filter(|_| !object.contains_key("name")) {
            object.insert("name".to_owned(), name.into());
        }
        if !id_written {
            // Without a name, address or port of the right type there is no default; a stand-in
            // lets the validator report what is wrong with those instead of a missing `id`.
            let id = default_id(object).unwrap_or_else(|| "unnamed".to_owned());
            object.insert("id".to_owned(), id.into());
        }
    }
    if let Err(error) = vigil_api::validate_registration(json.clone(), node) {
        errors.at(
            span_of(table, &span, &error.field, id_written),
            error.message,
        );
        return None;
    }
    // The validator read it as a registration; it cannot fail here.
    serde_json::from_value(json).ok()
}

/// `NAME-ADDRESS:PORT` (an IPv6 address in brackets), when the entry has those three.
fn default_id(object: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let name = object.get("name")?.as_str()?;
    let address = object.get("address")?.as_str()?;
    let port = u16::try_from(object.get("port")?.as_u64()?).ok()?;
    Some(format!("{name}-{}", vigil_api::dial_address(address, port)))
}

/// Where in `table` (the entry at `entry`) the error about `field` belongs: the key's value, the
/// check's key for a check, the entry's header when the key is absent (or `id` defaulted).
fn span_of(
    table: &DeTable<'_>,
    entry: &Range<usize>,
    field: &RegistrationField,
    id_written: bool,
) -> Range<usize> {
    if *field == RegistrationField::Id && !id_written {
        return entry.clone();
    }
    let Some(value) = field.key().and_then(|key| table.get(key)) else {
        return entry.clone();
    };
    if let RegistrationField::Check { index, key } = field {
        if let DeValue::Array(checks) = value.get_ref() {
            if let Some(check) = checks.get(*index) {
                return match check.get_ref() {
                    DeValue::Table(check_table) => check_table
                        .get(key.as_str())
                        .or_else(|| check_table.get("probe"))
                        .map_or_else(|| check.span(), Spanned::span),
                    _ => check.span(),
                };
            }
        }
    }
    value.span()
}
