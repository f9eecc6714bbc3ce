//! The server loop: accepts connections and serves each with hyper.
//!
//! Hand-written instead of `axum::serve` (whose loop this follows) because
//! `axum::serve` offers no knob for what an audit found missing at the edge:
//!
//! - a **header-read timeout**: hyper closes a connection whose request
//!   head has not fully arrived within it. The timer also runs while a
//!   kept-alive connection waits for its next request, so an idle or
//!   stalled connection is closed too (300 stalled connections used to stay
//!   open for as long as their clients liked);
//! - a **connection cap**: a semaphore permit is taken *before* `accept`,
//!   so past the cap new connections wait in the kernel's backlog instead
//!   of costing a task and buffers each (mini-redis `server.rs`).
//!   `ConcurrencyLimitLayer` would cap requests in flight, not sockets held.
//!
//! The body-read timeout is a layer of the router instead (see
//! [`super::router`]): it needs the request, not the socket.
//!
//! HTTP/1.1 only: hyper-util's automatic HTTP/2 detection reads the
//! connection preface with no timeout at all, which would reopen the hole
//! for a client that connects and sends nothing. Vitrine's clients
//! (BakaiMarket, the reverse proxy, shoppers' browsers through it) speak
//! HTTP/1.1.
//!
//! On shutdown it stops accepting, asks every connection to finish its
//! request in flight and close (hyper's graceful shutdown), and resolves
//! once all have closed; the caller bounds that wait with its grace.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo, http::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

/// The connection-level limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Most connections open at once (≥ 1).
    pub max_connections: usize,
    /// How long a client may take to send a request's head, and how long a
    /// kept-alive connection may wait for its next request.
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` is cancelled, then drains the
/// open connections. Each request carries the peer's [`ConnectInfo`]
/// (`SocketAddr`), as with `into_make_service_with_connect_info`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stop.cancelled() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let service = app.clone().map_request(move |req: Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let builder = builder.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            // Held for as long as the connection is open.
            let _permit = permit;
            let hyper_service = TowerToHyperService::new(service);
            let conn = builder.serve_connection(TokioIo::new(tcp), hyper_service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => log_conn_end(peer, r),
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    log_conn_end(peer, conn.await);
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

fn log_conn_end(
    peer: SocketAddr,
    r: Result<(), Box<dyn std::error::Error + Send + Sync + 'static>>,
) {
    if let Err(e) = r {
        // Header timeouts, resets and malformed requests: the client's
        // doing, not worth more than a debug line.
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// As axum does: errors of one connection (reset before accept) are
/// ignored; others (out of file descriptors) pause accepting for a second
/// instead of spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
