//! Every environment variable webcpm reads, in one list. The README documents each of them (a
//! test checks), the flag-shaped ones are read by clap through the constants below, and the
//! others set a config key in the environment layer.

/// The store's directory (`--home`).
pub const HOME: &str = "WEBCPM_HOME";
/// The user config file (`--config`).
pub const CONFIG: &str = "WEBCPM_CONFIG";
/// The time the cooldown is measured from (RFC 3339); unset: now.
pub const NOW: &str = "WEBCPM_NOW";
/// The system config file.
pub const SYSTEM_CONFIG: &str = "WEBCPM_SYSTEM_CONFIG";
/// One WebC format and no other (`--webc`).
pub const WEBC: &str = "WEBCPM_WEBC";

/// One variable: its name, the config key it sets (`None`: not a config key), what it is.
pub struct EnvVar {
    pub name: &'static str,
    pub key: Option<&'static str>,
    pub about: &'static str,
}

const fn var(name: &'static str, key: Option<&'static str>, about: &'static str) -> EnvVar {
    EnvVar { name, key, about }
}

use super::keys;

/// Credentials for the OCI registries webcpm pushes to.
pub const OCI_AUTH: &str = "WEBCPM_OCI_AUTH";

/// Every environment variable webcpm reads.
pub const ENV_VARS: &[EnvVar] = &[
    var(
        OCI_AUTH,
        None,
        "`user:password` or a token for pushing to OCI registries (`compile.shared`, `registry serve --blobs`)",
    ),
    var(HOME, None, "the store's directory (--home)"),
    var(
        NOW,
        None,
        "resolve as of this time (RFC 3339) instead of now: the cooldown's clock, to reproduce a resolution",
    ),
    var(
        "WEBCPM_MIN_RELEASE_AGE",
        Some(keys::MIN_RELEASE_AGE),
        "the cooldown: how old a version must be to be chosen (7d, 12h; 0: off)",
    ),
    var(CONFIG, None, "the user config file (--config)"),
    var(
        SYSTEM_CONFIG,
        None,
        "the system config file (default /etc/webcpm/config.toml)",
    ),
    var(
        "WEBCPM_REGISTRY",
        Some(keys::REGISTRY_URL),
        "the registry's GraphQL URL (--registry)",
    ),
    var(
        "WEBCPM_TOKEN",
        Some(keys::REGISTRY_TOKEN),
        "a bearer token for the registry",
    ),
    var(
        "WEBCPM_REPORT_TOKEN",
        Some(keys::REPORT_TOKEN),
        "the token outcome reports are sent with (`webcpm-registry token create --reports`)",
    ),
    var(
        "WEBCPM_CA_FILE",
        Some(keys::CA_FILE),
        "a PEM file of CAs trusted on top of the system's",
    ),
    var(WEBC, None, "force one WebC format, v2 or v3 (--webc)"),
    var(
        "WEBCPM_WEBC_PRIORITY",
        Some(keys::PRIORITY),
        "format order, e.g. `v2,v3`",
    ),
    var("WEBCPM_FALLBACK", Some(keys::FALLBACK), "true or false"),
    var("WEBCPM_V3_PERCENT", Some(keys::V3_PERCENT), "0 to 100"),
    var(
        "WEBCPM_ROLLOUT_SOURCE",
        Some(keys::ROLLOUT_SOURCE),
        "whose rollout to follow: registry, local or auto",
    ),
    var(
        "WEBCPM_POLICY_KEY",
        Some(keys::POLICY_KEY),
        "the registry's policy key (hex ed25519)",
    ),
    var(
        "WEBCPM_POLICY_URL",
        Some(keys::POLICY_URL),
        "the registry's policy URL",
    ),
    var(
        "WEBCPM_ROLLOUT_REFRESH",
        Some(keys::POLICY_REFRESH),
        "seconds a fetched policy is trusted",
    ),
    var(
        "WEBCPM_TELEMETRY_REPORT",
        Some(keys::TELEMETRY_REPORT),
        "send outcome reports, true or false",
    ),
    var(
        "WEBCPM_CONCURRENCY",
        Some(keys::CONCURRENCY),
        "parallel downloads",
    ),
    var(
        "WEBCPM_MAX_SIZE",
        Some(keys::MAX_SIZE),
        "largest package in bytes",
    ),
    var(
        "WEBCPM_HTTP_RETRIES",
        Some(keys::RETRIES),
        "retries of transient failures",
    ),
    var(
        "WEBCPM_HTTP_TIMEOUT",
        Some(keys::TIMEOUT),
        "seconds a connection or read may stall",
    ),
    var(
        "WEBCPM_ALLOW_INSECURE_HTTP",
        Some(keys::ALLOW_INSECURE_HTTP),
        "true or false",
    ),
    var(
        "WEBCPM_MAX_STORE_SIZE",
        Some(keys::STORE_MAX_SIZE),
        "the store's capacity in bytes",
    ),
    var(
        "WEBCPM_COMPILE_CACHE",
        Some(keys::COMPILE_CACHE),
        "keep compiled code, true or false",
    ),
    var(
        "WEBCPM_COMPILE_DIR",
        Some(keys::COMPILE_DIRECTORY),
        "where compiled code is kept",
    ),
    var(
        "WEBCPM_COMPILE_SHARED",
        Some(keys::COMPILE_SHARED),
        "the fleet's shared compiled code, oci://HOST/REPO",
    ),
    var(
        "WEBCPM_COMPILE_SHARED_KEY",
        Some(keys::COMPILE_SHARED_KEY),
        "the fleet's public key for shared compiled code (hex ed25519)",
    ),
    var(
        "WEBCPM_COMPILE_SHARED_SIGNING_KEY",
        Some(keys::COMPILE_SHARED_SIGNING_KEY),
        "the file of the fleet's signing key, on the machines that push compiled code",
    ),
    var(
        "WEBCPM_COMPILE_TIERING",
        Some(keys::COMPILE_TIERING),
        "baseline code first: auto, always or off",
    ),
    var(
        "WEBCPM_MAX_MEMORY",
        Some(keys::MAX_MEMORY),
        "a program's memory limit in bytes",
    ),
    var(
        "WEBCPM_TIMEOUT",
        Some(keys::RUN_TIMEOUT),
        "seconds before a program is stopped",
    ),
    var(
        "WEBCPM_NETWORK",
        Some(keys::RUN_NETWORK),
        "give every program the host's network, true or false",
    ),
    var(
        "WEBCPM_UNPACK_RATIO",
        Some(keys::UNPACK_RATIO),
        "how many times its size a package may unpack to",
    ),
];

/// The variables that set config keys or force a format, as `(name, value)` pairs from
/// `lookup`; empty values count as unset.
pub fn layer(lookup: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    ENV_VARS
        .iter()
        .filter(|v| v.key.is_some() || v.name == WEBC)
        .filter_map(|v| {
            lookup(v.name)
                .filter(|value| !value.is_empty())
                .map(|value| (v.name.to_string(), value))
        })
        .collect()
}
