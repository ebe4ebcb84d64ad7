//! The dependency graph of a stack: cycle detection (with the cycle's path, for error messages),
//! dependency levels (the "waves" a wave-by-wave start would use) and the reverse order in which a
//! stack is stopped.
//!
//! Groups are nodes of their own: a service depending on a group depends on each member.

use crate::stack::{GroupId, ServiceId, Stack, Target};

/// A node of the graph: a service or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// A service.
    Service(ServiceId),
    /// A group (its edges lead to its members).
    Group(GroupId),
}

impl Node {
    /// The node's name in the stack.
    pub fn name(self, stack: &Stack) -> &str {
        match self {
            Node::Service(id) => &stack.service(id).name,
            Node::Group(id) => &stack.group(id).name,
        }
    }
}

fn edges(stack: &Stack, node: Node) -> Vec<Node> {
    match node {
        Node::Service(id) => stack
            .service(id)
            .depends_on
            .iter()
            .map(|d| match d.target {
                Target::Service(s) => Node::Service(s),
                Target::Group(g) => Node::Group(g),
            })
            .collect(),
        Node::Group(id) => stack
            .group(id)
            .members
            .iter()
            .map(|&m| Node::Service(m))
            .collect(),
    }
}

fn index(stack: &Stack, node: Node) -> usize {
    match node {
        Node::Service(id) => id.0,
        Node::Group(id) => stack.services.len() + id.0,
    }
}

/// A dependency cycle, if there is one: the path from a node back to itself, first node repeated
/// at the end (`a → b → a` is `[a, b, a]`). Nodes are visited in file order, so the answer is
/// stable for a given file.
pub fn find_cycle(stack: &Stack) -> Option<Vec<Node>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let count = stack.services.len() + stack.groups.len();
    let mut marks = vec![Mark::New; count];
    let roots = (0..stack.services.len())
        .map(|i| Node::Service(ServiceId(i)))
        .chain((0..stack.groups.len()).map(|i| Node::Group(GroupId(i))));
    for root in roots {
        if marks[index(stack, root)] != Mark::New {
            continue;
        }
        // Iterative depth-first search: the path, and for each node on it the edges left to try.
        let mut path: Vec<Node> = vec![root];
        let mut pending: Vec<Vec<Node>> = vec![edges(stack, root)];
        marks[index(stack, root)] = Mark::OnPath;
        while let Some(next) = pending.last_mut().and_then(|p| {
            if p.is_empty() {
                None
            } else {
                Some(p.remove(0))
            }
        }) {
            match marks[index(stack, next)] {
                Mark::OnPath => {
                    let start = path.iter().position(|&n| n == next).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                Mark::Done => {}
                Mark::New => {
                    marks[index(stack, next)] = Mark::OnPath;
                    path.push(next);
                    pending.push(edges(stack, next));
                }
            }
            while pending.last().is_some_and(Vec::is_empty) {
                pending.pop();
                if let Some(done) = path.pop() {
                    marks[index(stack, done)] = Mark::Done;
                }
            }
        }
        while let Some(done) = path.pop() {
            marks[index(stack, done)] = Mark::Done;
        }
    }
    None
}

/// The services a service waits for, groups replaced by their members, without repeats.
pub fn service_deps(stack: &Stack, id: ServiceId) -> Vec<ServiceId> {
    let mut deps = Vec::new();
    for dependency in &stack.service(id).depends_on {
        let members: &[ServiceId] = match dependency.target {
            Target::Service(ref s) => std::slice::from_ref(s),
            Target::Group(g) => &stack.group(g).members,
        };
        for &m in members {
            if !deps.contains(&m) {
                deps.push(m);
            }
        }
    }
    deps
}

/// Each service's level: 0 without dependencies, else one more than its deepest dependency. A
/// wave-by-wave start runs level 0, then level 1, and so on. The stack must be acyclic.
pub fn levels(stack: &Stack) -> Vec<usize> {
    let n = stack.services.len();
    let mut level: Vec<Option<usize>> = vec![None; n];
    // Every service's level is settled after at most n rounds, since the graph is acyclic.
    for _ in 0..=n {
        let mut changed = false;
        for i in 0..n {
            if level[i].is_some() {
                continue;
            }
            let deps = service_deps(stack, ServiceId(i));
            let known: Option<Vec<usize>> = deps.iter().map(|d| level[d.0]).collect();
            if let Some(known) = known {
                level[i] = Some(known.into_iter().max().map_or(0, |deepest| deepest + 1));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    level.into_iter().map(|l| l.unwrap_or(0)).collect()
}

/// `services` in the order they are stopped: batches of the same level, deepest level first, so
/// every service stops after everything that depends on it. Services of a batch may stop at once.
pub fn stop_batches(stack: &Stack, services: &[ServiceId]) -> Vec<Vec<ServiceId>> {
    let level = levels(stack);
    let deepest = services.iter().map(|s| level[s.0]).max().unwrap_or(0);
    (0..=deepest)
        .rev()
        .map(|l| {
            services
                .iter()
                .copied()
                .filter(|s| level[s.0] == l)
                .collect::<Vec<_>>()
        })
        .filter(|batch| !batch.is_empty())
        .collect()
}

/// A cycle written for people: `a → masters → m1 → a`.
pub fn describe_cycle(stack: &Stack, cycle: &[Node]) -> String {
    cycle
        .iter()
        .map(|n| match n {
            Node::Service(_) => n.name(stack).to_owned(),
            Node::Group(_) => format!("group {}", n.name(stack)),
        })
        .collect::<Vec<_>>()
        .join(" → ")
}
