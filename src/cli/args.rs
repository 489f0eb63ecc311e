//! The command line, as clap parses it. This is a contract that scripts rely on: see the
//! "Command line" section of the design and the README.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::package::{PackageName, PackageSpec, WebcVersion};
use crate::settings::env;

#[derive(Debug, Parser)]
#[command(
    name = "webcpm",
    version,
    about = "A package manager for WebAssembly packages in the WebC format",
    long_about = "webcpm installs and runs WebAssembly packages from a Wasmer-compatible registry. \
        Every package version is offered as WebC v2 and v3; webcpm picks one by a configurable \
        priority with fallback, verifies it while downloading, and keeps it in a \
        content-addressed store."
)]
pub(super) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes, before or after the subcommand.
#[derive(Debug, Args, Clone, Default)]
pub(super) struct GlobalArgs {
    /// The store's directory [env: WEBCPM_HOME] [default: the user's data directory + /webcpm]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The registry's GraphQL URL [env: WEBCPM_REGISTRY]
    #[arg(long, global = true, value_name = "URL")]
    pub registry: Option<String>,
    /// The user config file
    #[arg(long, global = true, value_name = "FILE", env = env::CONFIG)]
    pub config: Option<PathBuf>,
    /// Machine-readable output on stdout, errors included
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output on stderr (-vv for debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Install packages (and their dependencies) into the store
    Install(InstallArgs),
    /// Show which version and WebC format a request resolves to, without downloading
    Resolve(ResolveArgs),
    /// Resolve packages and write a lockfile with both formats of every package of each tree
    Lock(LockArgs),
    /// Show, for each install, the newest version its request allows and the newest overall
    Outdated,
    /// Show a package as the registry offers it: every version, and one in detail (its formats,
    /// commands and what they ask for)
    Show {
        /// `ns/name` (the latest version in detail) or `ns/name@request`
        package: PackageSpec,
    },
    /// Write every locked package (both formats) and the lockfile into a directory, for
    /// `install --locked FILE --from DIR` on a machine without the network
    Vendor {
        /// The directory
        dir: PathBuf,
        /// The lockfile
        #[arg(long, value_name = "FILE", default_value = "webcpm.lock")]
        lockfile: PathBuf,
    },
    /// Write a software bill of materials of a lockfile: every package, both distributions'
    /// hashes, the atoms with their SHA-256 and ABI, and the dependencies
    Sbom {
        /// The lockfile
        #[arg(long, value_name = "FILE", default_value = "webcpm.lock")]
        lockfile: PathBuf,
        /// The document's format
        #[arg(long, value_enum, default_value_t = SbomFormat::Cyclonedx)]
        format: SbomFormat,
        /// Write it to this file instead of standard output
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Use only what the store holds; a distribution it lacks is an error
        #[arg(long)]
        offline: bool,
    },
    /// Show what a lockfile holds: each root with its dependencies
    Tree {
        /// The lockfile
        #[arg(long, value_name = "FILE", default_value = "webcpm.lock")]
        lockfile: PathBuf,
    },
    /// Show why a package is in a lockfile: every path from a root to it
    Why {
        /// The package, `namespace/name`
        package: PackageName,
        /// The lockfile
        #[arg(long, value_name = "FILE", default_value = "webcpm.lock")]
        lockfile: PathBuf,
    },
    /// Find packages in the registry whose name or description holds every word
    Search {
        /// The words
        #[arg(required = true, value_name = "WORD")]
        words: Vec<String>,
        /// Show at most this many packages (1 or more)
        #[arg(long, default_value_t = 20, value_name = "N",
              value_parser = clap::value_parser!(u16).range(1..))]
        limit: u16,
    },
    /// Move installs to the newest version their request allows
    Update {
        /// Only these installs (default: all)
        #[arg(value_name = "PACKAGE")]
        packages: Vec<PackageName>,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Run a package's command (installing the package first if needed)
    Run(Box<RunArgs>),
    /// Give a package something of the host for every run (the network, a directory, the
    /// environment), take it back, or list what packages were given
    Grant(GrantArgs),
    /// List installed packages
    List,
    /// Remove an install (its files stay in the store until `cache gc`)
    Uninstall {
        /// The package, `namespace/name`
        package: PackageName,
    },
    /// Inspect and maintain the store
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Show and edit settings, with the layer each value comes from
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Stage WebC v3 by percentage and per package, or roll every install back to v2
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Publish a package directory to the registry, with a token (WEBCPM_TOKEN)
    Publish(PublishArgs),
    /// Keep a token for the registry (`--registry`, or the configured one), read from standard
    /// input: in the OS keychain where there is one, else in credentials.toml (mode 0600)
    /// beside the config file. It is sent to that registry's URL only
    Login {
        /// Keep it in credentials.toml even where there is a keychain
        #[arg(long)]
        no_keychain: bool,
    },
    /// Forget the token kept for the registry (`--registry`, or the configured one)
    Logout,
    /// Run and fill a local registry: runs `webcpm-registry` (serve, add, archive, keygen,
    /// rollout, token) with these arguments
    #[command(disable_help_flag = true)]
    Registry {
        /// `webcpm-registry`'s command and its arguments (`webcpm registry --help` shows them)
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<std::ffi::OsString>,
    },
    /// The whole story on a built-in local registry: publish, resolve, install, run, roll out,
    /// roll back, resume, verify (no network needed)
    Demo,
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

/// How the WebC format is chosen.
#[derive(Debug, Args, Clone, Default)]
pub(super) struct FormatArgs {
    /// Use this WebC format and no other [env: WEBCPM_WEBC]
    #[arg(long, value_name = "v2|v3")]
    pub webc: Option<WebcVersion>,
    /// Do not fall back to the other format when the first cannot be had
    #[arg(long)]
    pub no_fallback: bool,
    /// Do not resolve the packages' dependencies
    #[arg(long)]
    pub no_deps: bool,
    /// Allow plain http to hosts other than loopback [env: WEBCPM_ALLOW_INSECURE_HTTP]
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// The cooldown: choose no version younger than this (7d, 12h; 0: off)
    /// [env: WEBCPM_MIN_RELEASE_AGE]
    #[arg(long, value_name = "AGE")]
    pub min_release_age: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct LockArgs {
    /// Packages to lock: `ns/name`, `ns/name@^1.2`, ...
    #[arg(required = true, value_name = "PACKAGE")]
    pub packages: Vec<PackageSpec>,
    /// The lockfile to write
    #[arg(short, long, value_name = "FILE", default_value = "webcpm.lock")]
    pub output: PathBuf,
    /// Write nothing; fail if the lockfile would change (as `cargo --locked`, `uv lock --check`)
    #[arg(long, alias = "check")]
    pub locked: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub(super) struct InstallArgs {
    /// Packages to install: `ns/name`, `ns/name@1.2.3`, `ns/name@^1.2`, `ns/name@latest`
    #[arg(required_unless_present = "locked", value_name = "PACKAGE")]
    pub packages: Vec<PackageSpec>,
    /// Install exactly what this lockfile holds, with no resolution
    #[arg(long, value_name = "FILE", conflicts_with_all = ["packages", "refresh"])]
    pub locked: Option<PathBuf>,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Use only what the store holds; never ask the registry
    #[arg(long, conflicts_with = "refresh")]
    pub offline: bool,
    /// With --locked: take the packages from this directory (`webcpm vendor`), with no network
    #[arg(long, value_name = "DIR", requires = "locked")]
    pub from: Option<PathBuf>,
    /// Ask the registry even when the installed version satisfies the request
    #[arg(long)]
    pub refresh: bool,
}

impl InstallArgs {
    /// Whether the registry may not be asked: `--offline`, or packages `--from` a directory.
    pub(super) fn offline(&self) -> bool {
        self.offline || self.from.is_some()
    }
}

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// What to run: a package `ns/name[@version]`, a local `./file.webc`, `./module.wasm` or
    /// `./dir` with a wasmer.toml, or a URL of a `.webc`
    #[arg(value_name = "PACKAGE|PATH|URL")]
    pub package: crate::local::Target,
    /// The SHA-256 a URL's bytes must have
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<crate::package::Sha256Digest>,
    /// The command to run (default: the package's entrypoint, or its only command)
    #[arg(long, short = 'e', visible_aliases = ["entrypoint", "command-name"], value_name = "NAME")]
    pub command: Option<String>,
    /// Set an environment variable for the program (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// The program's working directory, a path it sees (default: the command's `cwd`
    /// annotation, else `/`); WASIX and wasi-threads programs only: WASI preview 1 has none
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Read the program's standard input from FILE instead of webcpm's
    #[arg(long, value_name = "FILE")]
    pub stdin: Option<PathBuf>,
    /// Also give a WASIX program this package's commands at /bin/<name>, installing it if
    /// needed (repeatable; as `wasmer run --use`)
    #[arg(long = "use", value_name = "PACKAGE")]
    pub uses: Vec<PackageSpec>,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub unsupported: UnsupportedRunArgs,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Never ask the registry; the package must be installed
    #[arg(long)]
    pub offline: bool,
    /// Arguments for the program, after `--`
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Flags of `wasmer run` that webcpm does not have: accepted, so that each is answered with what
/// to do instead rather than "unexpected argument".
#[derive(Debug, Args, Clone, Default)]
pub(super) struct UnsupportedRunArgs {
    #[arg(long = "include-webc", hide = true, value_name = "WEBC")]
    include_webc: Option<String>,
    #[arg(long = "map-command", hide = true, value_name = "MAPCMD")]
    map_command: Option<String>,
    #[arg(long = "invoke", hide = true, value_name = "FUNCTION")]
    invoke: Option<String>,
    #[arg(long = "stack-size", hide = true, value_name = "BYTES")]
    stack_size: Option<String>,
    #[arg(long = "coredump-on-trap", hide = true, value_name = "PATH")]
    coredump_on_trap: Option<String>,
    #[arg(long = "journal", hide = true, value_name = "PATH")]
    journal: Option<String>,
    #[arg(long = "enable-async-threads", hide = true)]
    enable_async_threads: bool,
}

impl UnsupportedRunArgs {
    /// The first such flag given, and what to do instead.
    pub(super) fn first(&self) -> Option<(&'static str, &'static str)> {
        [
            (self.include_webc.is_some(), "--include-webc", "run the .webc file itself (`webcpm run ./pkg.webc`), or install it from a registry"),
            (self.map_command.is_some(), "--map-command", "a program finds the commands of its package and its dependencies at /bin/<name>"),
            (self.invoke.is_some(), "--invoke", "webcpm runs WASI commands from `_start`; pick a command with --command"),
            (self.stack_size.is_some(), "--stack-size", "the engines' default stack is used"),
            (self.coredump_on_trap.is_some(), "--coredump-on-trap", "a trap names the module and the function; `run -v` says more"),
            (self.journal.is_some(), "--journal", "webcpm does not snapshot programs"),
            (self.enable_async_threads, "--enable-async-threads", "threads run as the engine runs them"),
        ]
        .into_iter()
        .find(|(given, _, _)| *given)
        .map(|(_, flag, instead)| (flag, instead))
    }
}

/// What of the host a program gets, spelt as `wasmer run` spells it. Nothing by default.
#[derive(Debug, Args, Clone, Default)]
pub(super) struct HostArgs {
    /// Give the program the host's network: WASIX sockets may listen, connect and resolve names
    /// (a WASI preview 1 program has no sockets either way) [config: run.network]
    #[arg(long)]
    pub net: bool,
    /// Give the program a host directory, read-write, at GUEST (default: the same path)
    #[arg(long = "dir", value_name = "HOST[:GUEST]", value_parser = parse_dir)]
    pub dirs: Vec<(PathBuf, String)>,
    /// Give the program a host directory, read-write, at GUEST
    #[arg(long = "volume", value_name = "HOST:GUEST", value_parser = parse_volume)]
    pub volumes: Vec<(PathBuf, String)>,
    /// Give the program a host directory, read-write, at GUEST
    #[arg(long = "mapdir", value_name = "GUEST:HOST", value_parser = parse_mapdir)]
    pub mapdirs: Vec<(PathBuf, String)>,
    /// Give the program the host's environment (before the package's and --env's variables)
    #[arg(long)]
    pub forward_host_env: bool,
}

impl HostArgs {
    /// Every directory, however spelt: (host, guest).
    pub(super) fn all_dirs(&self) -> impl Iterator<Item = &(PathBuf, String)> {
        self.dirs.iter().chain(&self.volumes).chain(&self.mapdirs)
    }
}

fn parse_dir(text: &str) -> Result<(PathBuf, String), String> {
    match text.split_once(':') {
        Some((host, guest)) => dir_pair(host, guest, text),
        // The program sees it at the path as written, as before (and as `wasmer run --dir`).
        None if !text.is_empty() => Ok((PathBuf::from(text), text.to_string())),
        None => Err("`--dir` needs a directory".to_string()),
    }
}

fn parse_volume(text: &str) -> Result<(PathBuf, String), String> {
    match text.split_once(':') {
        Some((host, guest)) => dir_pair(host, guest, text),
        None => Err(format!("`{text}` is not HOST:GUEST")),
    }
}

fn parse_mapdir(text: &str) -> Result<(PathBuf, String), String> {
    match text.split_once(':') {
        Some((guest, host)) => dir_pair(host, guest, text),
        None => Err(format!("`{text}` is not GUEST:HOST")),
    }
}

fn dir_pair(host: &str, guest: &str, text: &str) -> Result<(PathBuf, String), String> {
    if host.is_empty() || guest.is_empty() {
        return Err(format!("`{text}` names an empty path"));
    }
    if guest.split('/').any(|part| part == "..") {
        return Err(format!(
            "`{guest}`: a path in the program may not hold `..`"
        ));
    }
    Ok((PathBuf::from(host), guest.to_string()))
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mode").args(["revoke", "list"]))]
pub(super) struct GrantArgs {
    /// The package, `namespace/name` (a local file runs as `local/<file stem>`)
    #[arg(required_unless_present = "list", value_name = "PACKAGE")]
    pub package: Option<PackageName>,
    #[command(flatten)]
    pub host: HostArgs,
    /// Take back what the flags name; with no flag, everything the package was given
    #[arg(long)]
    pub revoke: bool,
    /// List what was granted (to one package, or to every package)
    #[arg(long)]
    pub list: bool,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

#[derive(Debug, Args)]
pub(super) struct ResolveArgs {
    /// The request: `ns/name[@version]`
    pub package: PackageSpec,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Show every candidate format and the reason for each outcome
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum ConfigCommand {
    /// Print every effective value and the layer it came from
    Show,
    /// Print one value
    Get { key: String },
    /// Set a value in the user file (comments are kept)
    Set {
        key: String,
        value: String,
        /// Edit the system file instead
        #[arg(long)]
        system: bool,
    },
    /// Remove a value from the user file
    Unset {
        key: String,
        /// Edit the system file instead
        #[arg(long)]
        system: bool,
    },
}

/// Flags of the rollout commands that change the policy.
#[derive(Debug, Args, Clone, Copy, Default)]
pub(super) struct RolloutEdit {
    /// Edit the system file (fleet-wide) instead of the user file
    #[arg(long)]
    pub system: bool,
    /// Re-point installs using only what the store holds
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum RolloutCommand {
    /// The policy, the pins, and each installed package's format, cohort and deciding rule
    Status,
    #[command(flatten)]
    Change(RolloutChange),
    /// Fetch the registry's policy now and re-point installs to match it (for a timer; safe to
    /// run from many processes at once)
    Sync {
        /// Re-point installs using only what the store holds
        #[arg(long)]
        offline: bool,
    },
}

/// The rollout commands that change the policy.
#[derive(Debug, Subcommand)]
pub(super) enum RolloutChange {
    /// Set the share of packages in the v3 cohort
    Set {
        /// 0 to 100
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
        v3_percent: u8,
        #[command(flatten)]
        edit: RolloutEdit,
    },
    /// Pin a package to a format, whatever its cohort
    Pin {
        package: PackageName,
        #[arg(value_name = "v2|v3")]
        webc: WebcVersion,
        #[command(flatten)]
        edit: RolloutEdit,
    },
    /// Remove a package's pin
    Unpin {
        package: PackageName,
        #[command(flatten)]
        edit: RolloutEdit,
    },
    /// Emergency: v2 first for every package, and re-point every install at its v2 artifact
    Rollback {
        #[command(flatten)]
        edit: RolloutEdit,
    },
    /// Return to the policy in force before the rollback and re-point installs back
    Resume {
        #[command(flatten)]
        edit: RolloutEdit,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum CacheCommand {
    /// Print the store's directory
    Dir,
    /// List the files in the store
    List,
    /// Re-hash every file in the store against the index; remove debris of killed processes
    Verify {
        /// Remove what is wrong and download again what installs need
        #[arg(long)]
        repair: bool,
    },
    /// Compile with Cranelift every module that runs on baseline code only (what an install
    /// with compile.tiering leaves to a background process); waits for one already at work
    Optimize {
        /// Exit at once when another optimizer is at work (how installs start it)
        #[arg(long, hide = true)]
        background: bool,
    },
    /// Remove blobs and compiled code that no install uses (least recently used first, down to
    /// store.max_size when set)
    Gc {
        /// Keep at most this many bytes (default: store.max_size; without it, remove all unused)
        #[arg(long, value_name = "BYTES")]
        max_size: Option<u64>,
    },
    /// Remove everything in the store, installs included
    Clean {
        /// Yes, remove everything
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub(super) struct PublishArgs {
    /// The package directory (holding a wasmer.toml), or a prebuilt WebC v2 or v3 file
    #[arg(default_value = ".", value_name = "DIR|FILE.webc")]
    pub dir: PathBuf,
    /// The package's name, for a .webc file that does not say it (`ns/name`)
    #[arg(long, value_name = "NS/NAME")]
    pub name: Option<PackageName>,
    /// The version, for a .webc file that does not say it
    #[arg(long, value_name = "X.Y.Z")]
    pub version: Option<String>,
    /// Allow plain http to hosts other than loopback [env: WEBCPM_ALLOW_INSECURE_HTTP]
    #[arg(long)]
    pub allow_insecure_http: bool,
}

/// The formats of `sbom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SbomFormat {
    /// CycloneDX 1.6, JSON
    Cyclonedx,
    /// SPDX 2.3, JSON
    Spdx,
}
