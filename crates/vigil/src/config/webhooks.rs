//! `[[webhooks]]`: where the agent posts its events — a URL, the categories and minimum
//! severity wanted, an optional signing secret, and the bounds of delivery (timeout, retries,
//! queue) — validated with every error at its key.

use serde::Deserialize;
use toml::de::DeValue;
use toml::Spanned;
use vigil_api::webhooks::{Category, Severity, WebhookSpec};
use vigil_text::{limits, HumanDuration};

use super::{array_of_tables, deserialize_table, Report};

/// Most attempts after the first a webhook may make for one event.
const MAX_RETRIES: u32 = 20;
/// Most events one webhook may hold waiting.
const MAX_QUEUE: usize = 65_536;
/// A secret shorter than this is refused: it would be guessed.
const MIN_SECRET: usize = 16;

/// One `[[webhooks]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Spanned<String>,
    events: Option<Spanned<Vec<Spanned<String>>>>,
    min_severity: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    timeout: Option<Spanned<HumanDuration>>,
    retries: Option<Spanned<u32>>,
    queue: Option<Spanned<usize>>,
}

/// Validates every `[[webhooks]]` table; the valid ones are returned in file order.
pub(super) fn webhooks(value: &Spanned<DeValue<'_>>, report: &mut Report<'_>) -> Vec<WebhookSpec> {
    let mut specs = Vec::new();
    for (table, span) in array_of_tables(value, "webhooks", "webhook", report) {
        let (raw, removed) = deserialize_table::<RawWebhook>(table, span, report);
        let Some(raw) = raw else { continue };
        if let Some(spec) = raw.validate(report) {
            if removed.is_empty() {
                specs.push(spec);
            }
        }
    }
    specs
}

impl RawWebhook {
    fn validate(self, report: &mut Report<'_>) -> Option<WebhookSpec> {
        let mut ok = true;
        let url = self.url.get_ref().clone();
        match reqwest::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
            Ok(_) => {
                report.at_span(
                    self.url.span(),
                    format!("url: \"{url}\" is not an http:// or https:// URL with a host"),
                );
                ok = false;
            }
            Err(error) => {
                report.at_span(self.url.span(), format!("url: \"{url}\": {error}"));
                ok = false;
            }
        }
        let categories = match &self.events {
            None => Category::ALL.to_vec(),
            Some(events) if events.get_ref().is_empty() => {
                report.at_span(
                    events.span(),
                    "events: empty; leave it out for every event, or name the categories wanted",
                );
                ok = false;
                Vec::new()
            }
            Some(events) => {
                let mut categories = Vec::new();
                for event in events.get_ref() {
                    match event.get_ref().parse::<Category>() {
                        Ok(category) if !categories.contains(&category) => {
                            categories.push(category)
                        }
                        Ok(_) => {}
                        Err(error) => {
                            report.at_span(event.span(), format!("events: {error}"));
                            ok = false;
                        }
                    }
                }
                categories
            }
        };
        let min_severity = match &self.min_severity {
            None => Severity::Info,
            Some(written) => match written.get_ref().parse::<Severity>() {
                Ok(severity) => severity,
                Err(error) => {
                    report.at_span(written.span(), format!("min_severity: {error}"));
                    ok = false;
                    Severity::Info
                }
            },
        };
        if let Some(secret) = &self.secret {
            if secret.get_ref().len() < MIN_SECRET {
                report.at_span(
                    secret.span(),
                    format!(
                        "secret: {} bytes, at least {MIN_SECRET} (vigil keygen makes one)",
                        secret.get_ref().len()
                    ),
                );
                ok = false;
            }
        }
        let timeout = match &self.timeout {
            None => std::time::Duration::from_secs(5),
            Some(written) => match limits::WEBHOOK_TIMEOUT.check(written.get_ref().0) {
                Ok(timeout) => timeout,
                Err(error) => {
                    report.at_span(written.span(), error.to_string());
                    ok = false;
                    std::time::Duration::from_secs(5)
                }
            },
        };
        let retries = self.retries.as_ref().map_or(5, |r| *r.get_ref());
        if retries > MAX_RETRIES {
            let span = self.retries.as_ref().map_or(0..0, Spanned::span);
            report.at_span(span, format!("retries: {retries}, at most {MAX_RETRIES}"));
            ok = false;
        }
        let queue = self.queue.as_ref().map_or(1024, |q| *q.get_ref());
        if !(1..=MAX_QUEUE).contains(&queue) {
            let span = self.queue.as_ref().map_or(0..0, Spanned::span);
            report.at_span(span, format!("queue: {queue}, from 1 to {MAX_QUEUE}"));
            ok = false;
        }
        ok.then(|| WebhookSpec {
            url,
            categories,
            min_severity,
            secret: self.secret.map(Spanned::into_inner),
            timeout,
            retries,
            queue,
        })
    }
}
