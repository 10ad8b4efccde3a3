//! Serving a hub on a socket: plain TCP (HTTP/1.1 and h2c) or TLS (HTTP/2
//! and HTTP/1.1 through ALPN), and HTTP/3 beside TLS, with graceful
//! shutdown.

pub(crate) mod direct;
mod h2;
mod h3;
mod publications;
mod rewind;
mod stall;

pub(crate) use direct::write_reply;
pub use h3::Http3;
pub(crate) use stall::StallWatch;

use crate::forwarded::Peer;
use crate::http::HubHttp;
use crate::hub::Hub;
use crate::per_ip::{IpSlot, SlotHandoff};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use stall::Watched;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Serves `hub` on `listener` (and HTTP/3 on `http3`, advertised with
/// `Alt-Svc`) until `shutdown` resolves, then ends every stream cleanly
/// (clients reconnect elsewhere) and waits for connections to finish, at
/// most `grace`.
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    tls: Option<TlsAcceptor>,
    http3: Option<Http3>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()> {
    let mut http = HubHttp::new(hub.clone());
    http.alt_svc = http3.as_ref().map(Http3::alt_svc).transpose()?;
    let http = Arc::new(http);
    let router = advertise(crate::http::standalone(http.clone()), &http);
    let http3 = http3.map(|http3| {
        let serving = h3::serve(http3, http.clone(), router.clone(), hub.shutdown_token());
        tokio::spawn(serving)
    });
    let graceful = GracefulShutdown::new();
    let mut spare = Spare::reserve();
    tokio::pin!(shutdown);
    loop {
        let (socket, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    spare.refuse_one(&listener, &error).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = socket.set_nodelay(true);
        // Counted from here until the connection closes (a direct event
        // stream takes the count with it); a connection over the limit is
        // still served, with 429 to whatever it asks.
        let (peer, mut slot) = http.admission.accept(address.ip(), hub.metrics());
        let http = http.clone();
        let router = router.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let stopping = hub.shutdown_token();
        let head_timeout = hub.config().limits.head_timeout;
        tokio::spawn(async move {
            let result = match tls {
                Some(tls) => match timeout_as_error(head_timeout, tls.accept(socket)).await {
                    Ok(stream) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                        h2::serve(stream, http, router, peer, stopping, head_timeout).await
                    }
                    Ok(stream) => match tokio::select! {
                        screened = timeout_as_error(head_timeout, direct::screen(stream, http.hub.config().path())) => screened,
                        _ = stopping.cancelled() => Ok(None),
                    } {
                        Ok(Some(stream)) => {
                            serve_hyper(stream, router, peer, slot.take(), watcher, head_timeout)
                                .await
                        }
                        Ok(None) => Ok(()),
                        Err(error) => Err(error),
                    },
                    Err(error) => Err(error),
                },
                // A connection still waiting for its first request when
                // shutdown starts is closed: browsers keep such spares open,
                // and shutdown must not wait for them.
                None => match tokio::select! {
                    routed = timeout_as_error(head_timeout, direct::route(socket, &http, peer, &mut slot)) => routed,
                    _ = stopping.cancelled() => Ok(direct::Route::Served),
                } {
                    Ok(direct::Route::Served) => Ok(()),
                    Ok(direct::Route::Http2(stream)) => {
                        h2::serve(stream, http, router, peer, stopping, head_timeout).await
                    }
                    Ok(direct::Route::Hyper(stream)) => {
                        serve_hyper(stream, router, peer, slot.take(), watcher, head_timeout).await
                    }
                    // Holding the watcher, a connection answering a
                    // publication delays shutdown until its answer is out.
                    Ok(direct::Route::Publication(stream, read, first)) => {
                        match publications::serve(stream, read, first, &http, peer, &stopping).await
                        {
                            Ok(publications::After::Hyper(stream)) => {
                                serve_hyper(
                                    stream,
                                    router,
                                    peer,
                                    slot.take(),
                                    watcher,
                                    head_timeout,
                                )
                                .await
                            }
                            Ok(publications::After::Closed) => Ok(()),
                            Err(error) => Err(error),
                        }
                    }
                    Err(error) => Err(error),
                },
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: ending streams");
    hub.shutdown();
    // Streams on the direct path are not hyper's: wait for them too, so
    // their last events (subscription ends among them) are written.
    let http3_closed = async {
        if let Some(serving) = http3 {
            let _ = serving.await;
        }
    };
    let finished = async { tokio::join!(graceful.shutdown(), hub.closed(), http3_closed) };
    if tokio::time::timeout(grace, finished).await.is_err() {
        tracing::warn!("connections still open after the grace period");
    }
    Ok(())
}

/// Adds `Alt-Svc` to every response of the router when HTTP/3 is on.
fn advertise(router: axum::Router, http: &HubHttp) -> axum::Router {
    let Some(alt_svc) = http.alt_svc.clone() else {
        return router;
    };
    router.layer(axum::middleware::map_response(
        move |mut response: axum::response::Response| {
            let alt_svc = alt_svc.clone();
            async move {
                response
                    .headers_mut()
                    .insert(http::header::ALT_SVC, alt_svc);
                response
            }
        },
    ))
}

/// A connection that has not sent its request head in time is closed.
async fn timeout_as_error<T>(
    limit: Duration,
    work: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no request head in time",
        ))
    })
}

/// Serves an HTTP/1.1 connection with hyper: every request that is not an
/// event stream, and every request over TLS without HTTP/2. Each request
/// carries the connection's peer, its count under a per-address limit (for
/// a WebSocket to take), and the watch that lets a stalled event stream end
/// the connection.
async fn serve_hyper<I>(
    stream: I,
    router: axum::Router,
    peer: Peer,
    slot: Option<IpSlot>,
    watcher: Watcher,
    head_timeout: Duration,
) -> io::Result<()>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let watch = StallWatch::default();
    let handoff = slot.map(SlotHandoff::new);
    let stream = Watched::new(stream, watch.clone());
    let router = tower::ServiceExt::map_request(
        router,
        move |mut request: http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(peer);
            request.extensions_mut().insert(watch.clone());
            if let Some(handoff) = &handoff {
                request.extensions_mut().insert(handoff.clone());
            }
            request
        },
    );
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(direct::MAX_HEAD);
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(router));
    watcher
        .watch(connection.into_owned())
        .await
        .map_err(io::Error::other)
}

/// A file descriptor held in reserve. When the process runs out, it is
/// released to accept and close one waiting connection, so that client is
/// refused at once instead of hanging in the backlog. With the default
/// connection limit (below the open-files limit) this is a last resort.
struct Spare {
    file: Option<std::fs::File>,
    last_warning: Option<std::time::Instant>,
}

impl Spare {
    fn reserve() -> Spare {
        Spare {
            file: std::fs::File::open("/dev/null").ok(),
            last_warning: None,
        }
    }

    async fn refuse_one(&mut self, listener: &TcpListener, error: &io::Error) {
        let out_of_files = matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        if !out_of_files {
            tracing::warn!(%error, "accept failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
            return;
        }
        if self
            .last_warning
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            self.last_warning = Some(std::time::Instant::now());
            tracing::warn!("refusing connections: out of file descriptors (raise the open-files limit or lower --max-connections)");
        }
        self.file = None;
        let accepted = futures_util::FutureExt::now_or_never(listener.accept());
        drop(accepted);
        self.file = std::fs::File::open("/dev/null").ok();
        // Give closing connections a moment to return descriptors.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
