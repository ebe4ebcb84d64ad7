//! `GET /v1/openapi.json`: the OpenAPI 3 document of the whole HTTP API, described by the
//! [`crate::wire`] types and the `#[utoipa::path]` of each handler.
//!
//! The document is checked in as `crates/vigil-api/openapi.json` (pretty-printed) instead of being
//! rendered by the agent, to keep the binary small: utoipa's derives expand to builder code (one
//! function of 10–22 KiB per operation), about 1 MiB of machine code in the release binary, only
//! to produce bytes that change with the source alone. So utoipa and the annotations are compiled
//! only with the `openapi` feature, which the shipped binary leaves off. The build script drops
//! the file's whitespace between tokens, which gives the bytes utoipa's `to_json` renders, and the
//! agent serves those as they are.
//!
//! A test regenerates the document from the annotations and fails when the file differs from it.
//! `cargo test --workspace` runs it: vigil-api's dev-dependency on itself turns the feature on
//! for its tests. After changing an endpoint or a wire type, refresh the file with
//! `VIGIL_WRITE_OPENAPI=1 cargo test -p vigil-api --features openapi openapi` and commit it with
//! the change.
//!
//! The probe endpoints and the dashboard are served by routers of their own (`vigil_health::http`,
//! the dashboard module), so the generator describes them by declarations without a body.
//! The cluster, leader and registry endpoints exist only on an agent in a cluster.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

#[cfg(feature = "openapi")]
mod generate;

#[cfg(feature = "openapi")]
pub use generate::{CheckDefinitionSchema, Doc};

/// `/v1/openapi.json`.
pub(crate) fn routes() -> Router {
    Router::new().route("/v1/openapi.json", get(serve))
}

/// The document as JSON: `openapi.json` without the whitespace between its tokens.
pub fn json() -> &'static str {
    include_str!(concat!(env!("OUT_DIR"), "/openapi.json"))
}

async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` of the document names a schema it defines.
    #[test]
    fn every_reference_resolves() {
        let doc: serde_json::Value = serde_json::from_str(json()).expect("the document is JSON");
        let schemas = &doc["components"]["schemas"];
        let text = json();
        let mut rest = text;
        let mut seen = 0;
        while let Some(at) = rest.find("\"#/components/schemas/") {
            rest = &rest[at + "\"#/components/schemas/".len()..];
            let name = &rest[..rest.find('"').expect("a closing quote")];
            assert!(schemas.get(name).is_some(), "{name} is not defined");
            seen += 1;
        }
        assert!(seen > 10, "only {seen} references");
    }

    /// The checked-in document is the one the annotations describe, and the agent serves it in
    /// the compact form utoipa renders.
    #[cfg(feature = "openapi")]
    #[test]
    fn checked_in_document_is_current() {
        use utoipa::OpenApi;

        const REFRESH: &str =
            "VIGIL_WRITE_OPENAPI=1 cargo test -p vigil-api --features openapi openapi";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let doc = Doc::openapi();
        let pretty = doc.to_pretty_json().expect("the document renders") + "\n";
        if std::env::var_os("VIGIL_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &pretty).expect("openapi.json is writable");
            return;
        }
        let file = std::fs::read_to_string(path).unwrap_or_default();
        if let Some((line, (ours, theirs))) = pretty
            .lines()
            .chain(std::iter::repeat(""))
            .zip(file.lines().chain(std::iter::repeat("")))
            .take(pretty.lines().count().max(file.lines().count()))
            .enumerate()
            .find(|(_, (ours, theirs))| ours != theirs)
        {
            panic!(
                "crates/vigil-api/openapi.json is stale: line {} is {theirs:?}, the annotations \
                 make it {ours:?}. Refresh it with `{REFRESH}` and commit it.",
                line + 1
            );
        }
        assert!(
            pretty == file,
            "crates/vigil-api/openapi.json is stale (line ends or the last newline); refresh it with `{REFRESH}`"
        );
        assert!(
            json() == doc.to_json().expect("the document renders"),
            "the served document is not the compact form of openapi.json (build.rs)"
        );
    }
}
