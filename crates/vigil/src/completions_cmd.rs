//! `vigil completions SHELL`: the shell completion script, generated from the same clap
//! definitions as `--help`, so it never lists a subcommand or option that does not exist.

use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};

/// Which shell to print the completion script for.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell.
    shell: Shell,
}

/// The shells a script is written for.
#[derive(Clone, Copy, ValueEnum)]
enum Shell {
    /// bash: source the script, or install it as /usr/share/bash-completion/completions/vigil.
    Bash,
    /// zsh: install the script as `_vigil` in a directory on $fpath.
    Zsh,
    /// fish: install the script as vigil.fish in ~/.config/fish/completions/.
    Fish,
}

impl From<Shell> for clap_complete::Shell {
    fn from(shell: Shell) -> Self {
        match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// Prints the script for `args.shell` on stdout.
pub fn run(args: &CompletionsArgs) -> ExitCode {
    let mut command = crate::Cli::command();
    clap_complete::generate(
        clap_complete::Shell::from(args.shell),
        &mut command,
        "vigil",
        &mut std::io::stdout().lock(),
    );
    ExitCode::SUCCESS
}
