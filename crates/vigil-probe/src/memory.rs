//! `memory` probes: `MemTotal` and `MemAvailable` from `/proc/meminfo` and the used ratio
//! (`(total - available) / total`). Linux only; elsewhere the probe fails saying it cannot read the file.

use std::fmt;
use std::sync::Arc;

use vigil_health::{Probe, ProbeFuture, Report};

use crate::kind::{BuildError, Built, Invalid, Kind, ProbeOptions, Target, max_used, no_argument};
use crate::util::Usage;

pub(crate) const KIND: Kind = Kind {
    scheme: "memory",
    form: "memory",
    parse,
};

/// The schemes this file parses.
pub(crate) const KINDS: &[Kind] = &[KIND];

const MEMINFO: &str = "/proc/meminfo";

/// A validated `memory` probe: the used ratio above which it fails.
#[derive(Clone, Debug, PartialEq)]
pub struct MemorySpec {
    max_used: f64,
}

fn parse(target: &str, rest: &str, options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    no_argument(target, rest)?;
    Ok(Arc::new(MemorySpec {
        max_used: max_used(options)?,
    }))
}

impl MemorySpec {
    fn probe(&self) -> MemoryProbe {
        MemoryProbe {
            max_used: self.max_used,
        }
    }
}

impl Target for MemorySpec {
    fn kind(&self) -> &'static str {
        KIND.scheme
    }

    fn build(&self) -> Result<Built, BuildError> {
        Ok(Built::probe(self.probe()))
    }
}

impl fmt::Display for MemorySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(KIND.scheme)
    }
}

/// A built memory probe.
pub(crate) struct MemoryProbe {
    max_used: f64,
}

impl MemoryProbe {
    async fn run(&self) -> Report {
        // procfs is served from kernel memory: reading it never waits on a device.
        let text = match std::fs::read_to_string(MEMINFO) {
            Ok(text) => text,
            Err(error) => {
                return Report::fail(format!("cannot read {MEMINFO}: {error}")).with_error(error)
            }
        };
        match parse_meminfo(&text) {
            Ok(usage) => usage.judge("memory", self.max_used),
            Err(reason) => Report::fail(format!("cannot use {MEMINFO}: {reason}")),
        }
    }
}

impl Probe for MemoryProbe {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }

    fn kind(&self) -> &'static str {
        KIND.scheme
    }
}

/// Total, used and available bytes from the text of `/proc/meminfo`.
fn parse_meminfo(text: &str) -> Result<Usage, String> {
    let field = |name: &str| -> Result<u64, String> {
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .ok_or_else(|| format!("no {name} line"))?;
        let mut words = line.split_whitespace();
        let value = words
            .next()
            .and_then(|value| value.parse::<u64>().ok())
            .ok_or_else(|| format!("{name} is not a number"))?;
        match words.next() {
            Some("kB") => Ok(value.saturating_mul(1024)),
            None => Ok(value),
            Some(unit) => Err(format!("{name} has an unknown unit `{unit}`")),
        }
    };
    let total = field("MemTotal")?;
    let available = field("MemAvailable")?.min(total);
    Ok(Usage {
        total,
        used: total - available,
        available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n\
                          MemAvailable:    4000000 kB\nBuffers:          100000 kB\n";

    #[test]
    fn parses_meminfo() {
        let usage = parse_meminfo(SAMPLE).expect("sample parses");
        assert_eq!(usage.total, 16_000_000 * 1024);
        assert_eq!(usage.available, 4_000_000 * 1024);
        assert_eq!(usage.used, 12_000_000 * 1024);
        assert!((usage.ratio() - 0.75).abs() < 1e-9);
    }

    #[test]
    fn meminfo_without_mem_available_is_an_error() {
        let error =
            parse_meminfo("MemTotal: 100 kB\nMemFree: 50 kB\n").expect_err("no MemAvailable");
        assert!(error.contains("MemAvailable"), "{error}");
        let error = parse_meminfo("MemTotal: lots kB\n").expect_err("not a number");
        assert!(error.contains("MemTotal"), "{error}");
    }
}
