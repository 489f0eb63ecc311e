//! A file system that only reads: a package's volumes are mounted through it, so that a WASIX
//! program cannot change its installed package (Wasmer mounts host directories read-write, and
//! a program running as root would write through the files' read-only modes). Opening a file to
//! write, creating, removing, renaming or linking anything fails with "permission denied", and so
//! does anything done through the handle of a file opened to read (writing, truncating, setting
//! its times, unlinking it: Wasmer removes an open file through its handle); everything else is
//! the host directory's.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
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
        let inner = self
            .inner
            .new_open_options()
            .options(conf.clone())
            .open(path)?;
        Ok(Box::new(ReadOnlyFile { inner }))
    }
}

/// A file of a read-only mount, opened to read: its handle refuses what would change the file
/// or its name (Wasmer unlinks an open file through its handle, not through the file system).
#[derive(Debug)]
struct ReadOnlyFile {
    inner: Box<dyn VirtualFile + Send + Sync + 'static>,
}

fn denied() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::PermissionDenied)
}

impl VirtualFile for ReadOnlyFile {
    fn last_accessed(&self) -> u64 {
        self.inner.last_accessed()
    }

    fn last_modified(&self) -> u64 {
        self.inner.last_modified()
    }

    fn created_time(&self) -> u64 {
        self.inner.created_time()
    }

    fn set_times(&mut self, _: Option<u64>, _: Option<u64>) -> Result<()> {
        Err(FsError::PermissionDenied)
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn set_len(&mut self, _: u64) -> Result<()> {
        Err(FsError::PermissionDenied)
    }

    fn unlink(&mut self) -> Result<()> {
        Err(FsError::PermissionDenied)
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    fn write_from_mmap(&mut self, _: u64, _: u64) -> std::io::Result<()> {
        Err(denied())
    }

    fn poll_read_ready(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_read_ready(cx)
    }

    fn poll_write_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(denied()))
    }
}

impl AsyncRead for ReadOnlyFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadOnlyFile {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(denied()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for ReadOnlyFile {
    fn start_seek(mut self: Pin<&mut Self>, position: std::io::SeekFrom) -> std::io::Result<()> {
        Pin::new(&mut *self.inner).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        Pin::new(&mut *self.inner).poll_complete(cx)
    }
}
