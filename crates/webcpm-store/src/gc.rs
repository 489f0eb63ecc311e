//! `cache gc` and `cache clean`: freeing space without touching what installs point at.
//!
//! Evictable are blobs that no install's tree uses (with their unpacked volumes and their atom
//! rows) and compiled artifacts that no install needs on this build's engines (one per backend),
//! which includes every artifact of another engine. Without a capacity, gc removes them all; with one
//! (`store.max_size`), it removes the least recently used first, until the store fits.
//! Both run with the store's exclusive lock held (see [`Store::open_exclusive`]). Rows are
//! deleted before their files, so a crash leaves orphan files (which `cache verify` removes),
//! never rows without files.

use super::verify::naming::{is_artifact, is_digest, is_engine_dir, is_shard, is_temporary, own};
use super::verify::remove;
use super::{Store, StoreError};
use webcpm_formats::package::Sha256Digest;

/// What gc removed and what is left.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    pub removed_blobs: u64,
    pub removed_artifacts: u64,
    pub freed_bytes: u64,
    /// Bytes of blobs and artifacts left.
    pub kept_bytes: u64,
}

enum Entry {
    Blob(Sha256Digest),
    Artifact(String, Sha256Digest),
}

impl Store {
    /// Evicts unused blobs and artifacts: all of them, or with `capacity`, the least recently
    /// used until the store holds at most `capacity` bytes.
    pub fn gc(&self, engines: &[String], capacity: Option<u64>) -> Result<GcReport, StoreError> {
        self.evict(engines, capacity, true)
    }

    /// The same for compiled code alone, against its own capacity (`compile.capacity`).
    pub fn gc_compiled(&self, engines: &[String], capacity: u64) -> Result<GcReport, StoreError> {
        self.evict(engines, Some(capacity), false)
    }

    fn evict(
        &self,
        engines: &[String],
        capacity: Option<u64>,
        with_blobs: bool,
    ) -> Result<GcReport, StoreError> {
        let blobs = if with_blobs {
            self.index.blob_entries()?
        } else {
            Vec::new()
        };
        let artifacts = self.index.artifacts()?;
        let used_atoms = self.index.used_atoms()?;
        let mut total: u64 = blobs.iter().map(|b| b.size).sum::<u64>()
            + artifacts.iter().map(|a| a.size).sum::<u64>();
        let mut evictable: Vec<(i64, u64, Entry)> = Vec::new();
        for b in &blobs {
            if !b.used {
                evictable.push((b.last_used_ms, b.size, Entry::Blob(b.sha256)));
            }
        }
        for a in &artifacts {
            if !engines.contains(&a.engine) || !used_atoms.contains(&a.atom.hex()) {
                evictable.push((
                    a.last_used_ms,
                    a.size,
                    Entry::Artifact(a.engine.clone(), a.atom),
                ));
            }
        }
        evictable.sort_by_key(|(used, _, _)| *used);
        let mut report = GcReport::default();
        for (_, size, entry) in evictable {
            if capacity.is_some_and(|cap| total <= cap) {
                break;
            }
            match entry {
                // The row goes first: a crash in between leaves an orphan file, which
                // `cache verify` removes, never a row without its file.
                Entry::Blob(sha) => {
                    self.index.forget_blob(&sha)?;
                    remove(&self.blob_path(&sha))?;
                    remove(&self.volume_dir(&sha))?;
                    report.removed_blobs += 1;
                }
                Entry::Artifact(engine, atom) => {
                    self.index.forget_artifact(&engine, &atom)?;
                    remove(&self.artifact_path(&engine, &atom))?;
                    report.removed_artifacts += 1;
                }
            }
            total -= size;
            report.freed_bytes += size;
        }
        report.kept_bytes = total;
        if report.removed_blobs + report.removed_artifacts > 0 {
            self.index.log_event(
                "gc",
                None,
                &format!(
                    "removed {} blobs and {} artifacts, {} bytes",
                    report.removed_blobs, report.removed_artifacts, report.freed_bytes
                ),
            )?;
        }
        Ok(report)
    }

    /// Removes every install, blob, artifact and volume. The installation id stays, so that
    /// rollout cohorts do not change.
    pub fn clean(&self) -> Result<u64, StoreError> {
        let freed = self
            .index
            .blob_entries()?
            .iter()
            .map(|b| b.size)
            .chain(self.index.artifacts()?.iter().map(|a| a.size))
            .sum();
        self.index.clear()?;
        // Only what the store named itself: `compile.directory` may be shared with other files.
        let nested = [
            (
                self.root.join("blobs/sha256"),
                is_shard as fn(&str) -> bool,
                is_digest as fn(&str) -> bool,
            ),
            (self.compiled_dir.clone(), is_engine_dir, is_artifact),
        ];
        for (dir, own_dir, own_file) in nested {
            for sub in own(&dir, own_dir)? {
                for file in own(&sub, own_file)? {
                    remove(&file)?;
                }
                // Left when something else is in it.
                let _ = std::fs::remove_dir(&sub);
            }
        }
        for dir in own(&self.root.join("volumes"), is_digest)? {
            remove(&dir)?;
        }
        for file in own(&self.root.join("tmp"), is_temporary)? {
            remove(&file)?;
        }
        Ok(freed)
    }
}
