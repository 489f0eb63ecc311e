//! The `grants` table: what the user granted a package (`webcpm grant`), which every run of it
//! gets on top of its flags. A package gets nothing of the host that is not here or in a flag.

use std::path::PathBuf;

use rusqlite::params;

use super::{Index, IndexError, now_ms};
use webcpm_formats::package::PackageName;

/// One thing of the host a program may be given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "capability", rename_all = "kebab-case")]
pub enum Capability {
    /// The host's network: WASIX sockets (listen, connect, resolve names).
    Network,
    /// A host directory, read-write, where the program sees `guest`.
    Dir { host: PathBuf, guest: String },
    /// The host's whole environment.
    HostEnv,
}

impl Capability {
    fn columns(&self) -> (&'static str, String, String) {
        match self {
            Capability::Network => ("net", String::new(), String::new()),
            Capability::Dir { host, guest } => {
                ("dir", host.to_string_lossy().into_owned(), guest.clone())
            }
            Capability::HostEnv => ("host-env", String::new(), String::new()),
        }
    }

    fn from_columns(kind: &str, host: String, guest: String) -> Option<Capability> {
        match kind {
            "net" => Some(Capability::Network),
            "dir" => Some(Capability::Dir {
                host: PathBuf::from(host),
                guest,
            }),
            "host-env" => Some(Capability::HostEnv),
            _ => None,
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Capability::Network => f.write_str("the network (--net)"),
            Capability::Dir { host, guest } => {
                write!(f, "the directory {} at {guest} (--volume)", host.display())
            }
            Capability::HostEnv => f.write_str("the host's environment (--forward-host-env)"),
        }
    }
}

impl Index {
    /// Grants `capability` to `package` (again: no change).
    pub fn grant(&self, package: &PackageName, capability: &Capability) -> Result<(), IndexError> {
        let (kind, host, guest) = capability.columns();
        self.execute(
            "INSERT OR IGNORE INTO grants (package, capability, host, guest, granted_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![package, kind, host, guest, now_ms()],
        )
    }

    /// Takes `capability` back, or every grant of the package with `None`. Returns how many
    /// grants went.
    pub fn revoke(
        &self,
        package: &PackageName,
        capability: Option<&Capability>,
    ) -> Result<usize, IndexError> {
        let conn = self.conn();
        let removed = match capability {
            None => conn.execute("DELETE FROM grants WHERE package = ?1", params![package]),
            Some(capability) => {
                let (kind, host, guest) = capability.columns();
                conn.execute(
                    "DELETE FROM grants
                     WHERE package = ?1 AND capability = ?2 AND host = ?3 AND guest = ?4",
                    params![package, kind, host, guest],
                )
            }
        };
        removed.map_err(self.sql())
    }

    /// What `package` was granted, in a stable order.
    pub fn grants(&self, package: &PackageName) -> Result<Vec<Capability>, IndexError> {
        Ok(self
            .all_grants()?
            .into_iter()
            .filter(|(p, _)| p == package)
            .map(|(_, c)| c)
            .collect())
    }

    /// Every grant of every package, by package.
    pub fn all_grants(&self) -> Result<Vec<(PackageName, Capability)>, IndexError> {
        let rows: Vec<(PackageName, String, String, String)> = self.rows(
            "SELECT package, capability, host, guest FROM grants
             ORDER BY package, capability, host, guest",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(p, kind, host, guest)| {
                Capability::from_columns(&kind, host, guest).map(|c| (p, c))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_kept_per_package_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let a: PackageName = "ns/a".parse().unwrap();
        let b: PackageName = "ns/b".parse().unwrap();
        let data = Capability::Dir {
            host: "/srv/data".into(),
            guest: "/data".into(),
        };
        index.grant(&a, &Capability::Network).unwrap();
        index.grant(&a, &Capability::Network).unwrap();
        index.grant(&a, &data).unwrap();
        index.grant(&b, &Capability::HostEnv).unwrap();
        assert_eq!(
            index.grants(&a).unwrap(),
            vec![data.clone(), Capability::Network]
        );
        assert_eq!(index.revoke(&a, Some(&Capability::Network)).unwrap(), 1);
        assert_eq!(index.grants(&a).unwrap(), vec![data]);
        assert_eq!(index.revoke(&a, None).unwrap(), 1);
        assert!(index.grants(&a).unwrap().is_empty());
        assert_eq!(index.grants(&b).unwrap(), vec![Capability::HostEnv]);
    }
}
