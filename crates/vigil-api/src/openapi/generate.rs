//! The generator of the checked-in document: the [`Doc`] derived from the [`crate::wire`] types and
//! the `#[utoipa::path]` of each handler, and the declarations of the endpoints served by routers
//! of their own. Compiled only with the `openapi` feature, so the shipped binary carries none of
//! utoipa's builders.

use utoipa::openapi::schema::AdditionalProperties;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{Modify, PartialSchema, ToSchema};

use crate::wire;

/// The document as the annotations describe it; `openapi.json` holds its pretty JSON.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "vigil",
        description = "A vigil agent's HTTP API. Every error is JSON `{\"error\": \"...\"}`; \
            mutating endpoints need `Authorization: Bearer <token>` when the agent has one. An \
            agent with a read token answers 401 to any other request without a token (the read \
            token or the API token, as a bearer token, `X-Consul-Token` or `?token=`), but for \
            `/livez`, `/readyz`, `/health/live` and `/health/ready`, which then show the status \
            only.",
    ),
    paths(
        health, ready, live, checks, summary, livez, readyz,
        crate::metrics::metrics_text,
        crate::checks::get_check, crate::checks::put_check, crate::checks::delete_check,
        crate::checks::put_ttl,
        crate::events::events,
        crate::neighbors::list,
        crate::cluster::status, crate::cluster::members,
        crate::cluster::keyring_list, crate::cluster::keyring_change,
        crate::leader::leader,
        crate::services::register, crate::services::deregister,
        crate::maintenance::enter, crate::maintenance::leave,
        crate::maintenance::enter_node, crate::maintenance::leave_node,
        crate::services::list, crate::discovery::get_service,
        crate::catalog::registry, crate::instance_checks::report,
        crate::instance_checks::put_ttl, crate::prometheus_sd::targets,
        crate::snapshot::save, crate::snapshot::restore, crate::reload::reload,
        crate::voters::list, crate::voters::add, crate::voters::remove,
        crate::sessions::create, crate::sessions::list, crate::sessions::one,
        crate::sessions::renew, crate::sessions::end, crate::sessions::hold,
        crate::roles::list_elections, crate::roles::election, crate::roles::campaign,
        crate::roles::resign, crate::roles::list_locks, crate::roles::lock,
        crate::roles::acquire, crate::roles::release,
        crate::consul::agent::agent_self, crate::consul::agent::members,
        crate::consul::agent::services, crate::consul::agent::checks,
        crate::consul::status::leader, crate::consul::status::peers,
        crate::consul::catalog::services, crate::consul::catalog::service,
        crate::consul::catalog::nodes, crate::consul::health::service_health,
        crate::consul::health::service_checks, crate::consul::health::node_health,
        crate::consul::health::state, crate::consul::agent_write::register,
        crate::consul::agent_write::deregister, crate::consul::agent_write::check_update,
        crate::consul::agent_write::check_status, crate::consul::agent_write::maintenance,
        crate::consul::agent_write::node_maintenance,
        openapi_json, dashboard, dashboard_script, dashboard_style,
    ),
    components(schemas(wire::Opening, wire::Lagged, wire::KeyringChange, wire::RoleChanged, vigil_health::Verdict)),
    modifiers(&BearerToken),
)]
pub struct Doc;

/// Declares the bearer token the mutating endpoints ask for.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The schema of the body of `PUT /v1/checks/{name}`, a
/// [`CheckDefinition`](crate::checkdef::CheckDefinition): an object with a `probe`, and the
/// options of its kind beside it (the definition refuses what it does not know).
pub struct CheckDefinitionSchema;

impl PartialSchema for CheckDefinitionSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "A check: `probe` (`http://…`, `tcp://host:port`, `exec:CMD`, `ttl`, …) and \
                 optional `interval`, `timeout`, `critical`, `component`, thresholds and the \
                 options of the probe's kind.",
            ))
            .property(
                "probe",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .build(),
            )
            .required("probe")
            .examples([serde_json::json!({"probe": "ttl", "ttl": "30s", "critical": false})])
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .into()
    }
}

impl ToSchema for CheckDefinitionSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "CheckDefinition".into()
    }
}

/// `GET /v1/openapi.json`.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
#[allow(dead_code)]
fn openapi_json() {}

/// `GET /health`.
#[utoipa::path(get, path = "/health", tag = "probes",
    responses(
        (status = 200, description = "Healthy or degraded", body = wire::Health),
        (status = 503, description = "Starting, unhealthy or stopping", body = wire::Health),
    ))]
#[allow(dead_code)]
fn health() {}

/// `GET /health/ready`.
#[utoipa::path(get, path = "/health/ready", tag = "probes",
    responses(
        (status = 200, description = "Ready: healthy or degraded", body = wire::Ready),
        (status = 503, description = "Not ready", body = wire::Ready),
    ))]
#[allow(dead_code)]
fn ready() {}

/// `GET /health/live`.
#[utoipa::path(get, path = "/health/live", tag = "probes",
    responses(
        (status = 200, description = "Live: not stopping", body = wire::Live),
        (status = 503, description = "Stopping", body = wire::Live),
    ))]
#[allow(dead_code)]
fn live() {}

/// `GET /health/checks`.
#[utoipa::path(get, path = "/health/checks", tag = "probes",
    responses((status = 200, description = "Every check", body = wire::Checks)))]
#[allow(dead_code)]
fn checks() {}

/// `GET /health/summary`.
#[utoipa::path(get, path = "/health/summary", tag = "probes",
    responses((status = 200, description = "Scores and counts", body = wire::Summary)))]
#[allow(dead_code)]
fn summary() {}

/// `GET /livez`.
#[utoipa::path(get, path = "/livez", tag = "probes",
    params(KubeQuery),
    responses(
        (status = 200, description = "`ok`, or the verbose report", content_type = "text/plain; charset=utf-8", body = String),
        (status = 503, description = "Stopping", content_type = "text/plain; charset=utf-8", body = String),
    ))]
#[allow(dead_code)]
fn livez() {}

/// `GET /readyz`.
#[utoipa::path(get, path = "/readyz", tag = "probes",
    params(KubeQuery),
    responses(
        (status = 200, description = "`ok`, or the verbose report", content_type = "text/plain; charset=utf-8", body = String),
        (status = 503, description = "Not ready", content_type = "text/plain; charset=utf-8", body = String),
    ))]
#[allow(dead_code)]
fn readyz() {}

/// The query of `/livez` and `/readyz`, as kube-apiserver takes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct KubeQuery {
    /// One line per check (any value but `false` and `0`).
    verbose: Option<String>,
    /// A check to leave out.
    exclude: Option<String>,
}

/// `GET /`.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "The live dashboard", content_type = "text/html; charset=utf-8", body = String)))]
#[allow(dead_code)]
fn dashboard() {}

/// `GET /assets/app.js`.
#[utoipa::path(get, path = "/assets/app.js", tag = "dashboard",
    responses((status = 200, description = "The dashboard's script", content_type = "text/javascript; charset=utf-8", body = String)))]
#[allow(dead_code)]
fn dashboard_script() {}

/// `GET /assets/style.css`.
#[utoipa::path(get, path = "/assets/style.css", tag = "dashboard",
    responses((status = 200, description = "The dashboard's style", content_type = "text/css; charset=utf-8", body = String)))]
#[allow(dead_code)]
fn dashboard_style() {}
