//! The token for a registry, as cargo finds one: each token belongs to one registry URL and is
//! never sent to another.
//!
//! In order, the first that gives one wins:
//! 1. `WEBCPM_TOKEN` (or a flag): for the registry this run uses;
//! 2. `registry.credential_process`: a command that prints the token, given the registry's URL
//!    (in `WEBCPM_REGISTRY_URL`, and for `{registry}` in its arguments);
//! 3. what `webcpm login` stored for that URL: in the OS keychain where there is one (the
//!    `keyring` crate: macOS Keychain, Windows Credential Manager, the Secret Service of
//!    GNOME Keyring or KWallet), else in `credentials.toml` beside the user's config file (mode
//!    0600). That file names the URLs that have a token in the keychain, so the keychain is only
//!    asked for those;
//! 4. `registry.token` in a config file, for the registry URL in force in that file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::settings::{RegistrySettings, same_url};

/// The keychain's service name for webcpm's tokens (each entry's user is the registry URL).
const SERVICE: &str = "webcpm";
/// How long a credential process may take.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `WEBCPM_TOKEN`, a flag, or `registry.token` in a config file (the layer named).
    Setting(String),
    CredentialProcess,
    Keychain,
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Setting(layer) => write!(f, "registry.token ({layer})"),
            Source::CredentialProcess => f.write_str("registry.credential_process"),
            Source::Keychain => f.write_str("the OS keychain"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why no token could be had where one was configured.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "the credential process `{command}` failed: {reason}; check registry.credential_process"
    )]
    Process { command: String, reason: String },
    #[error("cannot read {path}: {reason}; fix the file, or delete it and `webcpm login` again")]
    File { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}; check its directory")]
    Write { path: PathBuf, reason: String },
    #[error(
        "the OS keychain failed: {0}; unlock it, or keep the token in a file instead (`webcpm logout`, then `webcpm login --no-keychain`)"
    )]
    Keychain(String),
}

/// `credentials.toml`: per registry URL, a token, or a mark that the keychain holds it.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct File {
    #[serde(default)]
    registry: BTreeMap<String, Entry>,
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    in_keychain: bool,
}

/// The credentials file that goes with the user's config file.
pub fn file_beside(config_file: &Path) -> PathBuf {
    config_file.with_file_name("credentials.toml")
}

/// The token for the registry at `url`, and where it came from; `None` when there is none.
pub fn token(
    settings: &RegistrySettings,
    url: &str,
    file: Option<&Path>,
) -> Result<Option<(String, Source)>, CredentialError> {
    if let Some(t) = settings.configured_token(url)
        && !matches!(
            t.layer,
            crate::settings::Layer::System | crate::settings::Layer::User
        )
    {
        return Ok(Some((t.val.clone(), Source::Setting(t.layer.to_string()))));
    }
    if !settings.credential_process.val.is_empty()
        && let Some(token) = from_process(&settings.credential_process.val, url)?
    {
        return Ok(Some((token, Source::CredentialProcess)));
    }
    if let Some(path) = file
        && let Some(found) = stored(path, url)?
    {
        return Ok(Some(found));
    }
    Ok(settings
        .configured_token(url)
        .map(|t| (t.val.clone(), Source::Setting(t.layer.to_string()))))
}

/// Runs the credential process for `url`: its first line of output is the token; a process
/// that prints nothing and exits 0 has none for this registry.
fn from_process(words: &[String], url: &str) -> Result<Option<String>, CredentialError> {
    let failed = |reason: String| CredentialError::Process {
        command: words.join(" "),
        reason,
    };
    let args: Vec<String> = words[1..]
        .iter()
        .map(|w| w.replace("{registry}", url))
        .collect();
    let mut child = Command::new(&words[0])
        .args(&args)
        .env("WEBCPM_REGISTRY_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start it: {e}")))?;
    // Both pipes are read as the process writes, so that it never blocks on a full pipe.
    let (out, err) = (reader(child.stdout.take()), reader(child.stderr.take()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| failed(e.to_string()))? {
            break status;
        }
        if started.elapsed() > PROCESS_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed("it gave no answer in 60 s".into()));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // A pipe that a child of the process keeps open is not waited for long.
    let text = |r: Receiver<String>| r.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    if !status.success() {
        let said = text(err).lines().next().unwrap_or("").trim().to_string();
        return Err(failed(format!("it exited with {status}: {said}")));
    }
    Ok(text(out)
        .lines()
        .next()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string))
}

/// Reads a pipe to its end (the first 64 KiB kept) on a thread of its own.
fn reader(pipe: Option<impl Read + Send + 'static>) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if bytes.len() < 64 << 10 {
                    bytes.extend_from_slice(&chunk[..n]);
                }
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// A registry URL as the credentials are kept under: parsed and written back, so that
/// spellings of one URL (the case of the host, a default port) are one key.
fn canonical(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| url.to_string(), |u| u.to_string())
}

fn read_file(path: &Path) -> Result<File, CredentialError> {
    let bad = |reason: String| CredentialError::File {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| bad(e.message().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// What `login` stored for `url`.
fn stored(path: &Path, url: &str) -> Result<Option<(String, Source)>, CredentialError> {
    let file = read_file(path)?;
    let Some((key, entry)) = file.registry.iter().find(|(u, _)| same_url(u, url)) else {
        return Ok(None);
    };
    if entry.in_keychain {
        let entry = keyring::Entry::new(SERVICE, key).map_err(keychain)?;
        return match entry.get_password() {
            Ok(token) => Ok(Some((token, Source::Keychain))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain(e)),
        };
    }
    Ok(entry
        .token
        .clone()
        .map(|t| (t, Source::File(path.to_path_buf()))))
}

fn keychain(e: keyring::Error) -> CredentialError {
    CredentialError::Keychain(e.to_string())
}

/// Where `login` put a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Keychain,
    File(PathBuf),
}

/// Stores `token` for `url`: in the OS keychain when `use_keychain` and one answers, else in
/// the credentials file at `path` (mode 0600).
pub fn login(
    path: &Path,
    url: &str,
    token: &str,
    use_keychain: bool,
) -> Result<Stored, CredentialError> {
    let mut file = read_file(path)?;
    forget(&mut file, url)?;
    let url = canonical(url);
    let in_keychain = use_keychain
        && keyring::Entry::new(SERVICE, &url)
            .and_then(|e| e.set_password(token))
            .inspect_err(|e| tracing::info!("the OS keychain cannot keep the token: {e}"))
            .is_ok();
    let entry = Entry {
        token: (!in_keychain).then(|| token.to_string()),
        in_keychain,
    };
    file.registry.insert(url, entry);
    write_file(path, &file)?;
    Ok(match in_keychain {
        true => Stored::Keychain,
        false => Stored::File(path.to_path_buf()),
    })
}

/// Forgets the token for `url`, wherever `login` put it; whether there was one.
pub fn logout(path: &Path, url: &str) -> Result<bool, CredentialError> {
    let mut file = read_file(path)?;
    let removed = forget(&mut file, url)?;
    if removed {
        write_file(path, &file)?;
    }
    Ok(removed)
}

/// Takes every entry for `url` out of the file, and out of the keychain those it holds there.
fn forget(file: &mut File, url: &str) -> Result<bool, CredentialError> {
    let keys: Vec<String> = file
        .registry
        .keys()
        .filter(|u| same_url(u, url))
        .cloned()
        .collect();
    for key in &keys {
        if file.registry.remove(key).is_some_and(|e| e.in_keychain) {
            let entry = keyring::Entry::new(SERVICE, key).map_err(keychain)?;
            match entry.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(e) => return Err(keychain(e)),
            }
        }
    }
    Ok(!keys.is_empty())
}

/// Writes the file whole, readable by its owner alone.
fn write_file(path: &Path, file: &File) -> Result<(), CredentialError> {
    let failed = |e: std::io::Error| CredentialError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let text = format!(
        "# Written by `webcpm login`: tokens for registries, each sent to its own URL only.\n{}",
        toml::to_string_pretty(file).expect("plain data serializes")
    );
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(temp.path(), mode).map_err(failed)?;
    }
    std::io::Write::write_all(&mut temp, text.as_bytes()).map_err(failed)?;
    temp.as_file().sync_all().map_err(failed)?;
    temp.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}
