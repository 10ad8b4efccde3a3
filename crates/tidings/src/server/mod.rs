//! Serving a hub on a socket: plain TCP (HTTP/1.1 and h2c) or TLS (HTTP/2
//! and HTTP/1.1 through ALPN), with graceful shutdown.

mod direct;
mod rewind;

use crate::http::HubHttp;
use crate::hub::Hub;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Serves `hub` on `listener` until `shutdown` resolves, then ends every
/// stream cleanly (clients reconnect elsewhere) and waits for connections
/// to finish, at most `grace`.
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()> {
    let http = Arc::new(HubHttp::new(hub.clone()));
    let router = crate::http::standalone(http.clone());
    let graceful = GracefulShutdown::new();
    let mut spare = Spare::reserve();
    tokio::pin!(shutdown);
    loop {
        let (socket, _) = tokio::select! {
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
        let http = http.clone();
        let router = router.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let service = TowerToHyperService::new(router);
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(tls) => match tls.accept(socket).await {
                    Ok(stream) => watcher
                        .watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned())
                        .await
                        .map_err(io::Error::other),
                    Err(error) => Err(error),
                },
                None => serve_plain(socket, &http, builder, service, watcher).await,
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: ending streams");
    hub.shutdown();
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the grace period");
    }
    Ok(())
}

async fn serve_plain(
    socket: TcpStream,
    http: &HubHttp,
    builder: auto::Builder<TokioExecutor>,
    service: TowerToHyperService<axum::Router>,
    watcher: hyper_util::server::graceful::Watcher,
) -> io::Result<()> {
    match direct::route(socket, http).await? {
        direct::Route::Served => Ok(()),
        direct::Route::Hyper(stream) => watcher
            .watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned())
            .await
            .map_err(io::Error::other),
    }
}

/// A file descriptor held in reserve. When the process runs out, it is
/// released to accept and close one waiting connection, so clients are
/// refused at once instead of hanging in the backlog.
struct Spare(Option<std::fs::File>);

impl Spare {
    fn reserve() -> Spare {
        Spare(std::fs::File::open("/dev/null").ok())
    }

    async fn refuse_one(&mut self, listener: &TcpListener, error: &io::Error) {
        let out_of_files = matches!(error.raw_os_error(), Some(code) if code == 23 || code == 24);
        if !out_of_files {
            tracing::warn!(%error, "accept failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
            return;
        }
        tracing::warn!("refusing a connection: out of file descriptors (raise the open-files limit)");
        self.0 = None;
        if let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
        *self = Spare::reserve();
    }
}
