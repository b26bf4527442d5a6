//! The HTTPS side: accept TCP, finish the mutual-TLS handshake (the client's certificate names
//! it), serve HTTP/1.1 on the connection, hand each request's body to the [`Handler`] (keyd's
//! [`Service`]; the benchmark's floor serves a no-op handler on the same stack).

use crate::handler::Service;
use crate::identity::ClientIdentity;
use crate::operation::Operation;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What answers a request's body: keyd's [`Service`], or a no-op answer (the benchmark's floor,
/// `tests/src/bin/bench-keyd.rs`).
pub trait Handler: Send + Sync + 'static {
    /// `(status, JSON body)` of one request of `who`.
    fn handle(
        &self,
        who: &ClientIdentity,
        op: Operation,
        body: &[u8],
    ) -> impl Future<Output = (u16, String)> + Send;
}

impl Handler for Service {
    fn handle(
        &self,
        who: &ClientIdentity,
        op: Operation,
        body: &[u8],
    ) -> impl Future<Output = (u16, String)> + Send {
        Service::handle(self, who, op, body)
    }
}

/// The largest request body read: the longest request (a few key-load entries, a step-1 line)
/// is well under it.
pub const MAX_BODY: usize = 64 * 1024;

/// How long a client may take over the TLS handshake: a client that connects and stalls does
/// not hold a connection for ever.
pub const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a request's header may take to arrive (hyper's default once it has a timer).
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn json(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn request<H: Handler>(
    service: Arc<H>,
    who: Arc<ClientIdentity>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let Some(op) = Operation::of_route(req.method().as_str(), req.uri().path()) else {
        let e = crate::api_error::ApiError {
            kind: crate::api_error::ErrorKind::BadRequest,
            code: sscard_core::profile::codes::INVALID_DATA,
            message: format!("no endpoint {} {}", req.method(), req.uri().path()),
        };
        return Ok(json(404, e.body()));
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let e = crate::api_error::ApiError::bad_request(format!(
                "request body: {e} (at most {MAX_BODY} bytes)"
            ));
            return Ok(json(400, e.body()));
        }
    };
    let (status, body) = service.handle(&who, op, &body).await;
    Ok(json(status, body))
}

/// Serves on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: Arc<H>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("keyd: accept: {e}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!("keyd: TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::info!("keyd: TLS handshake with {peer} timed out");
                    return;
                }
            };
            // The verifier required a certificate; without one the handshake failed above.
            let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
                return;
            };
            let who = Arc::new(ClientIdentity::of_certificate(cert.as_ref()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(
                    TokioIo::new(tls),
                    hyper::service::service_fn(move |req| {
                        request(service.clone(), who.clone(), req)
                    }),
                );
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!("keyd: connection from {peer}: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
