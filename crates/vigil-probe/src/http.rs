//! `http://` and `https://` probes: one request per run with reqwest over rustls, judged by the status
//! code and optionally by a substring of the body.
//!
//! The client is built once per probe, goes direct (no proxy from the environment), keeps no idle
//! connections (each run connects afresh, as Consul's checks do) and follows up to 10 redirects.

use std::fmt;
use std::time::Instant;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use vigil_health::{Probe, ProbeFuture, Report, Verdict};

use crate::kind::{BuildError, Built, Invalid, Kind, ProbeOptions, Target};
use crate::util::{error_chain, fmt_elapsed, truncate_on_char_boundary};

/// The kind name for both schemes.
pub(crate) const KIND_NAME: &str = "http";

pub(crate) const HTTP: Kind = Kind {
    scheme: "http",
    form: "http://HOST[:PORT][/PATH]",
    parse,
};

pub(crate) const HTTPS: Kind = Kind {
    scheme: "https",
    form: "https://HOST[:PORT][/PATH]",
    parse,
};

/// The schemes this file parses.
pub(crate) const KINDS: &[Kind] = &[HTTP, HTTPS];

/// How much of the body is read to look for `expect_body`.
const BODY_LIMIT: usize = 64 * 1024;

/// How much of the body a failing report shows.
const BODY_SNIPPET: usize = 200;

/// A validated `http://` or `https://` probe.
#[derive(Clone, PartialEq)]
pub struct HttpSpec {
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: Option<String>,
    expect_status: Option<Vec<u16>>,
    expect_body: Option<String>,
    tls_skip_verify: bool,
    /// CA certificates to trust instead of the built-in web roots (PEM).
    tls_ca: Option<std::path::PathBuf>,
    /// A client certificate chain and its key (PEM), for servers that ask for one.
    tls_client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

fn parse(target: &str, _rest: &str, options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    let url = Url::parse(target).map_err(|error| Invalid::target(error.to_string()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Invalid::target("missing host"));
    }
    let method = match &options.method {
        None => Method::GET,
        Some(method) => Method::from_bytes(method.as_bytes()).map_err(|_| {
            Invalid::option(
                "method",
                format!("`{method}` is not an HTTP method (a token such as GET, HEAD or POST)"),
            )
        })?,
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &options.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Invalid::option("headers", format!("`{name}` is not a valid header name"))
        })?;
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            Invalid::option(
                "headers",
                format!("the value of `{name}` is not a valid header value (control characters?)"),
            )
        })?;
        headers.append(header_name, header_value);
    }
    if let Some(codes) = &options.expect_status {
        if codes.is_empty() {
            return Err(Invalid::option(
                "expect_status",
                "is empty; give at least one status code",
            ));
        }
        if let Some(code) = codes.iter().find(|code| !(100..=599).contains(*code)) {
            return Err(Invalid::option(
                "expect_status",
                format!("{code} is not an HTTP status code (100..=599)"),
            ));
        }
    }
    Ok(Arc::new(HttpSpec {
        url,
        method,
        headers,
        body: options.body.clone(),
        expect_status: options.expect_status.clone(),
        expect_body: options.expect_body.clone(),
        tls_skip_verify: options.tls_skip_verify,
        tls_ca: options.tls_ca.clone(),
        tls_client: options.tls_cert.clone().zip(options.tls_key.clone()),
    }))
}

impl HttpSpec {
    fn probe(&self) -> Result<HttpProbe, BuildError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(self.tls_skip_verify);
        if let Some(ca) = &self.tls_ca {
            let unusable = |reason: String| BuildError(format!("tls_ca {}: {reason}", ca.display()));
            let pem = std::fs::read(ca).map_err(|error| unusable(error.to_string()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|error| unusable(error_chain(&error)))?;
            builder = builder.tls_built_in_root_certs(false);
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some((cert, key)) = &self.tls_client {
            let mut pem = std::fs::read(cert)
                .map_err(|error| BuildError(format!("tls_cert {}: {error}", cert.display())))?;
            pem.extend(
                std::fs::read(key)
                    .map_err(|error| BuildError(format!("tls_key {}: {error}", key.display())))?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|error| BuildError(format!("tls_cert and tls_key: {}", error_chain(&error))))?;
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|error| BuildError(error_chain(&error)))?;
        Ok(HttpProbe {
            client,
            display_url: redacted(&self.url),
            spec: self.clone(),
        })
    }

    /// Passes, warns or fails on the status code alone, with the reason for anything but a pass.
    fn judge_status(&self, status: StatusCode) -> (Verdict, Option<String>) {
        match &self.expect_status {
            Some(codes) if codes.contains(&status.as_u16()) => (Verdict::Pass, None),
            Some(codes) => {
                let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
                (
                    Verdict::Fail,
                    Some(format!("expected status {}", codes.join(" or "))),
                )
            }
            None if status.is_success() => (Verdict::Pass, None),
            None if status == StatusCode::TOO_MANY_REQUESTS => {
                (Verdict::Warn, Some("429 counts as a warning".to_owned()))
            }
            None => (Verdict::Fail, Some("expected a 2xx status".to_owned())),
        }
    }
}

impl Target for HttpSpec {
    fn kind(&self) -> &'static str {
        KIND_NAME
    }

    fn build(&self) -> Result<Built, BuildError> {
        self.probe().map(Built::probe)
    }
}

impl fmt::Display for HttpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(&self.url))
    }
}

impl fmt::Debug for HttpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSpec")
            .field("url", &redacted(&self.url))
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body", &self.body.as_ref().map(String::len))
            .field("expect_status", &self.expect_status)
            .field("expect_body", &self.expect_body)
            .field("tls_skip_verify", &self.tls_skip_verify)
            .field("tls_ca", &self.tls_ca)
            .field("tls_client", &self.tls_client.as_ref().map(|(cert, _)| cert))
            .finish()
    }
}

/// The URL with any password replaced by `***`, for messages.
fn redacted(url: &Url) -> String {
    if url.password().is_some() {
        let mut url = url.clone();
        if url.set_password(Some("***")).is_ok() {
            return url.to_string();
        }
    }
    url.to_string()
}

/// A built HTTP probe: the spec and its client.
pub(crate) struct HttpProbe {
    client: reqwest::Client,
    display_url: String,
    spec: HttpSpec,
}

impl HttpProbe {
    async fn run(&self) -> Report {
        let spec = &self.spec;
        let request_line = format!("{} {}", spec.method, self.display_url);
        let start = Instant::now();
        let mut request = self
            .client
            .request(spec.method.clone(), spec.url.clone())
            .headers(spec.headers.clone());
        if let Some(body) = &spec.body {
            request = request.body(body.clone());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                // The URL is in the message already.
                let reason = error_chain(&error.without_url());
                return Report::fail(format!("{request_line} failed: {reason}")).with_error(reason);
            }
        };
        let status = response.status();
        let (mut verdict, mut problem) = spec.judge_status(status);

        // The body is read only when it is needed: to look for `expect_body`, or to show it when the
        // status already failed. A passing status with no body expectation never waits on the body.
        let mut body = None;
        if spec.expect_body.is_some() || verdict != Verdict::Pass {
            match read_body(&mut response).await {
                Ok(text) => body = Some(text),
                Err(error) if spec.expect_body.is_some() => {
                    verdict = Verdict::Fail;
                    problem = Some(format!("reading the body failed: {}", error_chain(&error)));
                }
                Err(_) => {}
            }
        }
        if let (Some(expected), Some(text)) = (&spec.expect_body, &body) {
            if verdict != Verdict::Fail && !text.contains(expected.as_str()) {
                verdict = Verdict::Fail;
                problem = Some(format!("the body does not contain {expected:?}"));
            }
        }
        let elapsed = fmt_elapsed(start.elapsed());

        let mut message = format!("{request_line} → {status} in {elapsed}");
        if let Some(problem) = problem {
            message.push_str("; ");
            message.push_str(&problem);
        }
        let mut report = Report::new(verdict, message).with_detail("status", status.as_u16());
        if verdict != Verdict::Pass {
            if let Some(mut text) = body {
                truncate_on_char_boundary(&mut text, BODY_SNIPPET);
                report = report.with_detail("body", text);
            }
        }
        report
    }
}

/// Reads up to [`BODY_LIMIT`] bytes of the body, as text (invalid UTF-8 replaced).
async fn read_body(response: &mut reqwest::Response) -> Result<String, reqwest::Error> {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_LIMIT {
        match response.chunk().await? {
            Some(chunk) => {
                let room = BODY_LIMIT - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl Probe for HttpProbe {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }

    fn kind(&self) -> &'static str {
        KIND_NAME
    }
}
