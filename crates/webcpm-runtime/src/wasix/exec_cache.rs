//! What Wasmer loads when a WASIX program starts another command (`exec`, `spawn`, a shell
//! running `ls`): the command's precompiled artifact from webcpm's store, found by the module's
//! SHA-256 (Wasmer's module hash), instead of a compile at every exec. A command without an
//! artifact is a miss, which Wasmer answers by compiling it; nothing is written back during a
//! run. `run -v` says which it was for each command started.

use std::collections::HashMap;
use std::path::PathBuf;

use wasmer::{Engine, Module};
use wasmer_types::ModuleHash;
use wasmer_wasix::runtime::module_cache::{CacheError, ModuleCache};

use super::super::backend;
use super::super::options::Command;

/// The artifacts of the commands a program may start, by module hash.
#[derive(Debug, Default)]
pub(super) struct ExecCache {
    artifacts: HashMap<[u8; 32], (String, PathBuf, u64)>,
}

impl ExecCache {
    pub(super) fn new(commands: &[Command]) -> ExecCache {
        let artifacts = commands
            .iter()
            .filter_map(|c| {
                let (path, size) = c.artifact.clone()?;
                Some((c.sha256, (c.name.clone(), path, size)))
            })
            .collect();
        ExecCache { artifacts }
    }

    fn name(&self, key: &ModuleHash) -> Option<&str> {
        let bytes: [u8; 32] = key.as_bytes().try_into().ok()?;
        self.artifacts.get(&bytes).map(|(name, _, _)| name.as_str())
    }
}

#[async_trait::async_trait]
impl ModuleCache for ExecCache {
    async fn load(&self, key: ModuleHash, engine: &Engine) -> Result<Module, CacheError> {
        let bytes: [u8; 32] = key
            .as_bytes()
            .try_into()
            .map_err(|_| CacheError::NotFound)?;
        let Some((name, path, size)) = self.artifacts.get(&bytes) else {
            tracing::info!("a command started with no precompiled artifact: Wasmer compiles it");
            return Err(CacheError::NotFound);
        };
        backend::check_size(path, *size).map_err(CacheError::other)?;
        // SAFETY: as for `Wasix::load`: only an artifact that this Wasmer wrote into webcpm's
        // store under its own engine hash, whose size was just checked against the index,
        // reaches this call; Wasmer checks its header and version itself.
        let module = unsafe { Module::deserialize_from_file(engine, path) }?;
        tracing::info!("`{name}` started from its precompiled artifact");
        Ok(module)
    }

    async fn contains(&self, key: ModuleHash, _engine: &Engine) -> Result<bool, CacheError> {
        Ok(self.name(&key).is_some())
    }

    async fn save(&self, _: ModuleHash, _: &Engine, _: &Module) -> Result<(), CacheError> {
        Ok(())
    }
}
