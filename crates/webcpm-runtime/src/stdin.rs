//! The program's standard input on wasmtime, ready the way a native program sees it.
//!
//! wasmtime-wasi reads stdin on a worker thread: a stream is ready only once that thread has
//! read something, so a program that `poll_oneoff`s stdin with a zero timeout is told an
//! already-filled pipe is not ready, and does other work first (minimodem's transmitter wrote
//! a varying amount of idle carrier before its data). Here stdin is ready as soon as the kernel
//! says fd 0 has data or has reached its end (`poll(2)` with no wait), as on Wasmer and for a
//! native program; reading still goes through wasmtime's worker thread.

use bytes::Bytes;
use tokio::io::AsyncRead;
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamResult};

/// This process's stdin, for the program.
pub(crate) struct Stdin;

impl IsTerminal for Stdin {
    fn is_terminal(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stdin())
    }
}

impl StdinStream for Stdin {
    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        std::io::stdin().async_stream()
    }

    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(ReadyStdin {
            inner: std::io::stdin().p2_stream(),
        })
    }
}

/// wasmtime's stdin stream, ready when the kernel says so.
struct ReadyStdin {
    inner: Box<dyn InputStream>,
}

/// Whether fd 0 has data to read or has reached its end, without waiting.
fn readable_now() -> bool {
    let mut fd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n > 0 && fd.revents & (libc::POLLIN | libc::POLLHUP) != 0
}

/// Reading is wasmtime's own: a blocking read waits on its worker thread (this stream's
/// readiness says only that the kernel has data, which the worker may not have read yet).
#[wasmtime_wasi::async_trait]
impl InputStream for ReadyStdin {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.inner.read(size)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.inner.blocking_read(size).await
    }

    fn skip(&mut self, nelem: usize) -> StreamResult<usize> {
        self.inner.skip(nelem)
    }

    async fn blocking_skip(&mut self, nelem: usize) -> StreamResult<usize> {
        self.inner.blocking_skip(nelem).await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ReadyStdin {
    async fn ready(&mut self) {
        if readable_now() {
            return;
        }
        self.inner.ready().await
    }
}
