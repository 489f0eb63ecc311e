//! The command-line shell: parses arguments, gathers settings from files, the environment and
//! flags, runs one command, and renders its result or its error once, with an exit code.
//!
//! Data goes to stdout (JSON with `--json`); logs, progress and errors go to stderr (errors go
//! to stdout as JSON too with `--json`). Exit codes: 0 success; 1 a package, resolution or
//! integrity failure; 2 a usage, network, store or internal failure.

mod args;
mod cache;
mod commands;
mod config;
mod progress;
mod rollout;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Parser;

pub use args::Cli;
use args::GlobalArgs;

use crate::settings::{ENV_VARS, Settings, SettingsError, Sources};

/// A failure rendered for the user.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub hints: Vec<String>,
    /// `usage`, `package`, `resolution`, `integrity`, `network`, `store`, `internal`.
    pub kind: &'static str,
    pub code: i32,
}

impl Failure {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        let code = match kind {
            "package" | "resolution" | "integrity" => 1,
            _ => 2,
        };
        Failure {
            message: message.into(),
            hints: Vec::new(),
            kind,
            code,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

impl From<SettingsError> for Failure {
    fn from(e: SettingsError) -> Self {
        Failure::new("usage", e.to_string())
            .hint("`webcpm config show` prints every setting and where it came from")
    }
}

/// What every command gets: the global flags and the effective settings.
pub struct Context {
    pub global: GlobalArgs,
    pub settings: Settings,
    pub home: PathBuf,
}

impl Context {
    /// Whether progress may be drawn on stderr.
    pub fn show_progress(&self) -> bool {
        !self.global.json && !self.global.quiet && std::io::stderr().is_terminal()
    }

    /// Prints a line of human output (not with `--json` or `-q`).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.global.json && !self.global.quiet {
            println!("{}", line.as_ref());
        }
    }

    /// Prints a note on stderr (not with `-q`).
    pub fn note(&self, line: impl AsRef<str>) {
        if !self.global.quiet {
            eprintln!("{}", line.as_ref());
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The settings layers for these flags and this process's environment.
pub fn sources(global: &GlobalArgs, flags: Vec<(String, toml::Value, String)>) -> Sources {
    let (system_file, user_file) = config_files(global);
    let mut flags = flags;
    if let Some(url) = &global.registry {
        flags.push((
            "registry.url".into(),
            toml::Value::String(url.clone()),
            "--registry".into(),
        ));
    }
    Sources {
        system_file: Some(system_file),
        user_file,
        env: ENV_VARS
            .iter()
            .filter_map(|(name, _, _)| env_var(name).map(|v| (name.to_string(), v)))
            .collect(),
        flags,
    }
}

/// The system file and the user file: `WEBCPM_SYSTEM_CONFIG` or `/etc/webcpm/config.toml`, and
/// `--config`, `WEBCPM_CONFIG` or `$XDG_CONFIG_HOME/webcpm/config.toml`.
pub fn config_files(global: &GlobalArgs) -> (PathBuf, Option<PathBuf>) {
    let system = env_var("WEBCPM_SYSTEM_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::settings::SYSTEM_FILE));
    let user = global
        .config
        .clone()
        .or_else(|| env_var("WEBCPM_CONFIG").map(PathBuf::from))
        .or_else(|| dirs::config_dir().map(|d| d.join("webcpm/config.toml")));
    (system, user)
}

fn home(global: &GlobalArgs) -> Result<PathBuf, Failure> {
    global
        .home
        .clone()
        .or_else(|| env_var("WEBCPM_HOME").map(PathBuf::from))
        .or_else(|| dirs::data_dir().map(|d| d.join("webcpm")))
        .ok_or_else(|| {
            Failure::new("usage", "cannot tell where the store lives")
                .hint("pass --home DIR or set WEBCPM_HOME")
        })
}

fn init_logging(global: &GlobalArgs) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("webcpm={default},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .without_time()
        .try_init();
}

fn render(failure: &Failure, json: bool) {
    if json {
        let value = serde_json::json!({
            "error": failure.message,
            "kind": failure.kind,
            "hints": failure.hints,
        });
        println!("{value}");
    }
    eprintln!("error: {}", failure.message);
    for hint in &failure.hints {
        eprintln!("  hint: {hint}");
    }
}

/// Runs webcpm with this process's arguments and returns the exit code.
pub fn main() -> i32 {
    let json_requested = std::env::args().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return 0;
            }
            if json_requested {
                let value = serde_json::json!({"error": e.kind().to_string(), "kind": "usage", "hints": []});
                println!("{value}");
            }
            let _ = e.print();
            return 2;
        }
    };
    init_logging(&cli.global);
    // A file-size limit (RLIMIT_FSIZE) must be an error that webcpm reports and cleans up
    // after, like a full disk, not a signal that kills it half-way.
    // SAFETY: setting a signal's disposition to "ignore" before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let json = cli.global.json;
    // `run` waits on one program: a single-threaded runtime starts faster. Everything else
    // (parallel downloads, the registry server) gets worker threads.
    let mut builder = if matches!(cli.command, args::Command::Run(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            render(
                &Failure::new("internal", format!("cannot start: {e}")),
                json,
            );
            return 2;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(failure) => {
            render(&failure, json);
            failure.code
        }
    }
}

/// Builds the context shared by commands.
pub fn context(
    global: &GlobalArgs,
    flags: Vec<(String, toml::Value, String)>,
    webc: Option<crate::package::WebcVersion>,
) -> Result<Context, Failure> {
    let mut settings = Settings::load(&sources(global, flags))?;
    if let Some(webc) = webc {
        settings.forced = Some(crate::policy::Forced {
            webc,
            source: "--webc".into(),
        });
    }
    Ok(Context {
        global: global.clone(),
        settings,
        home: home(global)?,
    })
}
