//! What every backend takes and gives back: the limits on a program, the directories it sees,
//! what to run it with, and why it did not run to an exit code. The same for WASI on wasmtime
//! and WASIX on Wasmer, so that nothing above the runtime knows which engine ran.

use std::path::PathBuf;

/// Limits on a running program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The most linear memory one instance may grow to, in bytes.
    pub max_memory: Option<u64>,
    /// Stop the program after this long.
    pub timeout: Option<std::time::Duration>,
}

/// A host directory made visible to the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// What to run and with what.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The module's name, for messages.
    pub module_name: String,
    /// `argv[0]`.
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// Commands of the package and its dependencies, which a WASIX program finds at
    /// `/bin/<name>` (as under `wasmer run`: bash finds coreutils' `ls`); the first of a name
    /// wins. Empty for WASI programs, which cannot start other programs.
    pub commands: Vec<Command>,
    /// The host's network (WASIX sockets), granted by the user; WASI preview 0 and 1 programs
    /// have no sockets to use it with.
    pub network: bool,
    /// The working directory, a path the program sees (Wasmer only: WASI preview 1 has none).
    pub cwd: Option<String>,
}

/// A command another program may start.
#[derive(Debug, Clone)]
pub struct Command {
    pub name: String,
    pub wasm: bytes::Bytes,
    /// The SHA-256 of `wasm`, as the store knows it.
    pub sha256: [u8; 32],
    /// Its precompiled artifact for the engine that runs it, with the size the index records:
    /// an exec loads it instead of compiling the module.
    pub artifact: Option<(PathBuf, u64)>,
}

/// Why a program did not run to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot set up WASI for `{module}`: {reason}")]
    Setup { module: String, reason: String },
    #[error("cannot mount {host} at {guest}: {reason}")]
    Mount {
        host: PathBuf,
        guest: String,
        reason: String,
    },
    #[error("cannot start `{module}`: {reason}")]
    Link { module: String, reason: String },
    #[error("module `{module}` has no `_start` function: it is not a WASI command")]
    NotACommand { module: String },
    #[error("trap in module `{module}`, function `{function}`: {message}")]
    Trap {
        module: String,
        function: String,
        message: String,
    },
    #[error("`{module}` was interrupted")]
    Interrupted { module: String },
    #[error("`{module}` ran longer than the limit of {seconds} s (run.timeout)")]
    Timeout { module: String, seconds: u64 },
}
