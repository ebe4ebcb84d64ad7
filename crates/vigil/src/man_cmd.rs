//! `vigil man`: manual pages in roff, generated from the same clap definitions as `--help`:
//! vigil(1) and one page per subcommand (vigil-agent(1), vigil-keyring-install(1), …).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};

/// Where the pages go.
#[derive(Args)]
pub struct ManArgs {
    /// Write every page (vigil.1, vigil-agent.1, …) into this directory, created if missing;
    /// without it, print vigil.1 on stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Writes the pages into `args.dir`, or vigil.1 to stdout.
pub fn run(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let command = crate::Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
        }
        None => clap_mangen::Man::new(command)
            .render(&mut std::io::stdout().lock())
            .context("cannot write the page to stdout")?,
    }
    Ok(ExitCode::SUCCESS)
}
