//! `GET /`: the live dashboard, a page and its script and style, embedded in the binary.
//!
//! The page reads the same JSON endpoints as any client (`/health/*`, `/v1/members`,
//! `/v1/leader`, `/v1/services`, `/v1/checks/{name}`) and follows `/v1/events`; nothing is rendered on the
//! server, so the dashboard costs an agent nothing until someone opens it.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

/// Assets change only with the binary, so a short cache keeps reloads cheap without serving an
/// old script after an upgrade for long.
const CACHE: &str = "public, max-age=60";

/// The dashboard's routes: `/`, `/assets/app.js`, `/assets/style.css`. `clustered` tells the page
/// whether the cluster endpoints exist.
pub fn routes(clustered: bool) -> Router {
    let page = INDEX.replace("{cluster}", if clustered { "true" } else { "false" });
    Router::new()
        .route(
            "/",
            get(move || {
                let page = page.clone();
                async move { ([(header::CACHE_CONTROL, CACHE)], Html(page)) }
            }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, CACHE),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn serves_the_page_and_the_assets_it_links() {
        for (path, kind, needle) in [
            ("/", "text/html", "data-cluster=\"true\""),
            ("/assets/app.js", "text/javascript", "EventSource"),
            ("/assets/style.css", "text/css", "--ok"),
        ] {
            let response = routes(true)
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert!(content_type.starts_with(kind), "{path}: {content_type}");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(String::from_utf8_lossy(&body).contains(needle), "{path}");
        }
    }
}
