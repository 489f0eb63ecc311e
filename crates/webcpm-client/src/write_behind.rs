//! A download's file, written by a thread of its own ahead of durability: the async task hands
//! it chunks and goes back to the network at once, and every [`WINDOW`] bytes the thread asks
//! the kernel to start writing them to the disk (`sync_file_range` with
//! `SYNC_FILE_RANGE_WRITE`, which does not wait). The network, the hash and the disk's write-back
//! then overlap, and the `fsync` that makes the finished file durable only waits for what the
//! last window left.
//!
//! Behind it, a second thread hashes the file's atoms as their bytes pass ([`AtomStream`]), on
//! a core of its own while the task hashes the whole file and the writer writes, so that the
//! check of the finished file does not hash them a second time; its digests are waited for only
//! when that check needs them, while the disk finishes writing.
//!
//! The channel to the thread is bounded ([`QUEUE`] chunks), so a disk slower than the network
//! slows the download instead of filling memory. Operations land in the order they were sent; a
//! write error ends the thread, and the next operation reports it.

use std::fs::File;
use std::io::{Seek, Write};
use std::os::fd::AsRawFd;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use webcpm_formats::container::{AtomStream, StreamedAtoms};

/// Bytes written between two requests to start write-back.
pub(crate) const WINDOW: u64 = 8 << 20;

/// Chunks queued for the thread at most (reqwest's chunks are at most a few tens of KiB).
const QUEUE: usize = 256;

enum Op {
    Write(Bytes),
    /// Empties the file, for a download that starts over.
    Restart,
    /// Answers once everything sent before has landed.
    Barrier(oneshot::Sender<()>),
}

/// The writer thread's side of a file.
pub struct WriteBehind {
    ops: Option<mpsc::Sender<Op>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<PendingAtoms>>>,
    /// The atoms' hashing thread, once the writer has ended well.
    streamed: Option<PendingAtoms>,
    /// The error the thread ended with, told again to every later operation.
    failed: Option<(std::io::ErrorKind, String)>,
}

impl WriteBehind {
    /// Takes over writing `file` (at its current position) on a new thread.
    pub fn new(file: File) -> std::io::Result<WriteBehind> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("webcpm-write".into())
            .spawn(move || write_loop(file, rx))?;
        Ok(WriteBehind {
            ops: Some(tx),
            thread: Some(thread),
            streamed: None,
            failed: None,
        })
    }

    async fn send(&mut self, op: Op) -> std::io::Result<()> {
        let sent = match &self.ops {
            Some(ops) => ops.send(op).await.is_ok(),
            None => false,
        };
        match sent {
            true => Ok(()),
            // The thread has ended: a write failed.
            false => Err(self.ended().await),
        }
    }

    /// Queues a chunk; waits only while the queue is full.
    pub async fn write(&mut self, chunk: Bytes) -> std::io::Result<()> {
        self.send(Op::Write(chunk)).await
    }

    /// Empties the file (queued after what was sent before).
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.send(Op::Restart).await
    }

    /// Waits until everything sent so far is in the file (not yet durable); a write error
    /// shows here.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Barrier(tx)).await?;
        match rx.await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.ended().await),
        }
    }

    /// Ends the thread once everything sent has landed; the first write error, if any. Gives
    /// the thread that hashes the atoms of the file written.
    pub async fn finish(mut self) -> std::io::Result<PendingAtoms> {
        self.join().await?;
        Ok(self.streamed.take().unwrap_or(PendingAtoms(None)))
    }

    /// Why the thread ended, for an operation it can no longer take.
    async fn ended(&mut self) -> std::io::Error {
        match self.join().await {
            Err(e) => e,
            Ok(()) => std::io::Error::other("the download's writer thread has stopped"),
        }
    }

    async fn join(&mut self) -> std::io::Result<()> {
        self.ops = None;
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            let result = match joined {
                Ok(Ok(result)) => result,
                _ => Err(std::io::Error::other(
                    "the download's writer thread panicked",
                )),
            };
            match result {
                Ok(streamed) => self.streamed = Some(streamed),
                Err(e) => self.failed = Some((e.kind(), e.to_string())),
            }
        }
        match &self.failed {
            Some((kind, text)) => Err(std::io::Error::new(*kind, text.clone())),
            None => Ok(()),
        }
    }
}

/// The atoms' digests of a written file, computed by a thread of their own.
pub struct PendingAtoms(Option<std::thread::JoinHandle<Option<StreamedAtoms>>>);

impl PendingAtoms {
    /// Waits for the hashing thread (blocking): the digests, when the file's layout let them be
    /// computed.
    pub fn wait(self) -> Option<StreamedAtoms> {
        self.0?.join().ok().flatten()
    }
}

/// Hashes the chunks it is handed (`None`: the file starts over). Only a file written from its
/// start has its atoms hashed: the stream must see every byte.
fn hash_loop(
    from_start: bool,
    chunks: std::sync::mpsc::Receiver<Option<Bytes>>,
) -> Option<StreamedAtoms> {
    let mut atoms = from_start.then(AtomStream::new);
    for chunk in chunks {
        match (chunk, &mut atoms) {
            (Some(chunk), Some(atoms)) => atoms.feed(&chunk),
            (Some(_), None) => {}
            (None, _) => atoms = Some(AtomStream::new()),
        }
    }
    atoms.and_then(AtomStream::finish)
}

fn write_loop(mut file: File, mut ops: mpsc::Receiver<Op>) -> std::io::Result<PendingAtoms> {
    let (mut written, mut started) = (0u64, 0u64);
    let (hash, chunks) = std::sync::mpsc::sync_channel(QUEUE);
    let from_start = file.stream_position()? == 0;
    let hasher = std::thread::Builder::new()
        .name("webcpm-atoms".into())
        .spawn(move || hash_loop(from_start, chunks))?;
    while let Some(op) = ops.blocking_recv() {
        match op {
            Op::Write(chunk) => {
                file.write_all(&chunk)?;
                let _ = hash.send(Some(chunk.clone()));
                written += chunk.len() as u64;
                if written - started >= WINDOW {
                    start_write_back(&file, started, written - started);
                    started = written;
                }
            }
            Op::Restart => {
                file.set_len(0)?;
                file.seek(std::io::SeekFrom::Start(0))?;
                (written, started) = (0, 0);
                let _ = hash.send(None);
            }
            Op::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
    drop(hash);
    Ok(PendingAtoms(Some(hasher)))
}

/// Asks the kernel to start writing a range of the file to the disk, without waiting. Only a
/// hint: where it is not supported, the final `fsync` does all the work.
fn start_write_back(file: &File, offset: u64, len: u64) {
    // SAFETY: a plain system call on a descriptor this thread owns; it reads no memory of ours.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_land_in_order_a_restart_empties_the_file_and_write_back_windows_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("download.part");
        let file = File::create(&path).unwrap();
        let mut writer = WriteBehind::new(file).unwrap();
        writer
            .write(Bytes::from_static(b"thrown away"))
            .await
            .unwrap();
        writer.restart().await.unwrap();
        // More than two write-back windows, in chunks of reqwest's size.
        let chunk = Bytes::from(vec![7u8; 16 << 10]);
        let chunks = (2 * WINDOW as usize + 12345) / chunk.len() + 1;
        for _ in 0..chunks {
            writer.write(chunk.clone()).await.unwrap();
        }
        writer.flush().await.unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            (chunks * chunk.len()) as u64
        );
        writer.write(Bytes::from_static(b"end")).await.unwrap();
        assert_eq!(
            writer.finish().await.unwrap().wait(),
            None,
            "not a WebC file"
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), chunks * chunk.len() + 3);
        assert!(bytes[..chunks * chunk.len()].iter().all(|&b| b == 7));
        assert!(bytes.ends_with(b"end"));
    }

    #[tokio::test]
    async fn the_atoms_of_a_webc_file_written_from_its_start_are_hashed_on_the_way() {
        let cowsay = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/webc/cowsay.webc");
        let cowsay = Bytes::from(std::fs::read(cowsay).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let write = |path: std::path::PathBuf, skip: u64, restart: bool| {
            let cowsay = cowsay.clone();
            async move {
                let mut file = File::create(path).unwrap();
                file.seek(std::io::SeekFrom::Start(skip)).unwrap();
                let mut writer = WriteBehind::new(file).unwrap();
                if restart {
                    writer
                        .write(Bytes::from_static(b"thrown away"))
                        .await
                        .unwrap();
                    writer.restart().await.unwrap();
                }
                for chunk in cowsay.chunks(16 << 10) {
                    writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
                }
                writer.finish().await.unwrap().wait()
            }
        };
        let streamed = write(dir.path().join("a"), 0, false)
            .await
            .expect("digests");
        assert_eq!(streamed.len(), 1, "cowsay has one atom");
        assert_eq!(
            write(dir.path().join("b"), 0, true).await,
            Some(streamed.clone())
        );
        // Started elsewhere than at its start: nothing is hashed, until a restart.
        assert_eq!(write(dir.path().join("c"), 5, false).await, None);
        assert_eq!(write(dir.path().join("d"), 5, true).await, Some(streamed));
    }

    #[tokio::test]
    async fn a_write_error_is_reported_by_the_next_operation() {
        let dir = tempfile::tempdir().unwrap();
        // A file opened read-only: every write fails.
        let path = dir.path().join("read-only");
        std::fs::write(&path, b"").unwrap();
        let file = File::open(&path).unwrap();
        let mut writer = WriteBehind::new(file).unwrap();
        let _ = writer.write(Bytes::from_static(b"x")).await;
        let error = writer.flush().await.unwrap_err();
        assert!(error.to_string().contains("Bad file descriptor"), "{error}");
        let again = writer.write(Bytes::from_static(b"y")).await.unwrap_err();
        assert_eq!(
            again.to_string(),
            error.to_string(),
            "the first error, told again"
        );
    }
}
