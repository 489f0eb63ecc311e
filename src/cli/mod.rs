//! The command-line shell: parses arguments, builds the [`context::Context`] of one command from
//! settings files, the environment and flags, dispatches to that command's file in
//! [`commands`], and renders its result or its [`failure::Failure`] once, with an exit code.
//!
//! Inside `cli/` the flow is one-way too: `args` → `context` (settings, store, installer,
//! reporters) → `follow` (the registry's policy and outcome reports around commands) →
//! `commands/*` → `failure` (the one mapping of errors to exit codes).
//!
//! Data goes to stdout (JSON with `--json`); logs, progress and errors go to stderr (errors go
//! to stdout as JSON too with `--json`).

mod args;
mod commands;
mod config_edit;
mod context;
mod failure;
mod follow;
mod host;
mod lockfile;
mod optimizer;
mod publishers;
mod registry_bin;
mod reporters;
mod requests;
mod yanked;

use webcpm_cli_common::NotParsed;

use crate::fleet::reports::Phase;
use crate::install::Network;
use args::Cli;
use args::{CacheCommand, Command, GlobalArgs, RolloutCommand};
use context::Context;
use failure::{ExitStatus, Failure, FailureKind};
use follow::Wait;

fn init_logging(global: &GlobalArgs) {
    // Wasmer reports how a WASIX program ended on stderr itself, as `wasmer run` shows it; its
    // log of the same event would say it twice. `-v` shows Wasmer's warnings too.
    let wasmer = match global.verbose {
        0 => "wasmer_wasix=off,",
        _ => "",
    };
    webcpm_cli_common::init_logging(global.quiet, global.verbose, wasmer);
}

/// Parses the arguments; on a usage error, says so (as JSON too with `--json`).
fn parse() -> Result<Cli, ExitStatus> {
    webcpm_cli_common::parse(&FailureKind::Usage).map_err(|not| match not {
        NotParsed::Shown => ExitStatus::Success,
        NotParsed::Usage => ExitStatus::Failed(FailureKind::Usage),
    })
}

/// Runs webcpm with this process's arguments and returns the exit code.
pub(crate) fn main() -> i32 {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(status) => return status.code(),
    };
    init_logging(&cli.global);
    if let Command::Registry { args } = cli.command {
        let failure = registry_bin::forward(&cli.global, args);
        failure.render(cli.global.json);
        return failure.status.code();
    }
    // A file-size limit (RLIMIT_FSIZE) must be an error that webcpm reports and cleans up
    // after, like a full disk, not a signal that kills it half-way.
    // SAFETY: setting a signal's disposition to "ignore" before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let json = cli.global.json;
    // `run` waits on one program, and `install` on downloads (their files are written and
    // their packages compiled on threads of their own): a single-threaded runtime starts
    // faster. Everything else (the demo, the other commands) gets worker threads.
    let mut builder = if matches!(cli.command, Command::Run(_) | Command::Install(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let status = match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(dispatch(cli)),
        Err(e) => Err(Failure::internal(format!("cannot start: {e}"))),
    };
    match status {
        Ok(status) => status.code(),
        Err(failure) => {
            failure.render(json);
            failure.status.code()
        }
    }
}

/// Runs `cache ...`.
async fn cache_command(ctx: &Context, cmd: CacheCommand) -> Result<ExitStatus, Failure> {
    use commands::{cache, cache_verify};
    match cmd {
        CacheCommand::Dir => Ok(cache::dir(ctx)),
        CacheCommand::List => cache::list(ctx),
        CacheCommand::Verify { repair } => cache_verify::verify(ctx, repair).await,
        CacheCommand::Gc { max_size } => cache::gc(ctx, max_size),
        CacheCommand::Clean { yes } => cache::clean(ctx, yes),
        CacheCommand::Optimize { background } => {
            tokio::task::block_in_place(|| cache::optimize(ctx, background))
        }
    }
}

/// Runs the parsed command.
async fn dispatch(cli: Cli) -> Result<ExitStatus, Failure> {
    use commands::*;
    let global = &cli.global;
    let plain = || Context::new(global, Vec::new(), None);
    match cli.command {
        Command::Install(args) => {
            let (ctx, lock) = install::context(global, &args)?;
            let network = Network::offline_if(args.offline());
            follow::follow(&ctx, Wait::Normal, network, false).await;
            let names = install::names(&args, lock.as_ref());
            let result = install::install(&ctx, lock, args).await;
            follow::record(&ctx, &names, Phase::Install, &result);
            result
        }
        Command::Lock(args) => {
            let ctx = Context::with_format(global, &args.format)?;
            follow::follow(&ctx, Wait::Normal, Network::Online, false).await;
            lock::lock(&ctx, args).await
        }
        Command::Outdated => outdated::outdated(&plain()?).await,
        Command::Search { words, limit } => {
            search::search(&plain()?, &words, usize::from(limit)).await
        }
        Command::Sbom {
            lockfile,
            format,
            output,
            offline,
        } => sbom::sbom(global, &lockfile, format, output.as_deref(), offline).await,
        Command::Tree { lockfile } => tree::tree(&plain()?, &lockfile),
        Command::Vendor { dir, lockfile } => vendor::vendor(global, &dir, &lockfile).await,
        Command::Show { package } => show::show(&plain()?, &package).await,
        Command::Why { package, lockfile } => tree::why(&plain()?, &lockfile, &package),
        Command::Update { packages, format } => {
            let ctx = Context::with_format(global, &format)?;
            follow::follow(&ctx, Wait::Normal, Network::Online, false).await;
            let result = update::update(&ctx, &packages).await;
            follow::record(&ctx, &packages, Phase::Install, &result);
            result
        }
        Command::Resolve(args) => {
            let ctx = Context::with_format(global, &args.format)?;
            follow::follow(&ctx, Wait::Normal, Network::Online, false).await;
            resolve::resolve(&ctx, args).await
        }
        Command::Run(args) => {
            let ctx = Context::with_format(global, &args.format)?;
            follow::follow(&ctx, Wait::Tight, Network::offline_if(args.offline), false).await;
            let names: Vec<_> = match &args.package {
                crate::local::Target::Package(spec) => vec![spec.name.clone()],
                _ => Vec::new(),
            };
            let result = run::run(&ctx, *args).await;
            follow::record(&ctx, &names, Phase::Run, &result);
            result
        }
        Command::Grant(args) => grant::grant(&plain()?, args),
        Command::List => list::list(&plain()?),
        Command::Uninstall { package } => uninstall::uninstall(&plain()?, &package),
        Command::Cache(cmd) => cache_command(&plain()?, cmd).await,
        Command::Config(cmd) => config::config(global, cmd),
        Command::Rollout(RolloutCommand::Status) => rollout_status::status(&plain()?),
        Command::Rollout(RolloutCommand::Sync { offline }) => {
            rollout_sync::sync(&plain()?, offline).await
        }
        Command::Rollout(RolloutCommand::Change(cmd)) => rollout::change(global, cmd).await,
        Command::Publish(args) => {
            let ctx = Context::new(global, publish::flags(&args), None)?;
            publish::publish(&ctx, args).await
        }
        Command::Login { no_keychain } => login::login(&plain()?, !no_keychain),
        Command::Logout => login::logout(&plain()?),
        Command::Registry { args } => Err(registry_bin::forward(global, args)),
        Command::Demo => demo::demo(global.home.clone()).await,
        Command::Completions { shell } => Ok(shell::completions(shell)),
        Command::Man => shell::man(),
    }
}
