//! A file system that only reads: a package's volumes are mounted through it, so that a WASIX
//! program cannot change its installed package (Wasmer mounts host directories read-write, and
//! a program running as root would write through the files' read-only modes). Opening a file to
//! write, creating, removing, renaming or linking anything fails with "permission denied";
//! everything else is the host directory's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use wasmer_wasix::virtual_fs::{
    FileOpener, FileSystem, FsError, Metadata, OpenOptions, OpenOptionsConfig, ReadDir, Result,
    VirtualFile,
};

#[derive(Debug)]
pub(super) struct ReadOnly {
    inner: Arc<dyn FileSystem + Send + Sync>,
}

impl ReadOnly {
    pub(super) fn new(inner: Arc<dyn FileSystem + Send + Sync>) -> ReadOnly {
        ReadOnly { inner }
    }
}

impl FileSystem for ReadOnly {
    fn readlink(&self, path: &Path) -> Result<PathBuf> {
        self.inner.readlink(path)
    }

    fn read_dir(&self, path: &Path) -> Result<ReadDir> {
        self.inner.read_dir(path)
    }

    fn create_dir(&self, _: &Path) -> Result<()> {
        Err(FsError::PermissionDenied)
    }

    fn create_symlink(&self, _: &Path, _: &Path) -> Result<()> {
        Err(FsError::PermissionDenied)
    }

    fn hard_link(&self, _: &Path, _: &Path) -> Result<()> {
        Err(FsError::PermissionDenied)
    }

    fn remove_dir(&self, _: &Path) -> Result<()> {
        Err(FsError::PermissionDenied)
    }

    fn rename<'a>(&'a self, _: &'a Path, _: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Err(FsError::PermissionDenied) })
    }

    fn metadata(&self, path: &Path) -> Result<Metadata> {
        self.inner.metadata(path)
    }

    fn symlink_metadata(&self, path: &Path) -> Result<Metadata> {
        self.inner.symlink_metadata(path)
    }

    fn remove_file(&self, _: &Path) -> Result<()> {
        Err(FsError::PermissionDenied)
    }

    fn new_open_options(&self) -> OpenOptions<'_> {
        OpenOptions::new(self)
    }
}

impl FileOpener for ReadOnly {
    fn open(
        &self,
        path: &Path,
        conf: &OpenOptionsConfig,
    ) -> Result<Box<dyn VirtualFile + Send + Sync + 'static>> {
        if conf.write || conf.append || conf.truncate || conf.create || conf.create_new {
            return Err(FsError::PermissionDenied);
        }
        self.inner
            .new_open_options()
            .options(conf.clone())
            .open(path)
    }
}
