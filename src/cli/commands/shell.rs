//! `webcpm completions` and `webcpm man`: the command line described for shells and for man.

use clap::CommandFactory;

use crate::cli::args::Cli;
use crate::cli::failure::{ExitStatus, Failure};

pub(crate) fn completions(shell: clap_complete::Shell) -> ExitStatus {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "webcpm", &mut std::io::stdout());
    ExitStatus::Success
}

pub(crate) fn man() -> Result<ExitStatus, Failure> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| Failure::internal(e.to_string()))?;
    Ok(ExitStatus::Success)
}
