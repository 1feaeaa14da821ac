//! The HTTP port: the axum router (API, HTTP-FLV, metrics, health) and a listener whose
//! connections fail a write that makes no progress for `http.write_timeout_s` (so a viewer
//! that stops reading is disconnected instead of holding its connection forever).

use crate::{api, metrics, AppState};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use rill_media::StreamPath;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::handler))
        .route("/live/{file}", get(live_file))
        .merge(crate::live_http::routes())
        .merge(crate::vod_http::routes())
        .merge(crate::player::router())
        .merge(crate::webrtc_http::routes())
        .nest("/api/v1", api::router(state.clone()))
        .with_state(state)
}

/// How long a viewer's request waits for an on-demand source (a camera) to start.
pub const ON_DEMAND_WAIT: Duration = Duration::from_secs(10);

/// `GET /live/<name>.flv`: HTTP-FLV.
async fn live_file(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Path(file): Path<String>,
) -> Response {
    let Some(name) = file.strip_suffix(".flv") else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let Ok(path) = StreamPath::live(name) else {
        return (StatusCode::BAD_REQUEST, "invalid stream name (allowed: [A-Za-z0-9_-]{1,64})\n").into_response();
    };
    app.bus.request(&path, ON_DEMAND_WAIT).await;
    if let Some(snapshot) = app.bus.stream_snapshot(&path) {
        // A WebRTC publisher's VP8 video and Opus audio have no FLV form: refuse clearly rather
        // than send an FLV without tags.
        let tracks = &snapshot.tracks;
        let codecs: Vec<&rill_media::CodecConfig> = tracks.video.iter().chain(tracks.audio.iter()).collect();
        if !codecs.is_empty() && !codecs.iter().any(|c| rill_media::flv::carries(c)) {
            let names: Vec<&str> = codecs.iter().map(|c| c.name()).collect();
            return (
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "stream {name} is {}, which HTTP-FLV does not carry; watch it over WebRTC (/play/{name}?mode=webrtc)\n",
                    names.join(" + ")
                ),
            )
                .into_response();
        }
    }
    let Ok(sub) = app.bus.subscribe(&path, "http-flv") else {
        return (StatusCode::NOT_FOUND, format!("stream {name} is not live\n")).into_response();
    };
    app.relay_stats.viewers_total.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("http-flv", %peer, stream = name);
    span.in_scope(|| tracing::info!("viewer started"));
    let guard = ViewerLog { span, started: Instant::now() };
    let body = rill_relay::http_flv::body(sub, app.relay_stats.clone()).map(move |piece| {
        let _ = &guard;
        piece
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "video/x-flv")
        .header(header::CACHE_CONTROL, "no-cache, no-store")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"))
        .body(Body::from_stream(body))
        .expect("static headers are valid")
}

struct ViewerLog {
    span: tracing::Span,
    started: Instant,
}

impl Drop for ViewerLog {
    fn drop(&mut self) {
        self.span.in_scope(|| tracing::info!(watched_s = self.started.elapsed().as_secs(), "viewer stopped"));
    }
}

/// The remote address of an HTTP connection (axum `ConnectInfo`).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TimeoutListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TimeoutListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// A TCP listener whose connections time out stalled writes.
pub struct TimeoutListener {
    pub inner: TcpListener,
    pub write_timeout: Duration,
}

impl axum::serve::Listener for TimeoutListener {
    type Io = WriteTimeout<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (WriteTimeout { inner: stream, timeout: self.write_timeout, stalled: None }, addr);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Fails a write with `TimedOut` once it has been pending for `timeout`.
pub struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn guard<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading")))
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
