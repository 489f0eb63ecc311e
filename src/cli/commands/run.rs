//! `webcpm run`: installs the package first when the store has no install that answers the
//! request, then runs its command from the precompiled artifact. The warm path touches only the
//! store: no HTTP client, no registry. A local file, directory or URL goes into the store as a
//! blob, is compiled like an install, and runs the same way ([`crate::local`]).

use std::sync::Arc;
use std::time::Instant;

use crate::artifacts::{self, CompileReporter};
use crate::cli::args::RunArgs;
use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::cli::reporters::CompileLines;
use crate::install::{InstallOptions, Network};
use crate::local::{self, LocalError, Target};
use crate::package::{PackageName, PackageSpec, Sha256Digest};
use crate::run::{Launch, Request};
use crate::runtime::{Mount, RunError, Runtime};
use crate::store::{Capability, Store};

/// What the flags give the program of the host, beside what the package was granted.
fn request(ctx: &Context, args: &RunArgs) -> Result<Request, Failure> {
    let mut dirs = Vec::new();
    for capability in crate::cli::host::capabilities(&args.host)? {
        if let Capability::Dir { host, guest } = capability {
            dirs.push(Mount {
                host,
                guest,
                writable: true,
            });
        }
    }
    Ok(Request {
        command: args.command.clone(),
        args: args.args.clone(),
        env: args.env.clone(),
        dirs,
        network: args.host.net || ctx.settings.run.network.val,
        cwd: args.cwd.clone(),
        uses: args.uses.iter().map(|spec| spec.name.clone()).collect(),
        stored_grants: !matches!(args.package, Target::Url(_)),
        forward_host_env: args.host.forward_host_env,
        host_env: std::env::vars().collect(),
        keep_artifacts: ctx.settings.compile_cache().enabled(),
    })
}

/// Whether the store has an install that answers the request.
fn answered(
    ctx: &Context,
    store: &Store,
    spec: &PackageSpec,
) -> Result<bool, crate::store::IndexError> {
    let installed = store.index().installed(&spec.name)?;
    let forced = ctx.settings.format.forced.as_ref();
    Ok(installed
        .as_ref()
        .is_some_and(|i| crate::install::satisfies(i, spec, forced)))
}

/// Installs the package unless an install already answers the request.
async fn ensure_installed(
    ctx: &Context,
    store: &Store,
    spec: &PackageSpec,
    args: &RunArgs,
) -> Result<(), Failure> {
    if answered(ctx, store, spec)? {
        return Ok(());
    }
    let network = Network::offline_if(args.offline);
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

/// The name a local input runs under: `local/<file stem>`.
fn local_name(text: &str) -> PackageName {
    let stem = text
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split(['.', '?'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    format!("local/{stem}")
        .parse()
        .unwrap_or_else(|_| "local/package".parse().expect("a valid name"))
}

fn local_failure(e: LocalError) -> Failure {
    let kind = match &e {
        LocalError::Download { .. } => FailureKind::Network,
        LocalError::Store(_) => FailureKind::Store,
        LocalError::Read { .. } | LocalError::Url(_) => FailureKind::Usage,
        _ => FailureKind::Integrity,
    };
    Failure::new(kind, e.to_string())
}

/// Puts a local path's or a URL's container into the store and compiles its atoms.
async fn import(
    ctx: &Context,
    store: &Arc<Store>,
    runtime: &Runtime,
    args: &RunArgs,
) -> Result<(PackageName, Sha256Digest), Failure> {
    let (text, bytes) = match &args.package {
        Target::Path(path) => (path.display().to_string(), local::read(path)),
        Target::Url(url) => {
            if args.sha256.is_none() {
                ctx.note(format!(
                    "warning: no --sha256 for {}: nothing vouches for these bytes but the server",
                    crate::http::redact(url)
                ));
            }
            let http = crate::http::client(&ctx.settings.http())
                .map_err(|e| Failure::usage(e.to_string()))?;
            let max = ctx.settings.download.max_size.val;
            (
                url.clone(),
                local::download(&http, url, args.sha256, max).await,
            )
        }
        Target::Package(_) => unreachable!("packages are installed, not imported"),
    };
    let bytes = bytes.map_err(local_failure)?;
    let digest = local::store_container(store, bytes, &text).map_err(local_failure)?;
    if ctx.settings.compile_cache().enabled() {
        let reporter: Arc<dyn CompileReporter> = Arc::new(CompileLines {
            quiet: ctx.global.quiet || ctx.global.json,
        });
        let when = artifacts::Recompile::IfMissing;
        let how = artifacts::Compiling {
            tiering: ctx.settings.store.compile_tiering.val,
            ..artifacts::Compiling::local(reporter, when)
        };
        artifacts::prepare(store, runtime, &[digest], &how)
            .await
            .map_err(crate::install::InstallError::from)?;
    }
    Ok((local_name(&text), digest))
}

/// The warm path: an install that answers the request, launched from the store opened
/// read-only, so that a run that only reads never opens a writable SQLite connection. `None`
/// when that cannot be (no store yet, not installed, something to unpack or compile, any
/// error): the caller takes the ordinary path, which writes and says why it failed.
fn warm_launch(
    ctx: &Context,
    runtime: &Runtime,
    (spec, uses): (&PackageSpec, &[PackageSpec]),
    request: &Request,
) -> Option<(Store, Launch)> {
    let store = ctx.configured(Store::open_read_only(&ctx.home).ok()??);
    for spec in std::iter::once(spec).chain(uses) {
        if !answered(ctx, &store, spec).ok()? {
            return None;
        }
    }
    match crate::run::launch(&store, runtime, &spec.name, request) {
        Ok(launch) => Some((store, launch)),
        Err(e) => {
            tracing::debug!("the read-only warm path gave way: {e}");
            None
        }
    }
}

/// The module to run and how: an install's, or a local input's.
async fn launch(
    ctx: &Context,
    store: &Arc<Store>,
    runtime: &Runtime,
    args: &RunArgs,
    request: &Request,
) -> Result<Launch, Failure> {
    for used in &args.uses {
        ensure_installed(ctx, store, used, args).await?;
    }
    if let Target::Package(spec) = &args.package {
        ensure_installed(ctx, store, spec, args).await?;
        // Nothing else runs meanwhile: preparing the module here, on the runtime's thread,
        // saves a thread hand-off on the warm path.
        return Ok(crate::run::launch(store, runtime, &spec.name, request)?);
    }
    let (name, digest) = import(ctx, store, runtime, args).await?;
    Ok(crate::run::launch_blob(
        store, runtime, &name, digest, request,
    )?)
}

/// Which tier of code runs, for `run -v`: baseline code until the optimizer is done, or the
/// final code, and why it had no baseline tier when the baseline compiler refused it.
fn tier(store: &Store, runtime: &Runtime, launch: &Launch) -> String {
    if launch.baseline {
        return format!(
            "tier baseline ({}; Cranelift's code is being compiled in the background)",
            launch.compiler
        );
    }
    let refused = runtime.baseline(launch.abi).and_then(|b| {
        let row = store
            .index()
            .artifact(b.engine_hash(), &launch.atom)
            .ok()??;
        row.error
    });
    match refused {
        Some(why) => format!(
            "tier optimized ({}; no baseline tier: {why})",
            launch.compiler
        ),
        None => format!("tier optimized ({})", launch.compiler),
    }
}

/// Makes FILE this process's standard input, which the program inherits (`--stdin`).
fn stdin_from(file: &std::path::Path) -> Result<(), Failure> {
    use std::os::fd::AsRawFd;
    let opened = std::fs::File::open(file)
        .map_err(|e| Failure::usage(format!("cannot read {} for --stdin: {e}", file.display())))?;
    // SAFETY: dup2 onto fd 0 of this process, before the program (or any reader of stdin)
    // starts; `opened` stays valid for the call and is closed after it.
    if unsafe { libc::dup2(opened.as_raw_fd(), 0) } < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Failure::internal(format!(
            "cannot use {} as stdin: {e}",
            file.display()
        )));
    }
    Ok(())
}

pub(crate) async fn run(ctx: &Context, args: RunArgs) -> Result<ExitStatus, Failure> {
    if let Some((flag, instead)) = args.unsupported.first() {
        return Err(
            Failure::usage(format!("`wasmer run {flag}` has no counterpart in webcpm"))
                .hint(instead),
        );
    }
    if let Some(file) = &args.stdin {
        stdin_from(file)?;
    }
    let runtime = ctx.runtime()?;
    let request = request(ctx, &args)?;
    let started = Instant::now();
    let warm = match &args.package {
        Target::Package(spec) => warm_launch(ctx, &runtime, (spec, &args.uses), &request),
        _ => None,
    };
    // The store stays open (its shared lock held) while the program runs.
    let (store, launch) = match warm {
        Some((store, launch)) => (Arc::new(store), launch),
        None => {
            let store = Arc::new(ctx.store()?);
            let launch = launch(ctx, &store, &runtime, &args, &request).await?;
            (store, launch)
        }
    };
    if let Some(why) = &launch.recompiled {
        ctx.note(format!("note: {why}; compiled it again"));
    }
    if launch.baseline {
        crate::cli::optimizer::start(ctx);
    }
    if ctx.global.verbose > 0 {
        tracing::info!(
            "{} in {:.1} ms ({}, ABI {}, on {}, {})",
            if launch.from_artifact {
                "loaded precompiled artifact"
            } else {
                "compiled"
            },
            started.elapsed().as_secs_f64() * 1000.0,
            launch.options.module_name,
            launch.abi,
            launch.engine,
            tier(&store, &runtime, &launch)
        );
    }

    let (tx, rx) = tokio::sync::oneshot::channel();
    let worker = runtime.clone();
    // WASI on wasmtime waits on futures (a clock, a poll) with whatever tokio runtime the thread
    // has entered, else with a multi-thread runtime of its own (worker threads and all). The
    // program's thread enters this command's single-thread runtime instead, whose driver this
    // thread keeps running while it waits below. Wasmer's WASIX brings its own.
    let handle = (!launch.abi.on_wasmer()).then(tokio::runtime::Handle::current);
    std::thread::spawn(move || {
        let _entered = handle.as_ref().map(|h| h.enter());
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
