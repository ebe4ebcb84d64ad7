//! What `vigil up` and `vigil down` register stack services with: a stack service's `register`
//! table read as a `POST /v1/services` body by the reader of the agent's `[[services]]`
//! ([`crate::config::read_registration`], so [`vigil_api::validate_registration`] judges it and
//! each error is placed at its key), and a running agent's API, found and authorized the way the
//! other commands find theirs (`--addr`/`VIGIL_ADDR`, `--token`/`VIGIL_TOKEN`), as the registry.

use std::ops::Range;
use std::time::Duration;

use clap::Args;
use reqwest::{Method, StatusCode};
use toml::de::DeTable;
use vigil_text::Errors;
use vigil_up::register::{Instance, Pending, Reader, Registration, Registry};

use crate::client::{Agent, Answer, UNREACHABLE_HINT};

/// The node validation gives a registration: the instance is on the node of the agent that
/// registers it, which only that agent knows, and nothing validated depends on it.
const AGENT_NODE: &str = "agent";

/// How long one registration or deregistration may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The agent `vigil up` registers a stack's services with, and `vigil down` deregisters them from.
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Base URL of the agent that registers services with a `register` table.
    #[arg(long, env = "VIGIL_ADDR", default_value = "http://127.0.0.1:8081")]
    addr: String,
    /// API token of that agent.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Reads `register` tables as registrations of the agent's API.
pub struct StackReader;

impl Reader for StackReader {
    fn read(
        &self,
        service: &str,
        table: &DeTable<'_>,
        span: Range<usize>,
        errors: &mut Errors<'_>,
    ) -> Option<Registration> {
        if let Some((key, _)) = table.get_key_value("node") {
            errors.at(
                key.span(),
                "register: the instance is registered on the node of the agent `vigil up` \
                 registers it with; `node` is not one of its keys",
            );
            return None;
        }
        let registration =
            crate::config::read_registration(table, span, Some(service), AGENT_NODE, errors)?;
        Some(Registration {
            instance: Instance {
                name: registration.name.clone(),
                id: registration.id.clone(),
            },
            body: serde_json::to_value(&registration).ok()?,
        })
    }
}

/// A running agent's `POST /v1/services` and `DELETE /v1/services/{name}/{id}`.
pub struct AgentRegistry {
    agent: Agent,
}

impl AgentRegistry {
    /// The agent `args` name.
    pub fn new(args: &AgentArgs) -> AgentRegistry {
        AgentRegistry {
            agent: Agent::new(
                args.addr.trim_end_matches('/').to_owned(),
                args.token.clone(),
                REQUEST_TIMEOUT,
                UNREACHABLE_HINT,
            ),
        }
    }

    /// Why the agent refused, with how to give a token when it wanted one.
    fn refusal(answer: &Answer) -> String {
        let hint = if answer.status == StatusCode::UNAUTHORIZED {
            " (give the agent's API token with --token or VIGIL_TOKEN)"
        } else {
            ""
        };
        format!(
            "the agent at {} answered {}: {}{hint}",
            answer.url,
            answer.status,
            answer.reason()
        )
    }
}

impl Registry for AgentRegistry {
    fn register<'a>(&'a self, registration: &'a Registration) -> Pending<'a> {
        Box::pin(async move {
            let answer = self
                .agent
                .send_json(Method::POST, "/v1/services", &registration.body)
                .await
                .map_err(|e| format!("{e:#}"))?;
            if answer.status.is_success() {
                Ok(())
            } else {
                Err(Self::refusal(&answer))
            }
        })
    }

    fn deregister<'a>(&'a self, instance: &'a Instance) -> Pending<'a> {
        Box::pin(async move {
            let path = instance_path(instance)?;
            let answer = self
                .agent
                .send(Method::DELETE, &path)
                .await
                .map_err(|e| format!("{e:#}"))?;
            // 404: the registry no longer holds it, which is what was asked.
            if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
                Ok(())
            } else {
                Err(Self::refusal(&answer))
            }
        })
    }
}

/// `/v1/services/{name}/{id}`, each part percent-encoded: a name may hold `?`, `#` or `%`.
fn instance_path(instance: &Instance) -> Result<String, String> {
    let mut url = reqwest::Url::parse("http://agent/v1/services").map_err(|e| e.to_string())?;
    url.path_segments_mut()
        .map_err(|()| "cannot build the instance's path".to_owned())?
        .push(&instance.name)
        .push(&instance.id);
    Ok(url.path().to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match vigil_up::parse::parse_with(text, "stack.toml", Path::new("/srv"), &StackReader) {
            Ok(_) => panic!("expected errors in:\n{text}"),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_register_table_is_a_registration_with_the_agents_defaults() {
        let text = "\
[services.api]
command = [\"api\"]
[services.api.register]
address = \"127.0.0.1\"
port = 8080
tags = [\"v2\"]
deregister_critical_after = \"1m\"
[[services.api.register.checks]]
probe = \"http://127.0.0.1:8080/health\"
interval = \"2s\"
[services.db]
command = [\"db\"]
register = { name = \"postgres\", id = \"db-1\", address = \"127.0.0.1\", port = 5432 }
[services.cache]
command = [\"cache\"]
register = { address = \"127.0.0.1\", port = 6379, checks = [] }
";
        let stack =
            vigil_up::parse::parse_with(text, "stack.toml", Path::new("/srv"), &StackReader)
                .expect("valid");
        let register = |i: usize| stack.services[i].register.clone().expect("registered");
        let api = register(0);
        assert_eq!(
            api.instance,
            Instance {
                name: "api".into(),
                id: "api-127.0.0.1:8080".into()
            }
        );
        assert_eq!(api.body["tags"], serde_json::json!(["v2"]));
        assert_eq!(
            api.body["checks"][0]["probe"],
            "http://127.0.0.1:8080/health"
        );
        let db = register(1);
        assert_eq!(db.instance.name, "postgres");
        assert_eq!(db.instance.id, "db-1");
        assert!(
            db.body.get("checks").is_none(),
            "no `checks`: the agent's default TCP check"
        );
        assert_eq!(register(2).body["checks"], serde_json::json!([]));
    }

    #[test]
    fn every_problem_of_a_register_table_is_placed_at_its_key() {
        let text = "\
[services.api]
command = [\"api\"]
[services.api.register]
address = \"127.0.0.1\"
port = 70000
[services.web]
command = [\"web\"]
[services.web.register]
address = \"127.0.0.1\"
port = 8081
deregister_critical_after = \"soon\"
[services.worker]
command = [\"worker\"]
[services.worker.register]
address = \"127.0.0.1\"
port = 8082
colour = \"red\"
[services.probe]
command = [\"probe\"]
[services.probe.register]
address = \"127.0.0.1\"
port = 8083
[[services.probe.register.checks]]
probe = \"tcp://localhost\"
[services.elsewhere]
command = [\"elsewhere\"]
register = { address = \"127.0.0.1\", port = 8084, node = \"n2\" }
[services.flat]
command = [\"flat\"]
register = \"api\"
";
        assert_eq!(
            errors(text),
            [
                "stack.toml:5:8: port must be 1 to 65535, not 70000",
                "stack.toml:11:29: deregister_critical_after: invalid duration \"soon\": not a number followed by a unit (write e.g. \"500ms\", \"30s\", \"1m30s\")",
                "stack.toml:17:10: invalid body: unknown field `colour`, expected one of `name`, `id`, `address`, `port`, `tags`, `node`, `ephemeral`, `checks`, `deregister_critical_after`",
                "stack.toml:24:9: checks[0].probe: invalid tcp target `tcp://localhost`: missing port; expected tcp://HOST:PORT (IPv6 as tcp://[::1]:PORT)",
                "stack.toml:27:50: register: the instance is registered on the node of the agent `vigil up` registers it with; `node` is not one of its keys",
                "stack.toml:30:12: register: invalid type: string, expected a table",
            ]
        );
    }

    #[test]
    fn two_services_registering_one_instance_are_refused() {
        let text = "\
[services.a]
command = [\"a\"]
register = { name = \"api\", id = \"api-1\", address = \"127.0.0.1\", port = 8080 }
[services.b]
command = [\"b\"]
register = { name = \"api\", id = \"api-1\", address = \"127.0.0.1\", port = 8081 }
";
        assert_eq!(
            errors(text),
            ["stack.toml:6:12: service \"b\" registers service api instance api-1, as service \"a\" does; give it an `id` of its own"]
        );
    }

    #[test]
    fn an_instance_path_is_percent_encoded() {
        let instance = Instance {
            name: "a?b".into(),
            id: "x#1%".into(),
        };
        assert_eq!(
            instance_path(&instance).expect("a path"),
            "/v1/services/a%3Fb/x%231%25"
        );
    }
}
