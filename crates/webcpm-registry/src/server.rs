//! The HTTP server under the routes: accepts connections, holds the connection limits of
//! [`Limits`] (a connection over them is closed at once), gives each client `header_timeout` to
//! send a request's headers (a slowloris holds a connection for that long, no more), tells the
//! routes the peer's address, and on shutdown stops accepting, lets idle connections go and
//! waits for the requests in flight.
//!
//! A connection speaks HTTP/1.1, or HTTP/2 when it opens with HTTP/2's preface: in clear text
//! to a client that knows the server speaks it, or behind a TLS terminator that negotiated `h2`
//! (ALPN) and passes the bytes on. One HTTP/2 connection carries at most
//! [`MAX_STREAMS`] requests at once; each request meets the same limits as on HTTP/1.1.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tower::ServiceExt;

use super::limits::Limits;

/// Requests one HTTP/2 connection may have in flight at once.
const MAX_STREAMS: u32 = 64;

/// Open connections by address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address; uncounted when dropped.
struct Counted {
    table: Arc<PerAddress>,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl PerAddress {
    fn take(
        table: &Arc<PerAddress>,
        ip: IpAddr,
        most: usize,
        permit: OwnedSemaphorePermit,
    ) -> Option<Counted> {
        let mut open = table.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_default();
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(Counted {
            table: Arc::clone(table),
            ip,
            _permit: permit,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// How connections are served: HTTP/1.1 or HTTP/2, each with its header timeout.
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    builder
}

/// Serves `app` on `listener` until `stop` fires, then waits for the connections to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let http = Arc::new(builder(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let table = Arc::new(PerAddress::default());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // wait a moment rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(
                "refused a connection from {peer}: {} open",
                limits.max_connections
            );
            continue;
        };
        // Behind a trusted proxy, every connection comes from the proxy: only the total counts.
        let most = if limits.trust_forwarded_for {
            limits.max_connections.max(1)
        } else {
            limits.connections_per_address.max(1)
        };
        let Some(counted) =
            PerAddress::take(&table, super::limits::network(peer.ip()), most, permit)
        else {
            tracing::warn!("refused a connection from {peer}: {most} open from that address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(request)
        });
        let (http, watcher) = (Arc::clone(&http), graceful.watcher());
        tokio::spawn(async move {
            let connection = http.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(counted);
        });
    }
    drop(listener);
    // Every request is bounded by its limits; past those, the stragglers are cut.
    let grace = limits.request_timeout + limits.body_timeout * 4;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open after {grace:?} of shutdown: closed");
    }
    Ok(())
}
