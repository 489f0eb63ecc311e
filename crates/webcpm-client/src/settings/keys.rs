//! Every config key, once: a misspelt key is a compile error. Each is a dotted path into
//! `config/default.toml` (or, for `registry.token`, a key without a default).

pub const REGISTRY_URL: &str = "registry.url";
pub const REGISTRY_TOKEN: &str = "registry.token";
pub const CA_FILE: &str = "registry.ca_file";
pub const CREDENTIAL_PROCESS: &str = "registry.credential_process";
/// The flags through which a lockfile names the registry (`install --locked`, `vendor` and
/// `sbom --lockfile`): a registry the user did not name, to which no token follows.
pub const LOCKED_REGISTRY: &str = "--locked";
pub const PRIORITY: &str = "webc.priority";
pub const FALLBACK: &str = "webc.fallback";
pub const V3_PERCENT: &str = "rollout.v3_percent";
pub const ROLLED_BACK: &str = "rollout.rolled_back";
pub const ROLLOUT_SOURCE: &str = "rollout.source";
pub const POLICY_KEY: &str = "rollout.policy_key";
pub const POLICY_URL: &str = "rollout.policy_url";
pub const POLICY_REFRESH: &str = "rollout.refresh";
pub const TELEMETRY_REPORT: &str = "telemetry.report";
pub const REPORT_TOKEN: &str = "telemetry.report_token";
/// Keys whose values are credentials: never shown.
pub const SECRETS: &[&str] = &[REGISTRY_TOKEN, REPORT_TOKEN];
pub const CONCURRENCY: &str = "download.concurrency";
pub const MAX_SIZE: &str = "download.max_size";
pub const RETRIES: &str = "download.retries";
pub const TIMEOUT: &str = "download.timeout";
pub const ALLOW_INSECURE_HTTP: &str = "download.allow_insecure_http";
pub const STORE_MAX_SIZE: &str = "store.max_size";
pub const COMPILE_CACHE: &str = "compile.cache";
pub const COMPILE_DIRECTORY: &str = "compile.directory";
pub const COMPILE_CAPACITY: &str = "compile.capacity";
pub const COMPILE_SHARED: &str = "compile.shared";
pub const COMPILE_SHARED_KEY: &str = "compile.shared_key";
pub const COMPILE_SHARED_SIGNING_KEY: &str = "compile.shared_signing_key";
pub const COMPILE_TIERING: &str = "compile.tiering";
pub const MAX_MEMORY: &str = "run.max_memory";
pub const RUN_TIMEOUT: &str = "run.timeout";
pub const RUN_NETWORK: &str = "run.network";
pub const UNPACK_RATIO: &str = "store.unpack_ratio";
pub const MIN_RELEASE_AGE: &str = "resolve.min_release_age";
pub const MIN_RELEASE_AGE_EXEMPT: &str = "resolve.min_release_age_exempt";
pub const ALLOW_UNKNOWN_RELEASE_TIME: &str = "resolve.allow_unknown_release_time";
