//! `ttl` checks: the watched process reports itself at least this often. Nothing is probed; the
//! engine runs TTL checks itself, so building one gives its TTL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::kind::{no_argument, BuildError, Built, Invalid, Kind, ProbeOptions, Target};

pub(crate) const KINDS: &[Kind] = &[Kind {
    scheme: "ttl",
    form: "ttl (with the ttl option)",
    parse,
}];

/// A validated `ttl` check.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TtlSpec(Duration);

fn parse(target: &str, rest: &str, options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    no_argument(target, rest)?;
    match options.ttl {
        None => Err(Invalid::option(
            "ttl",
            "missing; a ttl check needs one, e.g. 30s",
        )),
        Some(ttl) => crate::limits::TTL
            .check(ttl)
            .map(|ttl| Arc::new(TtlSpec(ttl)) as Arc<dyn Target>)
            .map_err(|error| Invalid::option("ttl", error.to_string())),
    }
}

impl Target for TtlSpec {
    fn kind(&self) -> &'static str {
        KINDS[0].scheme
    }

    fn build(&self) -> Result<Built, BuildError> {
        Ok(Built::Ttl(self.0))
    }

    fn pushed(&self) -> bool {
        true
    }
}

impl fmt::Display for TtlSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}
