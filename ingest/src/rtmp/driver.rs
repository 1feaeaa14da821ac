//! The tokio driver for RTMP and RTMPS: accepts TCP connections on the RTMP port (or TLS ones on
//! the RTMPS port), pumps bytes through a [`ServerSession`], publishes to the Bus, and hands
//! players to the caller's play handler. Both transports share everything past the TLS
//! handshake: a connection is a boxed byte stream.

use super::demux::{Demuxed, MediaDemuxer};
use super::session::{ServerSession, SessionConfig, SessionError, SessionEvent};
use bytes::{Buf, Bytes};
use rill_media::access::{self, Denied, Gate, Protocol};
use rill_media::{Bus, BusError, PublisherInfo, StreamPath};
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, info_span, warn, Instrument};

/// Why a publish request was refused. The message never contains the stream key.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PublishRefusal {
    /// The access decision said no (unknown key, bad or missing token…).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Carries no text: a misplaced stream key often lands in the app name.
    #[error("application not served (use server rtmp://HOST/live with the stream key as the key)")]
    UnknownApp,
    #[error("invalid stream name (allowed: [A-Za-z0-9_-]{{1,64}})")]
    InvalidName,
    #[error("stream is already being published")]
    AlreadyPublishing,
    /// The Bus refused the publisher for another reason (its message names the stream path).
    #[error("the stream cannot be published: {0}")]
    Refused(String),
}

impl From<BusError> for PublishRefusal {
    fn from(e: BusError) -> Self {
        match e {
            BusError::AlreadyPublishing(_) => PublishRefusal::AlreadyPublishing,
            other => PublishRefusal::Refused(other.to_string()),
        }
    }
}

impl PublishRefusal {
    /// Whether the answer waits a random moment first ([`access::refusal_delay`]): a guessed
    /// credential, or an address refused for guessing.
    pub fn is_slowed(&self) -> bool {
        matches!(self, PublishRefusal::Denied(denied) if denied.is_slowed())
    }

    /// The RTMP `onStatus` code sent with the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            PublishRefusal::Denied(_) => "NetStream.Publish.Unauthorized",
            _ => "NetStream.Publish.BadName",
        }
    }
}

/// The public stream name a publisher may publish as (`app` must be `live`), from what it
/// gave where the key goes and the `token` of its name's query, as the access decision says.
pub fn resolve_publish(
    gate: &dyn Gate,
    protocol: Protocol,
    app: &str,
    given: &str,
    token: Option<&str>,
    peer: Option<std::net::IpAddr>,
) -> Result<String, PublishRefusal> {
    if app != "live" {
        return Err(PublishRefusal::UnknownApp);
    }
    match gate.decide(&access::Request::publish(protocol, given, token, peer)) {
        Ok(grant) => Ok(grant.name),
        // A malformed name is not a failed credential (metrics and codes keep them apart).
        Err(Denied::InvalidName) => Err(PublishRefusal::InvalidName),
        Err(denied) => Err(denied.into()),
    }
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct RtmpStats {
    pub connections_total: AtomicU64,
    pub connections_open: AtomicU64,
    pub publishers_open: AtomicU64,
    pub auth_failures: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// Everything a connection needs.
pub struct RtmpContext {
    pub bus: Bus,
    /// The access decision (stream keys, publish tokens).
    pub access: Arc<dyn Gate>,
    pub session: SessionConfig,
    /// From accept to a publish/play request.
    pub handshake_timeout: Duration,
    /// A publisher silent this long is disconnected.
    pub idle_timeout: Duration,
    /// A write that makes no progress this long closes the connection.
    pub write_timeout: Duration,
    pub stats: Arc<RtmpStats>,
}

#[derive(Debug, Error)]
pub enum ConnError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
}

impl ConnError {
    /// True when the peer simply went away (reset, closed mid-write): an ordinary way to leave,
    /// not a fault worth a warning.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, ConnError::Io(e) if matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted | io::ErrorKind::UnexpectedEof
        ))
    }
}

/// A play request handed to the play handler, with its connection.
pub struct PlayRequest {
    pub app: String,
    pub name: String,
    /// What followed `?` in the name (`rtmp://HOST/live/<name>?token=…`).
    pub query: Option<String>,
    /// RTMP or RTMPS.
    pub protocol: Protocol,
    pub conn: Connection,
}

/// The byte stream under an RTMP connection: TCP, or TLS over TCP (RTMPS).
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// An RTMP connection past its handshake: the socket and the session core.
pub struct Connection {
    socket: Box<dyn Transport>,
    session: ServerSession,
    peer: SocketAddr,
    /// Grows from 4 KiB to 64 KiB only for peers that fill it (publishers); players stay small.
    read_buf: Vec<u8>,
    pending: Vec<Bytes>,
    write_timeout: Duration,
    stats: Arc<RtmpStats>,
}

impl Connection {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn session(&mut self) -> &mut ServerSession {
        &mut self.session
    }

    /// Reads once from the socket and feeds the session. `Ok(false)` at end of stream.
    /// Cancel-safe.
    pub async fn read(&mut self) -> Result<bool, ConnError> {
        let n = self.socket.read(&mut self.read_buf).await?;
        if n == 0 {
            return Ok(false);
        }
        if n == self.read_buf.len() && n < MAX_READ_BUF {
            self.read_buf.resize(n * 2, 0);
        }
        self.stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        self.session.feed(&self.read_buf[..n])?;
        Ok(true)
    }

    /// Writes everything the session has queued, with vectored writes, within the write timeout.
    pub async fn flush(&mut self) -> Result<(), ConnError> {
        self.session.take_output(&mut self.pending);
        let written = tokio::time::timeout(self.write_timeout, write_all_pieces(&mut self.socket, &mut self.pending))
            .await
            .map_err(|_| ConnError::Timeout("writing to a peer that does not read"))??;
        self.stats.bytes_out.fetch_add(written as u64, Ordering::Relaxed);
        Ok(())
    }
}

const MAX_READ_BUF: usize = 64 * 1024;

/// Writes `pieces` in order with `writev`, consuming them. Returns the bytes written.
pub async fn write_all_pieces(
    socket: &mut (impl AsyncWrite + Unpin + ?Sized),
    pieces: &mut Vec<Bytes>,
) -> io::Result<usize> {
    const MAX_IOVECS: usize = 64;
    let mut start = 0;
    let mut total = 0;
    while start < pieces.len() {
        // On the stack: this runs per write per viewer.
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        for piece in pieces[start..].iter().filter(|p| !p.is_empty()).take(MAX_IOVECS) {
            slices[count] = IoSlice::new(piece);
            count += 1;
        }
        if count == 0 {
            break;
        }
        let mut n = socket.write_vectored(&slices[..count]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        total += n;
        while n > 0 {
            let len = pieces[start].len();
            if n >= len {
                n -= len;
                start += 1;
            } else {
                pieces[start].advance(n);
                n = 0;
            }
        }
        while start < pieces.len() && pieces[start].is_empty() {
            start += 1;
        }
    }
    pieces.clear();
    Ok(total)
}

/// Accepts RTMP connections forever. Publishers go to the Bus; players to `on_play`.
pub async fn serve<P, F>(listener: TcpListener, ctx: Arc<RtmpContext>, on_play: P)
where
    P: Fn(PlayRequest) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    accept_loop(listener, ctx, on_play, None).await
}

/// Serves RTMPS: RTMP inside TLS (`tls` holds the certificate), otherwise the same as [`serve`].
/// Publishers show up with the protocol `rtmps`.
pub async fn serve_tls<P, F>(listener: TcpListener, tls: TlsAcceptor, ctx: Arc<RtmpContext>, on_play: P)
where
    P: Fn(PlayRequest) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    accept_loop(listener, ctx, on_play, Some(tls)).await
}

async fn accept_loop<P, F>(listener: TcpListener, ctx: Arc<RtmpContext>, on_play: P, tls: Option<TlsAcceptor>)
where
    P: Fn(PlayRequest) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let protocol = if tls.is_some() { "rtmps" } else { "rtmp" };
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "{protocol} accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let ctx = ctx.clone();
        let on_play = on_play.clone();
        let tls = tls.clone();
        let span = info_span!("rtmp", %peer, protocol, stream = tracing::field::Empty);
        tokio::spawn(
            async move {
                ctx.stats.connections_total.fetch_add(1, Ordering::Relaxed);
                ctx.stats.connections_open.fetch_add(1, Ordering::Relaxed);
                let outcome = match secure(socket, tls.as_ref(), ctx.handshake_timeout).await {
                    Ok(transport) => connection(transport, peer, protocol, &ctx, on_play).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => {}
                    Err(e) if e.is_disconnect() => info!(reason = %e, "RTMP peer disconnected"),
                    Err(e) => {
                        ctx.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                        warn!(error = %e, "RTMP connection closed on error");
                    }
                }
                ctx.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
            }
            .instrument(span),
        );
    }
}

/// The connection's transport: the TCP socket itself, or TLS over it once the TLS handshake
/// completes (within the RTMP handshake timeout).
async fn secure(
    socket: TcpStream,
    tls: Option<&TlsAcceptor>,
    timeout: Duration,
) -> Result<Box<dyn Transport>, ConnError> {
    let Some(tls) = tls else { return Ok(Box::new(socket)) };
    let stream = tokio::time::timeout(timeout, tls.accept(socket))
        .await
        .map_err(|_| ConnError::Timeout("TLS handshake"))?
        .map_err(ConnError::Tls)?;
    Ok(Box::new(stream))
}

enum Request {
    Publish { app: String, key: String, query: Option<String> },
    Play { app: String, name: String, query: Option<String> },
}

async fn connection<P, F>(
    socket: Box<dyn Transport>,
    peer: SocketAddr,
    protocol: &'static str,
    ctx: &RtmpContext,
    on_play: P,
) -> Result<(), ConnError>
where
    P: Fn(PlayRequest) -> F,
    F: Future<Output = ()>,
{
    let mut conn = Connection {
        socket,
        session: ServerSession::new(ctx.session.clone()),
        peer,
        read_buf: vec![0u8; 4096],
        pending: Vec::new(),
        write_timeout: ctx.write_timeout,
        stats: ctx.stats.clone(),
    };
    let request = tokio::time::timeout(ctx.handshake_timeout, async {
        loop {
            if !conn.read().await? {
                return Ok::<_, ConnError>(None);
            }
            conn.flush().await?;
            while let Some(event) = conn.session.poll_event() {
                match event {
                    SessionEvent::PublishRequested { app, key, query } => {
                        return Ok(Some(Request::Publish { app, key, query }))
                    }
                    SessionEvent::PlayRequested { app, name, query } => {
                        return Ok(Some(Request::Play { app, name, query }))
                    }
                    other => debug!(?other, "event before publish/play"),
                }
            }
        }
    })
    .await
    .map_err(|_| ConnError::Timeout("waiting for publish or play"))??;
    match request {
        None => Ok(()),
        Some(Request::Publish { app, key, query }) => {
            let token = query.as_deref().and_then(access::token_from_query);
            publish(conn, ctx, protocol, &app, &key, token).await
        }
        Some(Request::Play { app, name, query }) => {
            tracing::Span::current().record("stream", name.as_str());
            let protocol = if protocol == "rtmps" { Protocol::Rtmps } else { Protocol::Rtmp };
            on_play(PlayRequest { app, name, query, protocol, conn }).await;
            Ok(())
        }
    }
}

async fn publish(
    mut conn: Connection,
    ctx: &RtmpContext,
    protocol: &'static str,
    app: &str,
    key: &str,
    token: Option<&str>,
) -> Result<(), ConnError> {
    let refuse = |refusal: PublishRefusal| {
        if matches!(refusal, PublishRefusal::Denied(_)) {
            ctx.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
        }
        warn!(reason = %refusal, "publish refused");
        refusal
    };
    let access_protocol = if protocol == "rtmps" { Protocol::Rtmps } else { Protocol::Rtmp };
    let granted = resolve_publish(&*ctx.access, access_protocol, app, key, token, Some(conn.peer.ip()))
        .map_err(refuse)
        .and_then(|name| {
            let path = StreamPath::live(&name).map_err(|_| refuse(PublishRefusal::InvalidName))?;
            let info = PublisherInfo { protocol, peer: conn.peer.to_string() };
            match ctx.bus.publish(&path, info) {
                Ok(publisher) => Ok((name, publisher)),
                Err(e) => Err(refuse(e.into())),
            }
        });
    let (name, publisher) = match granted {
        Ok(granted) => granted,
        Err(refusal) => {
            if refusal.is_slowed() {
                tokio::time::sleep(access::refusal_delay()).await;
            }
            conn.session.reject_publish(refusal.code(), &refusal.to_string())?;
            return conn.flush().await;
        }
    };
    tracing::Span::current().record("stream", name.as_str());
    conn.session.accept_publish()?;
    conn.flush().await?;
    info!("publishing started");
    ctx.stats.publishers_open.fetch_add(1, Ordering::Relaxed);
    let result = pump_publisher(&mut conn, ctx, &publisher).await;
    ctx.stats.publishers_open.fetch_sub(1, Ordering::Relaxed);
    info!(outcome = ?result.as_ref().map(|_| "ended"), "publishing stopped");
    result
}

async fn pump_publisher(
    conn: &mut Connection,
    ctx: &RtmpContext,
    publisher: &rill_media::Publisher,
) -> Result<(), ConnError> {
    let mut demux = MediaDemuxer::default();
    let mut tracks_dirty = true;
    loop {
        tokio::select! {
            _ = publisher.kicked() => {
                info!("publisher kicked by operator");
                return Ok(());
            }
            read = tokio::time::timeout(ctx.idle_timeout, conn.read()) => {
                if !read.map_err(|_| ConnError::Timeout("waiting for media from the publisher"))?? {
                    return Ok(());
                }
            }
        }
        while let Some(event) = conn.session.poll_event() {
            let demuxed = match event {
                SessionEvent::Video { timestamp, body } => demux.video(timestamp, &body),
                SessionEvent::Audio { timestamp, body } => demux.audio(timestamp, &body),
                SessionEvent::Metadata { encoder } => {
                    demux.set_encoder(encoder);
                    Ok(Demuxed::Config)
                }
                SessionEvent::StreamClosed => return Ok(()),
                SessionEvent::PublishRequested { .. } | SessionEvent::PlayRequested { .. } => {
                    debug!("ignoring a second publish/play on a publishing connection");
                    continue;
                }
            };
            match demuxed {
                Ok(Demuxed::Frame(frame)) => {
                    if tracks_dirty {
                        publisher.set_tracks(demux.tracks().clone());
                        tracks_dirty = false;
                    }
                    publisher.push(frame);
                }
                Ok(Demuxed::Config) => tracks_dirty = true,
                Ok(Demuxed::Dropped(what)) => {
                    if demux.first_time(&what) {
                        warn!(?what, "dropping media Rill cannot carry yet");
                    }
                }
                Err(e) => {
                    ctx.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "dropping malformed media message");
                }
            }
        }
        if conn.session.has_output() {
            conn.flush().await?;
        }
    }
}
