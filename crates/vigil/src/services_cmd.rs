//! `vigil services [NAME]`: the registered instances as a running agent sees them, each with its
//! state and the state of each of its checks. The console's `services` prints the same table.

use std::process::ExitCode;

use clap::Args;
use vigil_api::wire;

use crate::client::Agent;
use crate::table::{Table, Tone};
use crate::AgentAddr;

/// `vigil services`'s arguments.
#[derive(Args)]
pub struct ServicesArgs {
    /// Only this service (answered by the agent itself, from its copy of the registry).
    name: Option<String>,
    #[command(flatten)]
    addr: AgentAddr,
}

/// Prints the instances; with NAME, exits 1 when none of them passes.
pub async fn run(args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let agent = Agent::of(&args.addr);
    let (raw, services) = match &args.name {
        Some(name) => {
            let path = format!("/v1/services/{name}");
            let raw = agent.get_cluster(&path).await?;
            let body: wire::Service = agent.decode(&path, raw.clone())?;
            (raw, vec![(body.name, body.instances)])
        }
        None => {
            let raw = agent.get_cluster("/v1/services").await?;
            let body: wire::Services = agent.decode("/v1/services", raw.clone())?;
            (raw, body.services.into_iter().collect())
        }
    };
    if args.addr.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else if services.is_empty() {
        println!("no services registered");
    } else {
        table(&services).print();
    }
    let passing = services
        .iter()
        .flat_map(|(_, instances)| instances)
        .any(|i| i.state == Some(wire::InstanceState::Passing));
    Ok(if args.name.is_none() || passing {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One row per instance: its service, id, address, node, state and each check's state.
pub fn table(services: &[(String, Vec<wire::Instance>)]) -> Table {
    let mut t = Table::new(vec![
        "SERVICE",
        "ID",
        "ADDRESS",
        "NODE",
        "STATE",
        "CHECKS",
        "EPHEMERAL",
    ]);
    for (name, instances) in services {
        for i in instances {
            let state = i.state.map_or("unknown", |s| s.as_str());
            let checks = match i.checks.as_deref() {
                None | Some([]) => "-".to_owned(),
                Some(checks) => checks
                    .iter()
                    .map(|c| format!("{}={}", c.name, c.state.as_str()))
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            t.row(vec![
                (name.clone(), Tone::Plain),
                (i.id.clone(), Tone::Plain),
                (format!("{}:{}", i.address, i.port), Tone::Plain),
                (i.node.clone(), Tone::Plain),
                (state.to_owned(), Tone::of(state)),
                (checks, Tone::Plain),
                (i.ephemeral.to_string(), Tone::Plain),
            ]);
        }
    }
    t
}
