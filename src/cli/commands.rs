//! One function per command: each builds what it needs from the [`Context`], calls the library,
//! and prints the result (JSON with `--json`).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::args::{Cli, Command, FormatArgs, InstallArgs, RegistryCommand, ResolveArgs, RunArgs};
use super::{Context, Failure, context};
use crate::artifacts::{CompileReporter, PrepareError};
use crate::fetch::{FetchError, Fetcher, Progress, Silent};
use crate::install::{InstallError, InstallOptions, Installer};
use crate::package::PackageSpec;
use crate::registry::{RegistryClient, RegistryError};
use crate::resolver::ResolveError;
use crate::runtime::{Mount, RunError, Runtime};
use crate::server;
use crate::store::{Store, StoreError};

/// Runs the parsed command; returns the exit code.
pub async fn run(cli: Cli) -> Result<i32, Failure> {
    let global = &cli.global;
    match cli.command {
        Command::Install(args) => {
            let ctx = context(global, format_flags(&args.format), args.format.webc)?;
            install(&ctx, args).await
        }
        Command::Resolve(args) => {
            let ctx = context(global, format_flags(&args.format), args.format.webc)?;
            resolve(&ctx, args).await
        }
        Command::Run(args) => {
            let ctx = context(global, format_flags(&args.format), args.format.webc)?;
            run_command(&ctx, args).await
        }
        Command::List => list(&context(global, Vec::new(), None)?),
        Command::Uninstall { package } => {
            let ctx = context(global, Vec::new(), None)?;
            let store = open_store(&ctx)?;
            let removed = store
                .index()
                .remove_install(&package)
                .map_err(|e| store_failure(e.into()))?;
            if !removed {
                return Err(
                    Failure::new("package", format!("{package} is not installed"))
                        .hint("`webcpm list` shows what is installed"),
                );
            }
            if ctx.global.json {
                println!("{}", json!({"uninstalled": package}));
            } else {
                ctx.say(format!("Uninstalled {package}"));
            }
            Ok(0)
        }
        Command::Cache(cmd) => super::cache::run(&context(global, Vec::new(), None)?, cmd).await,
        Command::Config(cmd) => super::config::run(global, cmd),
        Command::Demo => {
            let home = global.home.clone();
            crate::demo::run(home)
                .await
                .map_err(|e| Failure::new("internal", e.to_string()))?;
            Ok(0)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "webcpm", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| Failure::new("internal", e.to_string()))?;
            Ok(0)
        }
        Command::Rollout(cmd) => super::rollout::run(global, cmd).await,
        Command::Registry(cmd) => registry(global.json, global.quiet, cmd).await,
    }
}

fn format_flags(format: &FormatArgs) -> Vec<(String, toml::Value, String)> {
    let mut flags = Vec::new();
    if format.no_fallback {
        flags.push((
            "webc.fallback".to_string(),
            toml::Value::Boolean(false),
            "--no-fallback".to_string(),
        ));
    }
    if format.allow_insecure_http {
        flags.push((
            "download.allow_insecure_http".to_string(),
            toml::Value::Boolean(true),
            "--allow-insecure-http".to_string(),
        ));
    }
    flags
}

pub(super) fn store_failure(e: StoreError) -> Failure {
    let failure = Failure::new("store", e.to_string());
    match e {
        StoreError::Index(crate::store::IndexError::TooNew { .. }) => failure,
        _ => failure.hint("check that the store's directory (--home) is writable and has space"),
    }
}

fn open_store(ctx: &Context) -> Result<Store, Failure> {
    Store::open(&ctx.home).map_err(store_failure)
}

/// Compile lines on stderr.
struct CompileLines {
    quiet: bool,
}

impl CompileReporter for CompileLines {
    fn compiling(&self, atom: &str, size: u64) {
        if !self.quiet {
            eprintln!("Compiling {atom} ({size} bytes of WebAssembly)");
        }
    }

    fn compiled(&self, atom: &str, seconds: f64, outcome: Result<u64, &str>) {
        if !self.quiet {
            match outcome {
                Ok(size) => eprintln!("Compiled {atom} in {seconds:.2}s ({size} bytes native)"),
                Err(reason) => eprintln!("Cannot compile {atom}: {reason}"),
            }
        }
    }
}

/// After an install: when the store has a capacity and is over it, evict what no install uses,
/// least recently used first. Skipped when another process is using the store: it is not worth
/// waiting for, the next command will do it.
fn enforce_capacity(ctx: &Context) -> Result<(), Failure> {
    let store_capacity = ctx.settings.store_max_size()?;
    let compiled_capacity = ctx.settings.compile_cache()?.capacity();
    if store_capacity.is_none() && compiled_capacity.is_none() {
        return Ok(());
    }
    let Some(store) = Store::try_open_exclusive(&ctx.home).map_err(store_failure)? else {
        return Ok(());
    };
    let store = configured(ctx, store)?;
    let engine = engine_hash(ctx)?;
    if let Some(capacity) = compiled_capacity {
        store
            .gc_compiled(&engine, capacity)
            .map_err(store_failure)?;
    }
    let Some(capacity) = store_capacity else {
        return Ok(());
    };
    let report = store.gc(&engine, Some(capacity)).map_err(store_failure)?;
    if report.freed_bytes > 0 {
        tracing::info!(
            "store over its capacity of {capacity} bytes: removed {} unused packages and {} compiled modules",
            report.removed_blobs,
            report.removed_artifacts
        );
    }
    Ok(())
}

/// This engine's compatibility hash, which names its compiled artifacts.
pub(super) fn engine_hash(ctx: &Context) -> Result<String, Failure> {
    Ok(runtime(ctx)?.engine_hash().to_string())
}

fn runtime(ctx: &Context) -> Result<Runtime, Failure> {
    Runtime::new(ctx.settings.limits()?).map_err(|e| Failure::new("internal", e.to_string()))
}

fn store_for_runtime(ctx: &Context) -> Result<Store, Failure> {
    configured(ctx, open_store(ctx)?)
}

/// The store as the settings place it: compiled code where `compile.directory` says.
pub(super) fn configured(ctx: &Context, mut store: Store) -> Result<Store, Failure> {
    if let Some(dir) = ctx.settings.compile_cache()?.directory() {
        store.set_compiled_dir(dir.to_path_buf());
    }
    Ok(store)
}

pub(super) fn installer(ctx: &Context, offline: bool) -> Result<Installer, Failure> {
    let settings = &ctx.settings;
    let http_options = settings.http()?;
    let http = crate::http::client(&http_options).map_err(|e| match e {
        crate::http::HttpError::Client(_) => Failure::new("internal", e.to_string()),
        _ => Failure::new("usage", e.to_string()),
    })?;
    let client = if offline {
        None
    } else {
        Some(
            RegistryClient::new(
                http.clone(),
                &settings.registry_url(),
                settings.token(),
                http_options,
            )
            .map_err(|e| {
                Failure::new("usage", e.to_string())
                    .hint("set the registry with --registry URL or WEBCPM_REGISTRY")
            })?
            .with_retries(settings.fetch()?.retries),
        )
    };
    let progress: Arc<dyn Progress> = if ctx.show_progress() {
        Arc::new(super::progress::Bars::new())
    } else {
        Arc::new(Silent)
    };
    let runtime = if ctx.settings.compile_cache()?.enabled() {
        Some(runtime(ctx)?)
    } else {
        None
    };
    let store = store_for_runtime(ctx)?;
    let mut policy = settings.policy()?;
    policy.rollout.installation_id = store.installation_id().map_err(store_failure)?;
    Ok(Installer {
        store: Arc::new(store),
        runtime,
        compile_reporter: Arc::new(CompileLines {
            quiet: ctx.global.quiet || ctx.global.json,
        }),
        fetcher: Fetcher::new(http, settings.fetch()?, progress).with_registry(client.as_ref()),
        client,
        policy,
        downloads: Arc::new(tokio::sync::Semaphore::new(settings.concurrency()?)),
    })
}

/// Turns an install error into what the user sees.
fn install_failure(e: InstallError) -> Failure {
    let store_error = match &e {
        InstallError::Store(s) | InstallError::Prepare(PrepareError::Store(s)) => Some(s),
        InstallError::Fetch { source, .. } => match &**source {
            FetchError::Store(s) => Some(s),
            _ => None,
        },
        _ => None,
    };
    if store_error.is_some_and(StoreError::is_disk_full) {
        return Failure::new("store", e.to_string()).hint(
            "the disk is full or a file-size limit was reached: free some space (`webcpm cache gc` removes what no install uses) and run it again; nothing partial was kept",
        );
    }
    let kind = match &e {
        InstallError::Fetch { source, .. } => match **source {
            FetchError::Transport { .. } | FetchError::Status { .. } => "network",
            FetchError::Store(_) => "store",
            _ => "integrity",
        },
        InstallError::Registry(r) if r.is_transient() => "network",
        InstallError::Registry(RegistryError::Url(_)) => "usage",
        InstallError::Registry(_) => "resolution",
        InstallError::Store(_) => "store",
        InstallError::Prepare(PrepareError::Container { .. }) => "integrity",
        InstallError::Prepare(_) => "store",
        InstallError::Input(_) => "usage",
        InstallError::Resolve(_) | InstallError::Offline(_) => "resolution",
    };
    let mut failure = Failure::new(kind, e.to_string());
    failure.code = if e.is_package_failure() { 1 } else { 2 };
    match &e {
        InstallError::Fetch { source, .. } => match **source {
            FetchError::HashMismatch { .. }
            | FetchError::SizeMismatch { .. }
            | FetchError::WrongFormat { .. }
            | FetchError::ServesOther { .. }
            | FetchError::TooLong { .. }
            | FetchError::Container { .. } => {
                failure.hint("the registry's file is not what it advertises; nothing was stored. Report it to the registry, or allow the other format (drop --no-fallback / --webc)")
            }
            FetchError::Transport { .. } | FetchError::Status { .. } => {
                failure.hint("check the network and try again")
            }
            FetchError::TooLarge { .. } | FetchError::OverLimit { .. } => failure.hint(
                "raise download.max_size (WEBCPM_MAX_SIZE) if the package is meant to be this large",
            ),
            _ => failure,
        },
        InstallError::Resolve(ResolveError::NotFound(_)) => failure.hint(
            "check the name, and the registry it was asked of (--registry or WEBCPM_REGISTRY)",
        ),
        InstallError::Offline(_) => failure.hint("run it again without --offline"),
        InstallError::Registry(r) if r.is_transient() => failure
            .hint("check the registry URL (--registry or WEBCPM_REGISTRY) and the network"),
        InstallError::Store(_) => {
            failure.hint("check that the store's directory (--home) is writable and has space")
        }
        _ => failure,
    }
}

async fn install(ctx: &Context, args: InstallArgs) -> Result<i32, Failure> {
    let installer = installer(ctx, args.offline)?;
    let options = InstallOptions {
        no_deps: args.format.no_deps,
        offline: args.offline,
        refresh: args.refresh,
    };
    let started = Instant::now();
    let results = futures_util::future::join_all(
        args.packages
            .iter()
            .map(|spec| installer.install(spec, options)),
    )
    .await;
    let mut installed = Vec::new();
    let mut failures = Vec::new();
    for (spec, result) in args.packages.iter().zip(results) {
        match result {
            Ok(report) => {
                if !ctx.global.json {
                    let took = started.elapsed().as_secs_f64();
                    if report.up_to_date {
                        ctx.say(format!(
                            "{}@{} is already installed ({})",
                            report.package, report.version, report.webc
                        ));
                    } else {
                        ctx.say(format!(
                            "Installed {}@{} as WebC {} ({} bytes) in {took:.2}s",
                            report.package, report.version, report.webc, report.size
                        ));
                        if let Some(from) = report.fell_back_from {
                            ctx.say(format!("  fell back from {from}: {}", report.reason));
                        }
                    }
                }
                installed.push(report);
            }
            Err(e) => failures.push((spec.clone(), install_failure(e))),
        }
    }
    if ctx.global.json && failures.is_empty() {
        println!("{}", json!({ "installed": installed }));
    }
    drop(installer);
    enforce_capacity(ctx)?;
    match failures.len() {
        0 => Ok(0),
        1 if installed.is_empty() => Err(failures.pop().expect("one failure").1),
        _ => {
            let code = failures.iter().map(|(_, f)| f.code).max().unwrap_or(2);
            for (spec, f) in &failures {
                eprintln!("error: {spec}: {}", f.message);
                for h in &f.hints {
                    eprintln!("  hint: {h}");
                }
            }
            if ctx.global.json {
                let errors: Vec<_> = failures
                    .iter()
                    .map(|(spec, f)| json!({"package": spec.to_string(), "error": f.message, "kind": f.kind}))
                    .collect();
                println!(
                    "{}",
                    json!({"installed": installed, "error": format!("{} of {} packages failed", failures.len(), args.packages.len()), "kind": failures[0].1.kind, "errors": errors})
                );
            }
            Ok(code)
        }
    }
}

async fn resolve(ctx: &Context, args: ResolveArgs) -> Result<i32, Failure> {
    let installer = installer(ctx, false)?;
    let explanation = installer
        .explain(&args.package, args.format.no_deps)
        .await
        .map_err(install_failure)?;
    if ctx.global.json {
        println!(
            "{}",
            serde_json::to_string(&explanation).expect("plain data serializes")
        );
        return Ok(0);
    }
    println!(
        "{}@{} -> WebC {} ({})",
        explanation.package, explanation.version, explanation.webc, explanation.rule
    );
    if args.explain {
        for c in &explanation.candidates {
            println!("  {:<3} {:<9} {}", c.webc, c.outcome, c.reason);
            if let (Some(url), Some(sha)) = (&c.url, &c.sha256) {
                let size = c
                    .size
                    .map_or("size unknown".into(), |n| format!("{n} bytes"));
                println!("      {url}  sha256:{sha}  {size}");
            }
        }
        for note in &explanation.notes {
            println!("  note: {note}");
        }
        if explanation.tree.len() > 1 {
            println!("  tree:");
            for m in &explanation.tree {
                println!(
                    "    {}{}@{}",
                    "  ".repeat(m.depth as usize),
                    m.package,
                    m.version
                );
            }
        }
    }
    Ok(0)
}

fn list(ctx: &Context) -> Result<i32, Failure> {
    let installs = match Store::open_existing(&ctx.home).map_err(store_failure)? {
        Some(store) => store
            .index()
            .installs()
            .map_err(|e| store_failure(e.into()))?,
        None => Vec::new(),
    };
    if ctx.global.json {
        let packages: Vec<_> = installs
            .iter()
            .map(|i| {
                json!({
                    "package": i.package,
                    "version": i.version.to_string(),
                    "webc": i.webc,
                    "sha256": i.sha256,
                    "size": i.size,
                    "fell_back_from": i.fell_back_from,
                    "reason": i.reason,
                })
            })
            .collect();
        println!("{}", json!({ "packages": packages }));
    } else if installs.is_empty() {
        ctx.say("No packages installed.");
    } else {
        for i in &installs {
            ctx.say(format!(
                "{:<32} {:<12} {}  sha256:{}",
                i.package,
                i.version,
                i.webc,
                &i.sha256.hex()[..12]
            ));
        }
    }
    Ok(0)
}

/// Bad input to the local registry is a package failure (exit 1); its disk, a store failure.
fn publish_failure(e: server::PublishError) -> Failure {
    let kind = if e.is_input() { "package" } else { "store" };
    Failure::new(kind, e.to_string())
}

async fn registry(json_out: bool, quiet: bool, cmd: RegistryCommand) -> Result<i32, Failure> {
    match cmd {
        RegistryCommand::Add {
            root,
            path,
            name,
            version,
            force,
            webc,
        } => {
            let input = |e: crate::package::InputError| Failure::new("package", e.to_string());
            let options = server::AddOptions {
                name: name.as_deref().map(str::parse).transpose().map_err(input)?,
                version: version
                    .as_deref()
                    .map(crate::package::parse_version)
                    .transpose()
                    .map_err(input)?,
                force,
                only: webc,
            };
            let report = tokio::task::spawn_blocking(move || server::add(&root, &path, &options))
                .await
                .map_err(|e| Failure::new("internal", e.to_string()))?
                .map_err(publish_failure)?;
            if json_out {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("plain data serializes")
                );
            } else if !quiet {
                println!(
                    "Published {}@{}: v2 {} ({} bytes), v3 {} ({} bytes)",
                    report.package,
                    report.version,
                    report.v2.sha256,
                    report.v2.size,
                    report.v3.sha256,
                    report.v3.size
                );
            }
            Ok(0)
        }
        RegistryCommand::Archive {
            root,
            package,
            undo,
        } => {
            let spec: PackageSpec = package
                .parse()
                .map_err(|e: crate::package::InputError| Failure::new("usage", e.to_string()))?;
            let crate::package::VersionRequest::Exact(version) = spec.version else {
                return Err(
                    Failure::new("usage", format!("`{package}` names no exact version"))
                        .hint("write it as ns/name@1.2.3"),
                );
            };
            server::set_archived(&root, &spec.name, &version, !undo).map_err(publish_failure)?;
            if json_out {
                println!(
                    "{}",
                    json!({"package": spec.name, "version": version.to_string(), "archived": !undo})
                );
            }
            Ok(0)
        }
        RegistryCommand::Serve {
            root,
            listen,
            public_url,
            access_log,
            public,
            faults,
            real_shapes,
            url_ttl,
        } => {
            let running = server::start(server::ServeOptions {
                root,
                listen,
                public_url,
                access_log,
                allow_public: public,
                faults,
                real_shapes: real_shapes.then(|| std::time::Duration::from_secs(url_ttl)),
            })
            .await
            .map_err(|e| Failure::new("usage", e.to_string()))?;
            println!("listening on {}", running.graphql_url());
            use std::io::Write;
            let _ = std::io::stdout().flush();
            running
                .wait()
                .await
                .map_err(|e| Failure::new("internal", e.to_string()))?;
            Ok(0)
        }
    }
}

/// The exit code of a program that trapped (as a process killed by SIGABRT).
pub const TRAP_EXIT: i32 = 134;
/// The exit code after Ctrl-C.
pub const INTERRUPT_EXIT: i32 = 130;

fn launch_failure(e: crate::run::LaunchError) -> Failure {
    use crate::run::LaunchError;
    match e {
        LaunchError::NotInstalled(ref p) => Failure::new("package", e.to_string())
            .hint(format!("install it with `webcpm install {p}`")),
        LaunchError::Store(_) | LaunchError::Prepare(PrepareError::Store(_)) => {
            Failure::new("store", e.to_string())
                .hint("run `webcpm cache verify` to check the store")
        }
        _ => Failure::new("package", e.to_string()),
    }
}

/// Parses `HOST[:GUEST]`.
fn parse_dir(text: &str) -> Mount {
    let (host, guest) = text.split_once(':').unwrap_or((text, text));
    Mount {
        host: std::path::PathBuf::from(host),
        guest: guest.to_string(),
        writable: true,
    }
}

async fn run_command(ctx: &Context, args: RunArgs) -> Result<i32, Failure> {
    let spec = &args.package;
    let store = Arc::new(store_for_runtime(ctx)?);
    // The warm path touches only the store: no HTTP client, no registry.
    let installed = store
        .index()
        .installed(&spec.name)
        .map_err(|e| store_failure(e.into()))?;
    let satisfied = installed
        .as_ref()
        .is_some_and(|i| crate::install::satisfies(i, spec, ctx.settings.forced.as_ref()));
    if !satisfied {
        let installer = installer(ctx, args.offline)?;
        let report = installer
            .install(
                spec,
                InstallOptions {
                    no_deps: args.format.no_deps,
                    offline: args.offline,
                    refresh: false,
                },
            )
            .await
            .map_err(install_failure)?;
        ctx.note(format!(
            "Installed {}@{} as WebC {}",
            report.package, report.version, report.webc
        ));
    }
    let runtime = runtime(ctx)?;
    let request = crate::run::Request {
        command: args.command.clone(),
        args: args.args.clone(),
        env: args.env.clone(),
        dirs: args.dirs.iter().map(|d| parse_dir(d)).collect(),
        keep_artifacts: ctx.settings.compile_cache()?.enabled(),
    };
    let started = Instant::now();
    // Nothing else runs meanwhile: preparing the module here, on the runtime's thread, saves a
    // thread hand-off on the warm path.
    let launch =
        crate::run::launch(&store, &runtime, &spec.name, &request).map_err(launch_failure)?;
    if let Some(why) = &launch.recompiled {
        ctx.note(format!("note: {why}; compiled it again"));
    }
    tracing::info!(
        "{} in {:.1} ms ({})",
        if launch.from_artifact {
            "loaded precompiled artifact"
        } else {
            "compiled"
        },
        started.elapsed().as_secs_f64() * 1000.0,
        launch.options.module_name
    );

    let (tx, rx) = tokio::sync::oneshot::channel();
    let worker = runtime.clone();
    std::thread::spawn(move || {
        let _ = tx.send(worker.run(&launch.module, launch.options));
    });
    let result = tokio::select! {
        result = rx => result.map_err(|_| Failure::new("internal", "the program's thread died"))?,
        _ = tokio::signal::ctrl_c() => {
            runtime.interrupt();
            return Ok(INTERRUPT_EXIT);
        }
    };
    match result {
        Ok(code) => Ok(code),
        Err(RunError::Interrupted { .. }) => Ok(INTERRUPT_EXIT),
        Err(e @ (RunError::Trap { .. } | RunError::Timeout { .. })) => {
            let mut f = Failure::new("package", e.to_string());
            f.code = TRAP_EXIT;
            Err(f)
        }
        Err(e) => Err(Failure::new("package", e.to_string())),
    }
}
