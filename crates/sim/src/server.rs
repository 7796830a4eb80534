//! The accept loop: one hyper HTTP/1 connection task per client, owned by a task tracker, and
//! one shutdown path.
//!
//! axum's own `serve` cannot close a connection without answering, which the `drop` fault
//! needs; here the service fails the request instead, and hyper closes the connection.

use crate::api::{App, router};
use crate::reply::DropConnection;
use crate::simulator::Simulator;
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long open connections get to finish their current request after shutdown.
const GRACE: Duration = Duration::from_secs(2);

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The error a service returns to make hyper close the connection without a response.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

impl Simulator {
    /// Serves until `shutdown` is cancelled, then lets open connections finish (for at most
    /// two seconds) and returns. Uses the listener's local address for absolute nextLinks.
    ///
    /// # Errors
    ///
    /// Only when the listener's local address cannot be read; failed accepts are logged and
    /// retried.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let local = listener.local_addr()?;
        let router = router(App {
            sim: self.clone(),
            local,
        });
        let tracker = TaskTracker::new();
        tracing::info!(%local, "graph simulator listening");
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "simulator accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            tracker.spawn(connection(stream, router.clone(), shutdown.clone()));
        }
        tracker.close();
        tracker.wait().await;
        tracing::info!(%local, "graph simulator stopped");
        Ok(())
    }
}

async fn connection(stream: TcpStream, router: Router, shutdown: CancellationToken) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let router = router.clone();
        async move {
            let response = match router.oneshot(request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                return Err(Dropped);
            }
            Ok(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(GRACE, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "simulator connection ended with an error");
    }
}
