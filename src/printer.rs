//! The one place the command line writes text to the terminal: data and human output on stdout
//! ([`out!`]), logs, notes and errors on stderr ([`err!`]). Everything else reaches the user
//! through these (or through `tracing`, for logs); the workspace's lints refuse `println!` and
//! `eprintln!` anywhere else, so that `--json` and `-q` have one place to hold.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Arguments;

/// Text from a registry or a package, safe to print: control characters (which could move the
/// cursor or clear the screen) become spaces.
pub(crate) fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Writes text on stdout, as `print!` would.
pub(crate) fn stdout(text: Arguments<'_>) {
    print!("{text}");
}

/// Writes a line on stdout.
pub(crate) fn stdout_line(text: Arguments<'_>) {
    println!("{text}");
}

/// Writes a line on stderr.
pub(crate) fn stderr_line(text: Arguments<'_>) {
    eprintln!("{text}");
}

/// A line on stdout, formatted as `println!` does.
macro_rules! out {
    () => {
        $crate::printer::stdout_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::printer::stdout_line(format_args!($($arg)*))
    };
}

/// Text on stdout without a line end, formatted as `print!` does.
macro_rules! out_text {
    ($($arg:tt)*) => {
        $crate::printer::stdout(format_args!($($arg)*))
    };
}

/// A line on stderr, formatted as `eprintln!` does.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::printer::stderr_line(format_args!($($arg)*))
    };
}

pub(crate) use {err, out, out_text};
