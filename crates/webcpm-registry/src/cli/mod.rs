//! `webcpm-registry`, the operator's command line: parses arguments, runs one command of
//! `commands`, and renders its result or its `Failure` once, with an exit code (the
//! same codes and `--json` error shape as `webcpm`). This is the one place of the crate that
//! prints: data on stdout, logs and errors on stderr.

mod args;
mod commands;
mod failure;

use webcpm_cli_common::NotParsed;

use args::{Cli, RegistryCommand};
use failure::{ExitStatus, Failure, FailureKind};

/// Parses the arguments; on a usage error, says so (as JSON too with `--json`).
fn parse() -> Result<Cli, ExitStatus> {
    webcpm_cli_common::parse(&FailureKind::Usage).map_err(|not| match not {
        NotParsed::Shown => ExitStatus::Success,
        NotParsed::Usage => ExitStatus::Failed(FailureKind::Usage),
    })
}

/// Runs `webcpm-registry` with this process's arguments and returns the exit code.
pub fn main() -> i32 {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(status) => return status.code(),
    };
    webcpm_cli_common::init_logging(cli.global.quiet, cli.global.verbose, "");
    let json = cli.global.json;
    let status = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(dispatch(cli)),
        Err(e) => Err(Failure::internal(format!("cannot start: {e}"))),
    };
    match status {
        Ok(status) => status.code(),
        Err(failure) => {
            failure.render(json);
            failure.status().code()
        }
    }
}

/// Runs the parsed command.
async fn dispatch(cli: Cli) -> Result<ExitStatus, Failure> {
    let global = &cli.global;
    match cli.command {
        RegistryCommand::Keygen {
            root,
            rotate,
            valid_for,
            revoke,
            root_key,
        } => {
            let options = crate::fleet::KeygenOptions {
                rotate,
                valid_for: std::time::Duration::from_secs(valid_for * 86_400),
                root_key,
            };
            match revoke {
                Some(key) => commands::rollout::revoke_key(global, &root, &key, &options),
                None => commands::rollout::keygen(global, &root, &options),
            }
        }
        // The registry's database may be PostgreSQL, whose client blocks: off the async threads.
        RegistryCommand::Rollout(cmd) => {
            tokio::task::block_in_place(|| commands::rollout::rollout(global, cmd))
        }
        RegistryCommand::Add(args) => commands::add::add(global, args).await,
        RegistryCommand::Yank {
            place,
            package,
            reason,
            undo,
        } => tokio::task::block_in_place(|| {
            commands::add::yank(global, &place, &package, reason.as_deref(), undo)
        }),
        RegistryCommand::Serve(serve) => commands::serve::serve(serve).await,
        RegistryCommand::Token(command) => {
            tokio::task::block_in_place(|| commands::token::token(global, command))
        }
    }
}
