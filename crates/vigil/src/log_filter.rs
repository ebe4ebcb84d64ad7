//! The process's log filter: `VIGIL_LOG` when it is set, else the agent config's `[node] log`,
//! else the command's default; a config reload replaces it at once.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

/// The installed filter, replaceable while the process runs. Cheap to clone.
#[derive(Clone)]
pub struct LogFilter {
    handle: reload::Handle<Targets, Registry>,
    /// The command's own filter, in force while the config sets none.
    default: &'static str,
    /// Whether `VIGIL_LOG` set the filter: it then wins over any config.
    from_env: bool,
}

impl LogFilter {
    /// Installs the process's logger to stderr with `VIGIL_LOG`'s filter, else `default`.
    pub fn install(default: &'static str) -> LogFilter {
        let from_env = std::env::var("VIGIL_LOG")
            .ok()
            .and_then(|directives| parse(&directives));
        let from_env_set = from_env.is_some();
        let filter = from_env.unwrap_or_else(|| parse_default(default));
        let (filter, handle) = reload::Layer::new(filter);
        let output = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false);
        // Only a second logger in one process fails here, which the command never installs.
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(output)
            .try_init();
        LogFilter {
            handle,
            default,
            from_env: from_env_set,
        }
    }

    /// Filters by `directives` (the config's `[node] log`; none: the command's default) from
    /// now on, unless `VIGIL_LOG` set the filter. Whether it changed.
    pub fn apply(&self, directives: Option<&str>) -> bool {
        if self.from_env {
            return false;
        }
        let filter = directives
            .and_then(parse)
            .unwrap_or_else(|| parse_default(self.default));
        self.handle.reload(filter).is_ok()
    }
}

/// A filter from directives (`info`, `warn,vigil_cluster=debug`), or why they are not one.
///
/// Directives name a target (a module path) and a level, or a level alone for every target; the
/// filter matches on target prefixes only, with no span or field selectors, so no regular
/// expression engine is linked in for it.
pub fn validate(directives: &str) -> Result<Targets, String> {
    for directive in directives.split(',').map(str::trim) {
        let target = directive.split_once('=').map_or("", |(target, _)| target);
        let is_path = target.split("::").all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        });
        if !target.is_empty() && !is_path {
            return Err(format!(
                "\"{target}\" is not a target (a module path such as vigil_cluster)"
            ));
        }
    }
    directives.parse::<Targets>().map_err(|e| e.to_string())
}

fn parse(directives: &str) -> Option<Targets> {
    validate(directives).ok()
}

/// The command's own default, which is a literal in the program.
fn parse_default(default: &str) -> Targets {
    parse(default).unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN))
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn directives_are_levels_and_module_paths_with_levels() {
        for good in [
            "info",
            "WARN",
            "warn,vigil_cluster=debug",
            "vigil_cluster::driver=trace",
        ] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["vigil=loud", "info,[=", "a b=info", "vigil::=info"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
