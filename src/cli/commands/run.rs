//! `webcpm run`: installs the package first when the store has no install that answers the
//! request, then runs its command from the precompiled artifact. The warm path touches only the
//! store: no HTTP client, no registry.

use std::time::Instant;

use crate::cli::args::RunArgs;
use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::install::{InstallOptions, Network};
use crate::runtime::{Mount, RunError};
use crate::store::Store;

/// Parses `HOST[:GUEST]`.
fn parse_dir(text: &str) -> Mount {
    let (host, guest) = text.split_once(':').unwrap_or((text, text));
    Mount {
        host: std::path::PathBuf::from(host),
        guest: guest.to_string(),
        writable: true,
    }
}

/// Installs the package unless an install already answers the request.
async fn ensure_installed(ctx: &Context, store: &Store, args: &RunArgs) -> Result<(), Failure> {
    let spec = &args.package;
    let installed = store.index().installed(&spec.name)?;
    let forced = ctx.settings.format.forced.as_ref();
    if installed
        .as_ref()
        .is_some_and(|i| crate::install::satisfies(i, spec, forced))
    {
        return Ok(());
    }
    let network = if args.offline {
        Network::Offline
    } else {
        Network::Online
    };
    let options = InstallOptions {
        no_deps: args.format.no_deps,
        network,
        refresh: false,
    };
    let report = ctx.installer(network)?.install(spec, options).await?;
    ctx.note(format!(
        "Installed {}@{} as WebC {}",
        report.package, report.version, report.webc
    ));
    Ok(())
}

pub async fn run(ctx: &Context, args: RunArgs) -> Result<ExitStatus, Failure> {
    let store = ctx.store()?;
    ensure_installed(ctx, &store, &args).await?;
    let runtime = ctx.runtime()?;
    let request = crate::run::Request {
        command: args.command.clone(),
        args: args.args.clone(),
        env: args.env.clone(),
        dirs: args.dirs.iter().map(|d| parse_dir(d)).collect(),
        keep_artifacts: ctx.settings.compile_cache().enabled(),
    };
    let started = Instant::now();
    // Nothing else runs meanwhile: preparing the module here, on the runtime's thread, saves a
    // thread hand-off on the warm path.
    let launch = crate::run::launch(&store, &runtime, &args.package.name, &request)?;
    if let Some(why) = &launch.recompiled {
        ctx.note(format!("note: {why}; compiled it again"));
    }
    tracing::info!(
        "{} in {:.1} ms ({}, ABI {}, on {})",
        if launch.from_artifact {
            "loaded precompiled artifact"
        } else {
            "compiled"
        },
        started.elapsed().as_secs_f64() * 1000.0,
        launch.options.module_name,
        launch.abi,
        launch.engine
    );

    let (tx, rx) = tokio::sync::oneshot::channel();
    let worker = runtime.clone();
    std::thread::spawn(move || {
        let _ = tx.send(worker.run(&launch.module, launch.options));
    });
    let result = tokio::select! {
        result = rx => result.map_err(|_| Failure::internal("the program's thread died"))?,
        _ = tokio::signal::ctrl_c() => {
            runtime.interrupt();
            return Ok(ExitStatus::Interrupted);
        }
    };
    match result {
        Ok(code) => Ok(ExitStatus::Program(code)),
        Err(RunError::Interrupted { .. }) => Ok(ExitStatus::Interrupted),
        Err(e @ (RunError::Trap { .. } | RunError::Timeout { .. })) => {
            Err(Failure::new(FailureKind::Package, e.to_string()).with_status(ExitStatus::Trapped))
        }
        Err(e) => Err(Failure::new(FailureKind::Package, e.to_string())),
    }
}
