//! The operations HTTP server: `/metrics`, `/healthz`, `/readyz`.
//!
//! [`router`] builds the axum router (tested without a socket through
//! `tower::ServiceExt::oneshot`); [`serve`] runs it on a listener until a
//! [`CancellationToken`] fires.
//!
//! - `GET /metrics`: the [`Metrics`] registry as OpenMetrics text.
//! - `GET /healthz`: `200 ok` while the process runs (liveness).
//! - `GET /readyz`: runs every [`Readiness`] check concurrently, each bounded
//!   by a timeout; `200 {"ready":true,"failing":[]}` when all pass, else
//!   `503 {"ready":false,"failing":[{"check":"nats","error":"..."}]}`.
//! - the routes of a service's API, when given ([`router_with`]);
//! - anything else: `404 {"error":"not found"}`.
//!
//! Every request goes through load shedding, a concurrency limit shared by
//! all routes and a timeout; connections are capped before `accept`.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture as _};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Json, Router};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};

/// How long one readiness check may run before it counts as failing: 2 s
/// leaves room for a database round trip under load, while `/readyz` still
/// answers well within [`HTTP_REQUEST_TIMEOUT`] and a probe's
/// `timeoutSeconds: 3`.
pub const READINESS_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The most bytes of a failing check's error `/readyz` returns; the rest is
/// cut, so a check cannot make the response arbitrarily large.
pub const MAX_CHECK_ERROR_LEN: usize = 512;

/// How long a request may take before it is answered `408`. Above
/// [`READINESS_CHECK_TIMEOUT`] so `/readyz` reports its failing checks
/// rather than timing out itself; a scrape of a large registry takes
/// milliseconds.
pub const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests served at once, across all routes; beyond it requests are shed
/// with `503` at once. Scrapers and probes send a handful at a time: 64
/// leaves room for several of each and bounds the `/readyz` checks in flight.
pub const HTTP_CONCURRENCY_LIMIT: usize = 64;

/// The largest request body accepted. The endpoints take no body; 16 KiB is
/// generous for anything a probe might send.
pub const HTTP_BODY_LIMIT: usize = 16 * 1024;

/// Open connections at most. Each holds a task and buffers; 256 covers every
/// scraper and probe of a node many times over. The permit is taken before
/// `accept`, so past it connections wait in the kernel's backlog.
pub const MAX_HTTP_CONNECTIONS: usize = 256;

/// How long [`serve`] lets in-flight requests finish after shutdown is
/// requested before it returns anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The operations router for `metrics` and `ready`, with its limits applied.
pub fn router(metrics: Metrics, ready: Readiness) -> Router {
    router_with(metrics, ready, Router::new())
}

/// [`router`] with the routes of `api` too (a service's REST API, e.g. the
/// chain's), under the same limits. `api` may raise the body limit for its
/// own routes with a `DefaultBodyLimit` layer of its own.
pub fn router_with(metrics: Metrics, ready: Readiness, api: Router) -> Router {
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(limit_error))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(HTTP_CONCURRENCY_LIMIT))
        .timeout(HTTP_REQUEST_TIMEOUT);
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(AppState { metrics, ready })
        .merge(api)
        .layer(limits)
        .layer(DefaultBodyLimit::max(HTTP_BODY_LIMIT))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops
/// accepting, lets in-flight requests finish (at most [`SHUTDOWN_GRACE`]) and
/// returns. At most [`MAX_HTTP_CONNECTIONS`] connections are open at once.
///
/// # Errors
///
/// An I/O error from the server.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let listener = CappedListener {
        inner: listener,
        permits: Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS)),
    };
    if let Ok(addr) = axum::serve::Listener::local_addr(&listener) {
        tracing::info!(%addr, "operations HTTP server listening");
    }
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    let grace_over = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result,
        () = grace_over => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "operations HTTP server stopped with requests in flight");
            Ok(())
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    ready: Readiness,
}

async fn metrics_handler(State(state): State<AppState>) -> Result<Response, HttpError> {
    let text = state.metrics.try_encode().map_err(|error| {
        tracing::error!(%error, "encoding metrics failed");
        HttpError::Internal
    })?;
    Ok(([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadinessReport>) {
    let report = state.ready.check().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

async fn not_found() -> HttpError {
    HttpError::NotFound
}

/// Maps the limit layers' errors to responses.
async fn limit_error(error: BoxError) -> HttpError {
    if error.is::<tower::timeout::error::Elapsed>() {
        HttpError::Timeout
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        HttpError::Overloaded
    } else {
        tracing::error!(%error, "operations HTTP middleware failed");
        HttpError::Internal
    }
}

/// Every error the router answers, as JSON `{"error": "..."}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HttpError {
    NotFound,
    Timeout,
    Overloaded,
    Internal,
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not found"),
            Self::Timeout => (StatusCode::REQUEST_TIMEOUT, "request timed out"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// One check of a [`Readiness`] set.
#[derive(Clone)]
struct NamedCheck {
    name: Arc<str>,
    check: CheckFn,
}

/// A set of named asynchronous readiness checks (NATS connected, database
/// reachable, ...). Cloning is cheap and clones share the set, so checks can
/// be added after the router is built.
///
/// ```
/// let ready = skywire_telemetry::Readiness::new();
/// ready.add("nats", || async { Ok(()) });
/// ready.add("db", || async { Err("connection refused".to_owned()) });
/// ```
#[derive(Clone)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<NamedCheck>>>,
    check_timeout: Duration,
}

impl Readiness {
    /// No checks (ready), each future check bounded by
    /// [`READINESS_CHECK_TIMEOUT`].
    pub fn new() -> Self {
        Self::with_check_timeout(READINESS_CHECK_TIMEOUT)
    }

    /// No checks, each future check bounded by `check_timeout`.
    pub fn with_check_timeout(check_timeout: Duration) -> Self {
        Self {
            checks: Arc::default(),
            check_timeout,
        }
    }

    /// Adds the check `name`: `check()` is called on every `/readyz` and must
    /// resolve to `Ok(())` when ready, or `Err(why)`. `why` is shown to
    /// whoever can reach the endpoint: no secrets in it.
    pub fn add<F, Fut>(&self, name: impl Into<Arc<str>>, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let check: CheckFn = Arc::new(move || -> CheckFuture { Box::pin(check()) });
        self.lock().push(NamedCheck {
            name: name.into(),
            check,
        });
    }

    /// Runs every check concurrently, each bounded by the check timeout, and
    /// reports those that fail (in the order they were added).
    pub async fn check(&self) -> ReadinessReport {
        let checks = self.lock().clone();
        let mut running = JoinSet::new();
        let mut names = HashMap::with_capacity(checks.len());
        for (index, NamedCheck { name, check }) in checks.into_iter().enumerate() {
            let timeout = self.check_timeout;
            let future = check();
            let task = running.spawn(async move {
                match tokio::time::timeout(timeout, future).await {
                    Ok(outcome) => outcome,
                    Err(_elapsed) => Err(format!("timed out after {timeout:?}")),
                }
            });
            names.insert(task.id(), (index, name));
        }
        let mut failing = Vec::new();
        while let Some(joined) = running.join_next_with_id().await {
            let (id, error) = match joined {
                Ok((_, Ok(()))) => continue,
                Ok((id, Err(error))) => (id, error),
                Err(join_error) if join_error.is_panic() => {
                    (join_error.id(), "check panicked".to_owned())
                }
                Err(join_error) => (join_error.id(), "check cancelled".to_owned()),
            };
            if let Some((index, name)) = names.remove(&id) {
                failing.push((
                    index,
                    FailingCheck {
                        check: name.to_string(),
                        error: truncate(error, MAX_CHECK_ERROR_LEN),
                    },
                ));
            }
        }
        failing.sort_by_key(|(index, _)| *index);
        let failing: Vec<FailingCheck> = failing.into_iter().map(|(_, failed)| failed).collect();
        for failed in &failing {
            tracing::debug!(check = %failed.check, error = %failed.error, "readiness check failing");
        }
        ReadinessReport {
            ready: failing.is_empty(),
            failing,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<NamedCheck>> {
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .lock()
            .iter()
            .map(|named| named.name.to_string())
            .collect();
        f.debug_struct("Readiness")
            .field("checks", &names)
            .field("check_timeout", &self.check_timeout)
            .finish()
    }
}

/// The outcome of [`Readiness::check`], as `/readyz` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    /// Whether every check passed.
    pub ready: bool,
    /// The checks that failed, in the order they were added.
    pub failing: Vec<FailingCheck>,
}

/// One failing readiness check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailingCheck {
    /// The check's name.
    pub check: String,
    /// Why it failed (at most [`MAX_CHECK_ERROR_LEN`] bytes).
    pub error: String,
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A `TcpListener` that takes a connection permit before each `accept` and
/// holds it for the connection's life.
struct CappedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = match Arc::clone(&self.permits).acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed; if it were, run uncapped rather
            // than stop serving.
            Err(_closed) => {
                let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
                return (
                    CappedStream {
                        stream,
                        _permit: None,
                    },
                    addr,
                );
            }
        };
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (
            CappedStream {
                stream,
                _permit: Some(permit),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding its [`CappedListener`] permit.
struct CappedStream {
    stream: TcpStream,
    _permit: Option<OwnedSemaphorePermit>,
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo".to_owned(), 2), "h");
        assert_eq!(truncate("hello".to_owned(), 10), "hello");
        assert_eq!(truncate("hello".to_owned(), 3), "hel");
    }
}
