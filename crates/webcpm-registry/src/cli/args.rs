//! The registry's command line, as clap parses it: `webcpm-registry serve|add|archive|keygen|
//! rollout|token` (also reached as `webcpm registry …`, which runs this binary).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::package::{PackageName, WebcVersion};

#[derive(Debug, Parser)]
#[command(
    name = "webcpm-registry",
    version,
    about = "webcpm's registry: serve packages over the Wasmer registry protocol, fill it, and steer the fleet's rollout"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: RegistryCommand,
}

/// Flags every command takes, before or after the subcommand.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct GlobalArgs {
    /// Machine-readable output on stdout, errors included
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Print nothing but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// More log output on stderr (-vv for debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// `webcpm`'s own global flags, taken and ignored, so that a `webcpm registry …` command
    /// line that gave them (as `webcpm` accepted them there) still runs.
    #[command(flatten)]
    #[allow(dead_code)]
    client: ClientGlobals,
}

/// `webcpm`'s `--home`, `--registry` and `--config`, which no registry command reads.
#[derive(Debug, Args, Clone, Default)]
#[allow(dead_code)]
pub(crate) struct ClientGlobals {
    #[arg(long, global = true, hide = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[arg(long, global = true, hide = true, value_name = "URL")]
    registry: Option<String>,
    #[arg(long, global = true, hide = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// Publish a package directory (with a wasmer.toml) or a .webc file as both WebC v2 and v3
    Add(AddArgs),
    /// Yank a published version: mark it archived, with the reason clients and the web page
    /// show (or, with --undo, not archived). Ranges and `latest` skip it; an exact pin or a
    /// lockfile still installs it, with a warning
    #[command(visible_alias = "archive")]
    Yank {
        #[command(flatten)]
        place: RegistryPlace,
        /// `ns/name@version`
        package: String,
        /// Why (shown on the package's page)
        #[arg(long, value_name = "TEXT", conflicts_with = "undo")]
        reason: Option<String>,
        #[arg(long)]
        undo: bool,
    },
    /// Serve a registry directory over HTTP (GraphQL at /graphql, files at /blobs/)
    Serve(ServeArgs),
    /// Create the keys that sign the rollout policy (a root that clients pin, and a signing
    /// key it endorses) and print the root's public half (for clients' rollout.policy_key; in a
    /// directory of its own, for compile.shared_key); rotate or revoke signing keys
    Keygen {
        /// The key directory (the registry root, or what serve's --policy-keys names)
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
        /// Make a new signing key, endorsed by the root (clients keep their pin)
        #[arg(long, conflicts_with = "revoke")]
        rotate: bool,
        /// Days the root endorses the new signing key for
        #[arg(long, value_name = "DAYS", default_value_t = 90,
              value_parser = clap::value_parser!(u64).range(1..=3650))]
        valid_for: u64,
        /// Revoke a former signing key (hex): clients refuse policies it signs
        #[arg(long, value_name = "KEY")]
        revoke: Option<String>,
        /// The root's secret, when it is kept outside DIR (where to write it, on creation)
        #[arg(long, value_name = "FILE")]
        root_key: Option<PathBuf>,
    },
    /// The fleet's rollout policy: status, percentages, halt, rollback, resume, automation
    #[command(subcommand)]
    Rollout(FleetCommand),
    /// Make and manage publish tokens
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `serve`'s flags.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) place: RegistryPlace,
    /// The address to listen on; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub(crate) listen: SocketAddr,
    /// The URL clients reach this server at, when behind a proxy
    #[arg(long, value_name = "URL")]
    pub(crate) public_url: Option<String>,
    /// The base of the upload URLs this server hands out (default: the public URL). An
    /// upload is kept by the replica that handed out its URL: behind a round-robin, give
    /// each replica its own address here
    #[arg(long, value_name = "URL")]
    pub(crate) upload_url: Option<String>,
    /// Append one line per request to this file
    #[arg(long, value_name = "FILE")]
    pub(crate) access_log: Option<PathBuf>,
    /// The access log's lines: text columns, or one JSON object each
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub(crate) access_log_format: crate::LogFormat,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    /// Allow listening on an address other than loopback
    #[arg(long)]
    pub(crate) public: bool,
    /// Chaos mode: a TOML list of fault rules (failures and lies served on purpose), to
    /// rehearse how clients behave before a rollout
    #[arg(long, value_name = "FILE")]
    pub(crate) faults: Option<PathBuf>,
    /// Answer as the real Wasmer registry does: null sizes, one file behind both nodes of
    /// v2-only versions, a broken version 0.0.0, signed download URLs that expire
    #[arg(long)]
    pub(crate) real_shapes: bool,
    /// With --real-shapes: how long a download URL works, in seconds
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 300,
        requires = "real_shapes"
    )]
    pub(crate) url_ttl: u64,
    /// Seconds a signed rollout policy stays valid
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(4..))]
    pub(crate) policy_ttl: u64,
    /// Let a publish replace a version that is already published
    #[arg(long)]
    pub(crate) allow_republish: bool,
    /// Take outcome reports without a report token (only on a network where every client is
    /// trusted: anyone who reaches the registry could then halt a rollout)
    #[arg(long)]
    pub(crate) open_reports: bool,
    /// Be a pull-through mirror of this registry (its GraphQL URL): a package asked for is
    /// brought from it, checked, and kept; when it is down, what is kept is still served
    #[arg(long, value_name = "URL")]
    pub(crate) mirror: Option<String>,
    /// With --mirror: seconds for which what the upstream said of a package is taken as current
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 300,
        requires = "mirror"
    )]
    pub(crate) mirror_refresh: u64,
}

/// What a request, an address and a token may take of `serve`.
#[derive(Debug, Args)]
pub(crate) struct LimitArgs {
    /// Requests per second from one client address, as RATE or RATE:BURST (0: no limit)
    #[arg(long, value_name = "RATE[:BURST]", default_value = "100:200")]
    pub(crate) rate_limit: crate::Rate,
    /// Requests per second with one publish token, as RATE or RATE:BURST (0: no limit)
    #[arg(long, value_name = "RATE[:BURST]", default_value = "100:200")]
    pub(crate) token_rate_limit: crate::Rate,
    /// Behind a proxy: the client's address is the last one of X-Forwarded-For
    #[arg(long)]
    pub(crate) trust_forwarded_for: bool,
    /// The largest request body in bytes, uploads aside
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub(crate) max_body: usize,
    /// Seconds a handler may take to start its answer
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub(crate) request_timeout: u64,
    /// Seconds a request's headers, or a body, may take to arrive (uploads: four times that)
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub(crate) body_timeout: u64,
    /// Open connections at most
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub(crate) max_connections: usize,
    /// Open connections from one address at most
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(crate) max_connections_per_address: usize,
}

impl LimitArgs {
    pub(crate) fn limits(&self) -> crate::Limits {
        let body_timeout = std::time::Duration::from_secs(self.body_timeout.max(1));
        crate::Limits {
            body: self.max_body,
            body_timeout,
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            per_address: self.rate_limit,
            per_token: self.token_rate_limit,
            trust_forwarded_for: self.trust_forwarded_for,
            max_connections: self.max_connections,
            connections_per_address: self.max_connections_per_address,
            header_timeout: body_timeout.min(std::time::Duration::from_secs(10)),
        }
    }
}

/// Where a registry keeps its state: a directory, and optionally its database and package files
/// elsewhere (shared by replicas).
#[derive(Debug, Args, Clone)]
pub(crate) struct RegistryPlace {
    /// The registry's directory
    #[arg(long, value_name = "DIR")]
    pub(crate) root: PathBuf,
    /// Keep the registry's metadata in PostgreSQL instead of DIR/registry.sqlite (with a
    /// password, better in the environment or a file, which `ps` does not show)
    #[arg(
        long,
        value_name = "postgres://USER@HOST/DB",
        env = "WEBCPM_DATABASE_URL",
        hide_env_values = true
    )]
    pub(crate) database: Option<String>,
    /// A file holding the database URL (a mounted secret)
    #[arg(long, value_name = "FILE", conflicts_with = "database")]
    pub(crate) database_file: Option<PathBuf>,
    /// The directory of the rollout policy's keys, when not DIR (the same secret mounted into
    /// every replica)
    #[arg(long, value_name = "DIR", env = "WEBCPM_POLICY_KEYS")]
    pub(crate) policy_keys: Option<PathBuf>,
    /// Keep package files in an OCI registry instead of DIR/blobs (push credentials in
    /// WEBCPM_OCI_AUTH)
    #[arg(long, value_name = "oci://HOST/REPO")]
    pub(crate) blobs: Option<String>,
}

impl RegistryPlace {
    pub(crate) fn storage(&self) -> Result<crate::Storage, crate::StorageError> {
        let from_file = match &self.database_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map(|text| text.trim().to_string())
                    .map_err(|source| crate::StorageError::Secret {
                        path: path.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let database = from_file.as_deref().or(self.database.as_deref());
        let mut storage = crate::Storage::new(&self.root, database, self.blobs.as_deref())?;
        if let Some(keys) = &self.policy_keys {
            storage.keys = keys.clone();
        }
        Ok(storage)
    }
}

/// Who and why, for every change of the registry's policy.
#[derive(Debug, Args, Clone)]
pub(crate) struct FleetChange {
    #[command(flatten)]
    pub(crate) place: RegistryPlace,
    /// Why (kept in the policy's history)
    #[arg(long, default_value = "")]
    pub(crate) reason: String,
    /// Who (kept in the policy's history) [default: the login name]
    #[arg(long, value_name = "NAME")]
    pub(crate) by: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FleetCommand {
    /// The policy in force, its history, the automation and the live v3/v2 failure rates
    Status {
        #[command(flatten)]
        place: RegistryPlace,
    },
    /// Set the global v3 percentage, or one package's percentage or format
    Set {
        /// 0 to 100
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100),
              required_unless_present_any = ["webc", "clear"])]
        v3_percent: Option<u8>,
        /// Only this package
        #[arg(long, value_name = "NS/NAME")]
        package: Option<PackageName>,
        /// This package's format, whatever its cohort
        #[arg(
            long,
            value_name = "v2|v3",
            requires = "package",
            conflicts_with = "v3_percent"
        )]
        webc: Option<WebcVersion>,
        /// Remove this package's rule
        #[arg(long, requires = "package", conflicts_with_all = ["v3_percent", "webc"])]
        clear: bool,
        #[command(flatten)]
        change: FleetChange,
    },
    /// Freeze the percentage: it may go down, not up, until `resume`
    Halt {
        #[command(flatten)]
        change: FleetChange,
    },
    /// Emergency: v2 first for every package on every client
    Rollback {
        #[command(flatten)]
        change: FleetChange,
    },
    /// Lift a rollback and a halt
    Resume {
        #[command(flatten)]
        change: FleetChange,
    },
    /// What the registry does by itself when v3 fails more often than v2
    Automate {
        #[command(flatten)]
        place: RegistryPlace,
        /// What to do: halt, rollback or off
        #[arg(long, value_name = "ACTION")]
        on_regression: Option<crate::fleet::OnRegression>,
        /// Reports of each format needed before comparing
        #[arg(long, value_name = "N")]
        min_samples: Option<u32>,
        /// Percentage points by which v3 must fail more often
        #[arg(long, value_name = "POINTS")]
        threshold: Option<f64>,
        /// The sliding window, in seconds
        #[arg(long, value_name = "SECONDS")]
        window: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token that may publish into one namespace, or (--reports) one that clients send
    /// outcome reports with (the registry keeps only its hash)
    Create {
        #[command(flatten)]
        place: RegistryPlace,
        /// The namespace the token may publish into (the `ns` of `ns/name`)
        #[arg(long, value_name = "NS", required_unless_present = "reports")]
        namespace: Option<String>,
        /// Who publishes with the token: what `publishedBy` says of the versions it publishes,
        /// and what clients compare to warn of a change of hands (default: the namespace)
        #[arg(long, value_name = "USER", requires = "namespace")]
        user: Option<String>,
        /// A report token instead, for clients' telemetry.report_token
        #[arg(long, conflicts_with = "namespace", requires = "name")]
        reports: bool,
        /// What the report token is for (a fleet, a site), kept with it
        #[arg(long, value_name = "NAME", requires = "reports")]
        name: Option<String>,
    },
    /// Remove a token (its text, or its sha256); a report token's reports go with it
    Revoke {
        #[command(flatten)]
        place: RegistryPlace,
        /// The token, or the sha256 that `token create --json` printed
        #[arg(value_name = "TOKEN")]
        token: String,
    },
}

/// `add`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    pub(crate) place: RegistryPlace,
    /// A directory holding a wasmer.toml, or a .webc file of any version
    pub(crate) path: PathBuf,
    /// The package name, when the package does not say or to override it
    #[arg(long, value_name = "NS/NAME")]
    pub(crate) name: Option<String>,
    /// The version, when the package does not say or to override it
    #[arg(long, value_name = "VERSION")]
    pub(crate) version: Option<String>,
    /// Replace a version that is already published
    #[arg(long)]
    pub(crate) force: bool,
    /// Offer only this format (the other is built and checked, but not offered)
    #[arg(long, value_name = "v2|v3")]
    pub(crate) webc: Option<WebcVersion>,
    /// The publish time to record (RFC 3339), for a copy of a version another registry
    /// published; by default, now
    #[arg(long, value_name = "TIME")]
    pub(crate) published_at: Option<String>,
    /// Who published it (`publishedBy`), for a copy of another registry's version; by default
    /// the namespace
    #[arg(long, value_name = "USER")]
    pub(crate) publisher: Option<String>,
}
