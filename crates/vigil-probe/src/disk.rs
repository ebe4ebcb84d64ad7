//! `disk:/PATH` probes: `statvfs` on the path and the used ratio of its file system, counted as `df`
//! does (`used / (used + available)`, so blocks reserved for root count as unavailable).

use std::fmt;
use std::sync::Arc;

use vigil_health::{Probe, ProbeFuture, Report};

use crate::kind::{BuildError, Built, Invalid, Kind, ProbeOptions, Target, max_used};
use crate::util::{error_chain, Usage};

pub(crate) const KIND: Kind = Kind {
    scheme: "disk",
    form: "disk:/PATH (an absolute path)",
    parse,
};

/// The schemes this file parses.
pub(crate) const KINDS: &[Kind] = &[KIND];

/// A validated `disk:` probe: the path and the used ratio above which it fails.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskSpec {
    path: String,
    max_used: f64,
}

fn parse(_target: &str, rest: &str, options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    if rest.is_empty() {
        return Err(Invalid::target("missing path"));
    }
    if !rest.starts_with('/') {
        return Err(Invalid::target(format!("`{rest}` is not an absolute path")));
    }
    Ok(Arc::new(DiskSpec {
        path: rest.to_owned(),
        max_used: max_used(options)?,
    }))
}

impl DiskSpec {
    fn probe(&self) -> DiskProbe {
        DiskProbe { spec: self.clone() }
    }
}

impl Target for DiskSpec {
    fn kind(&self) -> &'static str {
        KIND.scheme
    }

    fn build(&self) -> Result<Built, BuildError> {
        Ok(Built::probe(self.probe()))
    }
}

impl fmt::Display for DiskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "disk:{}", self.path)
    }
}

/// A built disk probe.
pub(crate) struct DiskProbe {
    spec: DiskSpec,
}

impl DiskProbe {
    async fn run(&self) -> Report {
        let path = self.spec.path.clone();
        // statvfs can block (a hung network file system), so keep it off the runtime's threads.
        let stat = tokio::task::spawn_blocking(move || rustix::fs::statvfs(path.as_str())).await;
        let path = &self.spec.path;
        let stat = match stat {
            Ok(Ok(stat)) => stat,
            Ok(Err(errno)) => {
                let error = std::io::Error::from(errno);
                return Report::fail(format!("cannot stat {path}: {error}"))
                    .with_detail("path", path.as_str())
                    .with_error(error);
            }
            Err(join_error) => {
                return Report::fail(format!("cannot stat {path}: {}", error_chain(&join_error)))
                    .with_error(join_error)
            }
        };
        let fragment = stat.f_frsize;
        let blocks = stat.f_blocks;
        let free = stat.f_bfree;
        let available = stat.f_bavail;
        let usage = Usage {
            total: blocks.saturating_mul(fragment),
            used: blocks.saturating_sub(free).saturating_mul(fragment),
            available: available.saturating_mul(fragment),
        };
        usage
            .judge(&format!("disk {path}"), self.spec.max_used)
            .with_detail("path", path.as_str())
    }
}

impl Probe for DiskProbe {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }

    fn kind(&self) -> &'static str {
        KIND.scheme
    }
}
