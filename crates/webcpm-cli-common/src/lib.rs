//! What `webcpm` and `webcpm-registry` share at the terminal, so that both speak alike: logs on
//! stderr at the level `-q`/`-v` ask for, usage errors (as JSON too with `--json`), and a failure
//! rendered once: `error: …` and its hints on stderr, and with `--json` the object
//! `{"error", "kind", "hints"}` on stdout. Everything a binary prints about a failure goes
//! through here; each binary keeps its own failure kinds and exit codes.

// The terminal is this crate's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal;

/// Logs on stderr: `error` with `-q`, `warn` by default, `info` with `-v`, `debug` with `-vv`,
/// for webcpm's crates; `extra` adds directives (`crate=level,`) before the default `warn` for
/// everything else. `RUST_LOG` replaces all of it.
pub fn init_logging(quiet: bool, verbose: u8, extra: &str) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("webcpm={level},{extra}warn"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .without_time()
        .try_init();
}

/// How parsing ended without a command to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotParsed {
    /// `--help` or `--version` was printed: exit 0.
    Shown,
    /// A usage error was printed (as JSON too with `--json`), in the `kind` given.
    Usage,
}

/// Parses this process's arguments; on a usage error, says so, with `usage_kind` as the JSON
/// `kind`.
pub fn parse<C: clap::Parser>(usage_kind: &impl serde::Serialize) -> Result<C, NotParsed> {
    let json_requested = std::env::args().any(|a| a == "--json");
    C::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            let _ = e.print();
            return NotParsed::Shown;
        }
        if json_requested {
            print_json(&e.kind().to_string(), usage_kind, &[]);
        }
        let _ = e.print();
        NotParsed::Usage
    })
}

/// A failure, once: as JSON on stdout with `--json`, and always as `error:` and `hint:` lines on
/// stderr.
pub fn render_failure(json: bool, message: &str, kind: &impl serde::Serialize, hints: &[String]) {
    if json {
        print_json(message, kind, hints);
    }
    eprintln!("error: {message}");
    for hint in hints {
        eprintln!("  hint: {hint}");
    }
}

fn print_json(message: &str, kind: &impl serde::Serialize, hints: &[String]) {
    let value = serde_json::json!({"error": message, "kind": kind, "hints": hints});
    println!("{value}");
}
