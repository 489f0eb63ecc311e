//! What every command shares: the global flags, the effective settings and the store's home,
//! with the parts built from them (the store, the runtime, the installer) and the two ways of
//! speaking to the user (data on stdout, notes on stderr).

use crate::printer::{err, out};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use super::args::{FormatArgs, GlobalArgs};
use super::failure::Failure;
use super::reporters::{Bars, CompileLines};
use crate::cooldown::{self, Cooldown};
use crate::credentials;
use crate::fetch::{Fetcher, Progress, Silent};
use crate::install::{Installer, Network};
use crate::package::WebcVersion;
use crate::policy::{Forced, Policy};
use crate::registry::RegistryClient;
use crate::rollout::{MoveOutcome, Moved};
use crate::runtime::Runtime;
use crate::settings::{Settings, SettingsError, Sources, env, keys};
use crate::shared_cache::signing::read_signing_key;
use crate::shared_cache::{SharedCache, SharedError};
use crate::store::Store;

/// The context of one command.
pub(super) struct Context {
    pub global: GlobalArgs,
    pub settings: Settings,
    pub home: PathBuf,
    /// The registry's token, once looked up (a credential process runs once per command).
    token: std::sync::OnceLock<Option<String>>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Config keys that these format flags set, with the flag's name as their layer.
pub(super) fn format_flags(format: &FormatArgs) -> Vec<(String, toml::Value, String)> {
    let mut flags = Vec::new();
    if format.no_fallback {
        flags.push((
            keys::FALLBACK.to_string(),
            toml::Value::Boolean(false),
            "--no-fallback".to_string(),
        ));
    }
    if format.allow_insecure_http {
        flags.push((
            keys::ALLOW_INSECURE_HTTP.to_string(),
            toml::Value::Boolean(true),
            "--allow-insecure-http".to_string(),
        ));
    }
    if let Some(age) = &format.min_release_age {
        flags.push((
            keys::MIN_RELEASE_AGE.to_string(),
            toml::Value::String(age.clone()),
            "--min-release-age".to_string(),
        ));
    }
    flags
}

/// The settings layers for these flags and this process's environment.
pub(super) fn sources(global: &GlobalArgs, flags: Vec<(String, toml::Value, String)>) -> Sources {
    let (system_file, user_file) = config_files(global);
    let mut flags = flags;
    if let Some(url) = &global.registry {
        flags.push((
            keys::REGISTRY_URL.into(),
            toml::Value::String(url.clone()),
            "--registry".into(),
        ));
    }
    Sources {
        system_file: Some(system_file),
        user_file,
        env: env::layer(env_var),
        flags,
    }
}

/// The system file and the user file: `WEBCPM_SYSTEM_CONFIG` or `/etc/webcpm/config.toml`, and
/// `--config` (or `WEBCPM_CONFIG`) or `$XDG_CONFIG_HOME/webcpm/config.toml`.
pub(super) fn config_files(global: &GlobalArgs) -> (PathBuf, Option<PathBuf>) {
    let system = env_var(env::SYSTEM_CONFIG)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::settings::SYSTEM_FILE));
    let user = global
        .config
        .clone()
        .or_else(|| dirs::config_dir().map(|d| d.join("webcpm/config.toml")));
    (system, user)
}

/// Loads the settings, failing with a hint that names `config show`.
pub(super) fn load_settings(sources: &Sources) -> Result<Settings, Failure> {
    Settings::load(sources).map_err(|e: SettingsError| e.into())
}

impl Context {
    /// The context for a command with these setting flags and, maybe, a forced format.
    pub(super) fn new(
        global: &GlobalArgs,
        flags: Vec<(String, toml::Value, String)>,
        webc: Option<WebcVersion>,
    ) -> Result<Context, Failure> {
        let mut settings = load_settings(&sources(global, flags))?;
        if let Some(webc) = webc {
            settings.force(Forced {
                webc,
                source: "--webc".into(),
            });
        }
        // Not read by clap: `demo` keeps its files only where `--home` itself says.
        let home = global
            .home
            .clone()
            .or_else(|| env_var(env::HOME).map(PathBuf::from))
            .or_else(|| dirs::data_dir().map(|d| d.join("webcpm")))
            .ok_or_else(|| {
                Failure::usage("cannot tell where the store lives")
                    .hint(format!("pass --home DIR or set {}", env::HOME))
            })?;
        Ok(Context {
            global: global.clone(),
            settings,
            home,
            token: std::sync::OnceLock::new(),
        })
    }

    /// The context of a command that takes the format flags.
    pub(super) fn with_format(
        global: &GlobalArgs,
        format: &FormatArgs,
    ) -> Result<Context, Failure> {
        Context::new(global, format_flags(format), format.webc)
    }

    /// Whether progress may be drawn on stderr.
    pub(super) fn show_progress(&self) -> bool {
        !self.global.json && !self.global.quiet && std::io::stderr().is_terminal()
    }

    /// Prints a line of human output (not with `--json` or `-q`).
    pub(super) fn say(&self, line: impl AsRef<str>) {
        if !self.global.json && !self.global.quiet {
            out!("{}", line.as_ref());
        }
    }

    /// Prints a note on stderr (not with `-q`).
    pub(super) fn note(&self, line: impl AsRef<str>) {
        if !self.global.quiet {
            err!("{}", line.as_ref());
        }
    }

    /// Says how many installs a policy change re-pointed, and which moved or stayed and why.
    pub(super) fn say_moves(&self, moved: &[Moved]) {
        let switched = moved
            .iter()
            .filter(|m| m.outcome == MoveOutcome::Switched)
            .count();
        self.say(format!(
            "{switched} of {} installed packages re-pointed",
            moved.len()
        ));
        for m in moved {
            match m.outcome {
                MoveOutcome::Switched => {
                    self.say(format!("  {} {} -> {}", m.package, m.from, m.to))
                }
                MoveOutcome::Kept => {
                    self.say(format!("  {} stays on {}: {}", m.package, m.from, m.reason))
                }
                MoveOutcome::Unchanged => {}
            }
        }
    }

    /// Prints a value as JSON on stdout.
    pub(super) fn print_json(&self, value: &impl serde::Serialize) {
        out!(
            "{}",
            serde_json::to_string(value).expect("plain data serializes")
        );
    }

    /// The store, created if needed, with compiled code where the settings place it.
    pub(super) fn store(&self) -> Result<Store, Failure> {
        Ok(self.configured(Store::open(&self.home)?))
    }

    /// The store as the settings place it: compiled code where `compile.directory` says.
    pub(super) fn configured(&self, mut store: Store) -> Store {
        if let Some(dir) = self.settings.compile_cache().directory() {
            store.set_compiled_dir(dir.to_path_buf());
        }
        store.set_unpack_ratio(self.settings.store.unpack_ratio.val);
        store
    }

    /// The WebAssembly runtime with the configured limits.
    pub(super) fn runtime(&self) -> Result<Runtime, Failure> {
        Ok(Runtime::new(self.settings.limits()))
    }

    /// The compatibility hash of each engine in this build, which name their compiled artifacts.
    pub(super) fn engine_hashes(&self) -> Result<Vec<String>, Failure> {
        self.runtime()?
            .engine_hashes()
            .map_err(|e| Failure::internal(e.to_string()))
    }

    /// The credentials file beside the user's config file (`webcpm login`).
    pub(super) fn credentials_file(&self) -> Option<PathBuf> {
        config_files(&self.global)
            .1
            .map(|f| credentials::file_beside(&f))
    }

    /// The token for the registry in use, from wherever [`credentials`] finds one.
    pub(super) fn token(&self) -> Result<Option<String>, Failure> {
        if let Some(token) = self.token.get() {
            return Ok(token.clone());
        }
        let url = &self.settings.registry.url.val;
        let found = credentials::token(
            &self.settings.registry,
            url,
            self.credentials_file().as_deref(),
        )
        .map_err(|e| Failure::usage(e.to_string()))?;
        let token = found.map(|(token, source)| {
            tracing::debug!(
                "the token for {} comes from {source}",
                crate::http::redact(url)
            );
            token
        });
        Ok(self.token.get_or_init(|| token).clone())
    }

    fn registry_client(&self, http: &crate::http::Client) -> Result<RegistryClient, Failure> {
        let settings = &self.settings;
        Ok(
            RegistryClient::new(http.clone(), &settings.registry.url.val, self.token()?)
                .map_err(|e| {
                    Failure::usage(e.to_string())
                        .hint("set the registry with --registry URL or WEBCPM_REGISTRY")
                })?
                .with_retries(settings.download.retries.val),
        )
    }

    /// Now, in Unix seconds, or `WEBCPM_NOW` (RFC 3339) when it is set.
    pub(crate) fn now(&self) -> Result<i64, Failure> {
        match std::env::var(env::NOW) {
            Ok(text) => cooldown::parse_time(&text).map_err(|e| {
                Failure::usage(format!("{}: {e}", env::NOW))
                    .hint("write it as 2026-12-07T12:00:00Z, or unset it")
            }),
            Err(_) => Ok(crate::fleet::document::now()),
        }
    }

    /// The cooldown in force (`resolve.min_release_age`), measured from [`Context::now`].
    pub(crate) fn cooldown(&self) -> Result<Cooldown, Failure> {
        Ok(self.settings.resolve.cooldown(self.now()?))
    }

    /// The format policy: the settings, this machine's installation id, and the registry's
    /// last good policy when this machine follows one.
    pub(super) fn policy(&self, store: &Store) -> Result<Policy, Failure> {
        let mut policy = self.settings.policy();
        policy.rollout.installation_id = store.installation_id()?;
        if let Some(source) = self.settings.policy_source() {
            policy.rollout.registry =
                crate::fleet::registry_layer(&self.home, &source).map(|(layer, _)| layer);
        }
        Ok(policy)
    }

    /// The fleet's shared compiled code (`compile.shared`), trusting what `compile.shared_key`
    /// signed, with the push credentials of `WEBCPM_OCI_AUTH` and the signing key of
    /// `compile.shared_signing_key`; `None` when not configured.
    pub(super) fn shared_cache(&self) -> Result<Option<Arc<SharedCache>>, Failure> {
        let Some(shared) = self.settings.shared_compile() else {
            return Ok(None);
        };
        let signer = match &shared.signing_key {
            Some(path) => Some(read_signing_key(path).map_err(|e| {
                Failure::usage(e.to_string()).hint(
                    "make the fleet's key with `webcpm registry keygen --root DIR` and name DIR/policy-key",
                )
            })?),
            None => None,
        };
        let auth = std::env::var(env::OCI_AUTH).ok().filter(|a| !a.is_empty());
        SharedCache::new(&shared.url, auth.as_deref(), shared.key, signer)
            .map(|cache| Some(Arc::new(cache)))
            .map_err(|e| match e {
                SharedError::Oci(_) => {
                    Failure::usage(e.to_string()).hint("fix compile.shared in the config")
                }
                SharedError::SignerNotPinned { .. } => Failure::usage(e.to_string()),
            })
    }

    /// Everything an install needs; `Network::Offline` builds no registry client.
    /// The HTTP client of the settings (proxies, CAs, timeouts).
    fn http(&self) -> Result<crate::http::Client, Failure> {
        crate::http::client(&self.settings.http()).map_err(|e| match e {
            crate::http::HttpError::Client(_) => Failure::internal(e.to_string()),
            // A CA file that cannot be used is the user's to fix.
            _ => Failure::usage(e.to_string()),
        })
    }

    /// A client of the configured registry alone, for the commands that only ask it (`search`,
    /// `show`, the yank check): no store, no runtime.
    pub(crate) fn client(&self) -> Result<RegistryClient, Failure> {
        self.registry_client(&self.http()?)
    }

    pub(super) fn installer(&self, network: Network) -> Result<Installer, Failure> {
        let settings = &self.settings;
        let http = self.http()?;
        let client = match network {
            Network::Online => Some(self.registry_client(&http)?),
            Network::Offline => None,
        };
        let progress: Arc<dyn Progress> = if self.show_progress() {
            Arc::new(Bars::new())
        } else {
            Arc::new(Silent)
        };
        let runtime = match settings.compile_cache().enabled() {
            true => Some(self.runtime()?),
            false => None,
        };
        let store = self.store()?;
        let policy = self.policy(&store)?;
        Ok(Installer {
            store: Arc::new(store),
            runtime,
            compile_reporter: Arc::new(CompileLines {
                quiet: self.global.quiet || self.global.json,
            }),
            shared_cache: self.shared_cache()?,
            tiering: settings.store.compile_tiering.val,
            fetcher: Fetcher::new(http, settings.fetch(), progress).with_registry(client.as_ref()),
            client,
            policy,
            cooldown: self.cooldown()?,
            downloads: Arc::new(tokio::sync::Semaphore::new(
                settings.download.concurrency.val,
            )),
        })
    }
}
