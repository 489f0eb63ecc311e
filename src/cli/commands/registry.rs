//! `webcpm registry add|archive|serve|token create`: filling and serving a local registry, and
//! making the tokens that may publish to it (`keygen` and `rollout` are in `registry_rollout`).

use serde_json::json;

use crate::cli::args::{GlobalArgs, RegistryCommand, RegistryPlace, TokenCommand};
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::package::{InputError, PackageSpec, VersionRequest};
use crate::server;

pub async fn registry(global: &GlobalArgs, cmd: RegistryCommand) -> Result<ExitStatus, Failure> {
    match cmd {
        RegistryCommand::Add {
            place,
            path,
            name,
            version,
            force,
            webc,
        } => {
            let options = add_options(name, version, force, webc)?;
            add(global, storage(&place)?, path, options).await
        }
        RegistryCommand::Archive {
            place,
            package,
            undo,
        } => {
            let storage = storage(&place)?;
            tokio::task::block_in_place(|| archive(global, &storage, &package, undo))
        }
        RegistryCommand::Serve {
            place,
            listen,
            public_url,
            upload_url,
            access_log,
            public,
            faults,
            real_shapes,
            url_ttl,
            policy_ttl,
            allow_republish,
        } => {
            serve(server::ServeOptions {
                storage: storage(&place)?,
                listen,
                public_url,
                upload_url,
                access_log,
                allow_public: public,
                faults,
                real_shapes: real_shapes.then(|| std::time::Duration::from_secs(url_ttl)),
                policy_ttl: std::time::Duration::from_secs(policy_ttl),
                allow_republish,
            })
            .await
        }
        RegistryCommand::Token(TokenCommand::Create { place, namespace }) => {
            let storage = storage(&place)?;
            tokio::task::block_in_place(|| create_token(global, &storage, &namespace))
        }
        RegistryCommand::Keygen { .. } | RegistryCommand::Rollout(_) => {
            unreachable!("dispatched to registry_rollout")
        }
    }
}

/// The registry's storage named by `--root`, `--database` and `--blobs`.
fn storage(place: &RegistryPlace) -> Result<server::Storage, Failure> {
    place.storage().map_err(|e| Failure::usage(e.to_string()))
}

fn add_options(
    name: Option<String>,
    version: Option<String>,
    force: bool,
    only: Option<crate::package::WebcVersion>,
) -> Result<server::AddOptions, Failure> {
    let input = |e: InputError| Failure::new(FailureKind::Package, e.to_string());
    Ok(server::AddOptions {
        name: name.as_deref().map(str::parse).transpose().map_err(input)?,
        version: version
            .as_deref()
            .map(crate::package::parse_version)
            .transpose()
            .map_err(input)?,
        force,
        only,
        description: None,
    })
}

async fn add(
    global: &GlobalArgs,
    storage: server::Storage,
    path: std::path::PathBuf,
    options: server::AddOptions,
) -> Result<ExitStatus, Failure> {
    let report = tokio::task::spawn_blocking(move || server::add(&storage, &path, &options))
        .await
        .map_err(|e| Failure::internal(e.to_string()))??;
    if global.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("plain data serializes")
        );
    } else if !global.quiet {
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
    Ok(ExitStatus::Success)
}

fn archive(
    global: &GlobalArgs,
    storage: &server::Storage,
    package: &str,
    undo: bool,
) -> Result<ExitStatus, Failure> {
    let spec: PackageSpec = package
        .parse()
        .map_err(|e: InputError| Failure::usage(e.to_string()))?;
    let VersionRequest::Exact(version) = spec.version else {
        return Err(
            Failure::usage(format!("`{package}` names no exact version"))
                .hint("write it as ns/name@1.2.3"),
        );
    };
    server::set_archived(storage, &spec.name, &version, !undo)?;
    if global.json {
        println!(
            "{}",
            json!({"package": spec.name, "version": version.to_string(), "archived": !undo})
        );
    }
    Ok(ExitStatus::Success)
}

async fn serve(options: server::ServeOptions) -> Result<ExitStatus, Failure> {
    let running = server::start(options)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    println!("listening on {}", running.graphql_url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    running
        .wait()
        .await
        .map_err(|e| Failure::internal(e.to_string()))?;
    Ok(ExitStatus::Success)
}

fn create_token(
    global: &GlobalArgs,
    storage: &server::Storage,
    namespace: &str,
) -> Result<ExitStatus, Failure> {
    let made = server::create_token(storage, namespace)?;
    if global.json {
        println!(
            "{}",
            serde_json::to_string(&made).expect("plain data serializes")
        );
    } else {
        println!("{}", made.token);
        if !global.quiet {
            eprintln!(
                "This token may publish into `{}`; it is shown only now (the registry keeps its hash). Pass it as WEBCPM_TOKEN.",
                made.namespace
            );
        }
    }
    Ok(ExitStatus::Success)
}
