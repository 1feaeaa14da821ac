//! The tokio driver for SRT: one `srt-tokio` listener; per caller, a decision from its streamid
//! (the one access decision: [`resolve_publish`] to publish, a play request to read; the
//! stream's passphrase) before the handshake completes,
//! then a publish pump (SRT payloads → TS demuxer → Bus) or a hand-over to the read handler.
//!
//! Readers (`[srt] playback`, on by default) need a send buffer far larger than srt-tokio's
//! default: see [`SEND_BUFFER_PACKETS`].

use super::streamid::{Mode, StreamIdError, StreamIdRequest};
use crate::keys::{resolve_publish, PublishRefusal, SrtPassphrases};
use futures_util::StreamExt;
use rill_media::access::{self, Denied, Gate, Protocol};
use rill_media::mpegts::{TsDemuxer, TsEvent};
use rill_media::StreamPath;
use rill_media::{Bus, PublisherInfo};
use srt_protocol::settings::KeySettings;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::{KeySize, Passphrase};
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtListener};
pub use srt_tokio::{SocketStatistics, SrtSocket};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tracing::{info, info_span, warn, Instrument};

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct SrtStats {
    pub connections_total: AtomicU64,
    pub publishers_open: AtomicU64,
    pub readers_open: AtomicU64,
    /// Refused callers, by reason (see [`Refusal::metric_label`]).
    pub refused_streamid: AtomicU64,
    pub refused_auth: AtomicU64,
    pub refused_passphrase: AtomicU64,
    pub refused_other: AtomicU64,
    pub ts_continuity_errors: AtomicU64,
    pub ts_errors: AtomicU64,
    pub bytes_in: AtomicU64,
}

/// Everything a connection needs.
pub struct SrtContext {
    /// Where the listener is bound (again, should its task ever stop).
    pub listen: SocketAddr,
    pub latency: Duration,
    pub bus: Bus,
    /// The access decision (stream keys, publish and play tokens).
    pub access: Arc<dyn Gate>,
    pub passphrases: Arc<dyn SrtPassphrases>,
    /// A publisher silent this long is disconnected.
    pub idle_timeout: Duration,
    /// Largest PES a publisher may send.
    pub max_pes_bytes: usize,
    /// Whether `read` callers are served (`[srt] playback`; off by default: see the module doc).
    pub playback: bool,
    pub stats: Arc<SrtStats>,
}

/// A read caller, accepted, handed to the read handler with its socket.
pub struct SrtReadRequest {
    /// The source it reads: `live/<name>`.
    pub path: StreamPath,
    pub peer: SocketAddr,
    pub socket: SrtSocket,
}

/// Why a caller was refused (logged; sent as an SRT reject code). Never contains the key.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Refusal {
    #[error(transparent)]
    StreamId(#[from] StreamIdError),
    #[error(transparent)]
    Publish(#[from] PublishRefusal),
    /// A reader refused by the access decision.
    #[error(transparent)]
    Play(Denied),
    #[error("stream is not live")]
    NotLive,
    #[error("the stream is not encrypted; connect without a passphrase")]
    NotEncrypted,
    #[error("wrong or missing passphrase")]
    WrongPassphrase,
    #[error("SRT playback is off on this server ([srt] playback); watch over HTTP-FLV, LL-HLS or DASH")]
    PlaybackOff,
}

impl Refusal {
    /// Whether the answer waits a random moment first (see [`PublishRefusal::is_slowed`]).
    pub fn is_slowed(&self) -> bool {
        match self {
            Refusal::Publish(refusal) => refusal.is_slowed(),
            Refusal::Play(denied) => denied.is_slowed(),
            _ => false,
        }
    }

    /// The SRT reject code the caller sees.
    pub fn reason(&self) -> RejectReason {
        RejectReason::Server(match self {
            Refusal::StreamId(_) => ServerRejectReason::BadRequest,
            // Credentials that name another stream, action or client: forbidden; any other
            // failed or missing credential: unauthorized.
            Refusal::Publish(PublishRefusal::Denied(d)) | Refusal::Play(d) if d.is_out_of_scope() => {
                ServerRejectReason::Forbidden
            }
            Refusal::Publish(PublishRefusal::Denied(_)) | Refusal::Play(_) => ServerRejectReason::Unauthorized,
            Refusal::Publish(PublishRefusal::AlreadyPublishing) => ServerRejectReason::Conflict,
            Refusal::Publish(_) | Refusal::NotLive => ServerRejectReason::Notfound,
            Refusal::NotEncrypted | Refusal::WrongPassphrase => ServerRejectReason::Unauthorized,
            Refusal::PlaybackOff => ServerRejectReason::Unimplemented,
        })
    }

    /// The `reason` label of `rill_srt_refused_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Refusal::StreamId(_) => "streamid",
            Refusal::Publish(PublishRefusal::Denied(_)) | Refusal::Play(_) => "auth",
            Refusal::NotEncrypted | Refusal::WrongPassphrase => "passphrase",
            _ => "other",
        }
    }

    fn count(&self, stats: &SrtStats) {
        let counter = match self.metric_label() {
            "streamid" => &stats.refused_streamid,
            "auth" => &stats.refused_auth,
            "passphrase" => &stats.refused_passphrase,
            _ => &stats.refused_other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Packets the sender of an SRT reader holds: libsrt's default `SRTO_SNDBUF` (8192 packets).
///
/// srt-tokio 0.4.4's default is 46,592 bytes, i.e. **32 packets**, and its send buffer
/// (`SendBuffer::push_data`) drops the *oldest* packet when full — even one never sent. The next
/// packet to send then lies before the buffer's front, so nothing at all is sent until the
/// too-late drop (after `max(1.25 × latency, 1 s)`) moves it on. A reader is handed a whole GOP
/// and then a keyframe at a time — far more than 32 packets at once — so libsrt receivers
/// (ffmpeg) saw seconds-long gaps (`RCV-DROPPED … delayed for 779 ms`, more with a larger
/// latency) and broken MPEG-TS. 8192 packets hold ~10 MB: a GOP of 40 Mbit/s for 2 s.
pub const SEND_BUFFER_PACKETS: u64 = 8192;

/// Binds the SRT listener (UDP) with the given latency.
pub async fn bind(listen: SocketAddr, latency: Duration) -> io::Result<(SrtListener, SrtIncoming)> {
    SrtListener::builder()
        .latency(latency)
        .set(|o| {
            // srt-tokio announces its payload size as the MSS; libsrt callers (ffmpeg) derive
            // their largest message from it. The live maximum keeps 1316-byte (7 × 188) messages.
            o.sender.max_payload_size = srt_tokio::options::PacketSize(1456);
            // srt-tokio counts the buffer in bytes and divides by (MSS − 44) = 1456 per packet.
            o.sender.buffer_size = srt_tokio::options::ByteCount(SEND_BUFFER_PACKETS * 1456);
        })
        .bind(listen)
        .await
}

/// What a caller asked for, once allowed.
enum Decision {
    Publish { path: StreamPath, keys: Option<KeySettings> },
    Read { path: StreamPath, keys: Option<KeySettings> },
}

/// Decides on a caller from its handshake alone (sans-IO).
fn decide(
    ctx: &SrtContext,
    stream_id: Option<&[u8]>,
    key_size: KeySize,
    peer: Option<std::net::IpAddr>,
) -> Result<Decision, Refusal> {
    let request = StreamIdRequest::parse(stream_id.unwrap_or_default())?;
    let token = request.token.as_deref();
    let path = match request.mode {
        Mode::Publish => {
            let name = resolve_publish(&*ctx.access, Protocol::Srt, &request.app, &request.key, token, peer)?;
            let path = StreamPath::live(&name).map_err(|_| PublishRefusal::InvalidName)?;
            if ctx.bus.is_published(&path) {
                return Err(PublishRefusal::AlreadyPublishing.into());
            }
            path
        }
        Mode::Read => {
            if !ctx.playback {
                return Err(Refusal::PlaybackOff);
            }
            if request.app != "live" {
                return Err(PublishRefusal::UnknownApp.into());
            }
            let path = StreamPath::live(&request.key).map_err(|_| PublishRefusal::InvalidName)?;
            ctx.access
                .decide(&access::Request::play(Protocol::Srt, &request.key, token, peer))
                .map_err(Refusal::Play)?;
            if !ctx.bus.contains(&path) {
                return Err(Refusal::NotLive);
            }
            path
        }
    };
    // The handshake's key size is "unspecified" both for a caller without a passphrase and for
    // one with the default key length (libsrt's pbkeylen=0, AES-128), so a stream's passphrase is
    // always offered; the handshake then refuses a missing or wrong one (`accept` fails).
    let keys = match (ctx.passphrases.srt_passphrase(path.name.as_str()), key_size) {
        (None, KeySize::Unspecified) => None,
        // srt-protocol 0.4.4 panics on an encrypted caller of an unencrypted stream: refuse first.
        (None, _) => return Err(Refusal::NotEncrypted),
        (Some(passphrase), key_size) => Some(KeySettings {
            key_size,
            passphrase: Passphrase::try_from(passphrase).map_err(|_| Refusal::WrongPassphrase)?,
        }),
    };
    Ok(match request.mode {
        Mode::Publish => Decision::Publish { path, keys },
        Mode::Read => Decision::Read { path, keys },
    })
}

/// Accepts SRT callers forever (from the `listener` and `incoming` made by [`bind`]; the
/// listener is kept alive here, since dropping it stops the incoming stream). Publishers go to the
/// Bus; readers to `on_read`. Should the listener's task stop (srt-protocol 0.4.4 has
/// `unimplemented!` paths a caller's handshake can reach), it is bound again.
pub async fn serve<R, F>(listener: SrtListener, mut incoming: SrtIncoming, ctx: Arc<SrtContext>, on_read: R)
where
    R: Fn(SrtReadRequest) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let mut _listener = listener;
    loop {
        while let Some(request) = incoming.incoming().next().await {
            ctx.stats.connections_total.fetch_add(1, Ordering::Relaxed);
            let peer = request.remote();
            let span = info_span!("srt", %peer, stream = tracing::field::Empty);
            let ctx = ctx.clone();
            let on_read = on_read.clone();
            tokio::spawn(connection(request, peer, ctx, on_read).instrument(span));
        }
        warn!("SRT listener stopped; binding it again");
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match bind(ctx.listen, ctx.latency).await {
                Ok((listener, next)) => {
                    (_listener, incoming) = (listener, next);
                    break;
                }
                Err(e) => warn!(error = %e, "binding the SRT listener again failed"),
            }
        }
    }
}

async fn connection<R, F>(request: ConnectionRequest, peer: SocketAddr, ctx: Arc<SrtContext>, on_read: R)
where
    R: Fn(SrtReadRequest) -> F,
    F: Future<Output = ()>,
{
    let stream_id = request.stream_id().map(|s| s.as_bytes().to_vec());
    let decision = decide(&ctx, stream_id.as_deref(), request.key_size(), Some(peer.ip()));
    let (path, keys, publish) = match decision {
        Ok(Decision::Publish { path, keys }) => (path, keys, true),
        Ok(Decision::Read { path, keys }) => (path, keys, false),
        Err(refusal) => {
            refusal.count(&ctx.stats);
            warn!(reason = %refusal, "SRT caller refused");
            if refusal.is_slowed() {
                tokio::time::sleep(rill_media::access::refusal_delay()).await;
            }
            let _ = request.reject(refusal.reason()).await;
            return;
        }
    };
    tracing::Span::current().record("stream", path.name.as_str());
    let encrypted = keys.is_some();
    let socket = match request.accept(keys).await {
        Ok(socket) => socket,
        Err(e) => {
            // The handshake failed after our decision: with a passphrase, a wrong one.
            if encrypted {
                Refusal::WrongPassphrase.count(&ctx.stats);
                warn!(reason = %Refusal::WrongPassphrase, "SRT caller refused");
            } else {
                warn!(error = %e, "SRT handshake failed");
            }
            return;
        }
    };
    if publish {
        run_publisher(socket, peer, &path, &ctx).await;
    } else {
        ctx.stats.readers_open.fetch_add(1, Ordering::Relaxed);
        on_read(SrtReadRequest { path, peer, socket }).await;
        ctx.stats.readers_open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn run_publisher(mut socket: SrtSocket, peer: SocketAddr, path: &StreamPath, ctx: &SrtContext) {
    let info = PublisherInfo { protocol: "srt", peer: peer.to_string() };
    let publisher = match ctx.bus.publish(path, info) {
        Ok(publisher) => publisher,
        Err(e) => {
            warn!(reason = %Refusal::Publish(e.into()), "SRT publish refused");
            let _ = socket.close_and_finish().await;
            return;
        }
    };
    info!("publishing started");
    ctx.stats.publishers_open.fetch_add(1, Ordering::Relaxed);
    let mut demux = TsDemuxer::new(ctx.max_pes_bytes);
    let mut reported = (0u64, 0u64);
    let outcome: Result<&str, String> = loop {
        let data = tokio::select! {
            _ = publisher.kicked() => break Ok("kicked by operator"),
            next = tokio::time::timeout(ctx.idle_timeout, socket.next()) => match next {
                Err(_) => break Err("no media from the publisher within the idle timeout".into()),
                Ok(None) => break Ok("publisher disconnected"),
                Ok(Some(Err(e))) => break Err(e.to_string()),
                Ok(Some(Ok((_, data)))) => data,
            },
        };
        ctx.stats.bytes_in.fetch_add(data.len() as u64, Ordering::Relaxed);
        demux.push(&data);
        while let Some(event) = demux.poll() {
            match event {
                TsEvent::Tracks(tracks) => publisher.set_tracks(tracks),
                TsEvent::Frame(frame) => publisher.push(frame),
            }
        }
        let s = demux.stats();
        let errors = s.pes_errors;
        if (s.continuity_errors, errors) != reported {
            if s.continuity_errors > reported.0 {
                warn!(total = s.continuity_errors, "MPEG-TS continuity error (packets lost or reordered)");
            }
            ctx.stats.ts_continuity_errors.fetch_add(s.continuity_errors - reported.0, Ordering::Relaxed);
            ctx.stats.ts_errors.fetch_add(errors - reported.1, Ordering::Relaxed);
            reported = (s.continuity_errors, errors);
        }
    };
    ctx.stats.publishers_open.fetch_sub(1, Ordering::Relaxed);
    let s = demux.stats();
    match outcome {
        Ok(reason) => info!(reason, packets = s.packets, sync_losses = s.sync_losses, "publishing stopped"),
        Err(error) => warn!(%error, packets = s.packets, "publishing stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Keys;
    impl Gate for Keys {
        fn decide(&self, request: &access::Request<'_>) -> Result<access::Grant, Denied> {
            match (request.action, request.key, request.resource) {
                (access::Action::Publish, Some("sk_good"), _) => {
                    Ok(access::Grant { name: "studio".into(), via: access::Via::Key })
                }
                (access::Action::Publish, _, _) => Err(Denied::UnknownKey),
                (access::Action::Play, _, Some(access::Resource::Stream("secret"))) => Err(Denied::MissingToken),
                (access::Action::Play, _, _) => Ok(access::Grant { name: "x".into(), via: access::Via::Public }),
                (access::Action::Upload, _, _) => Err(Denied::WrongAction),
            }
        }
    }
    impl SrtPassphrases for Keys {
        fn srt_passphrase(&self, name: &str) -> Option<String> {
            (name == "studio").then(|| "0123456789abc".into())
        }
    }

    fn ctx() -> SrtContext {
        SrtContext {
            listen: "127.0.0.1:0".parse().unwrap(),
            latency: Duration::from_millis(100),
            bus: Bus::default(),
            access: Arc::new(Keys),
            passphrases: Arc::new(Keys),
            idle_timeout: Duration::from_secs(5),
            max_pes_bytes: 1 << 20,
            playback: true,
            stats: Arc::default(),
        }
    }

    #[test]
    fn readers_are_refused_while_playback_is_off() {
        let c = SrtContext { playback: false, ..ctx() };
        assert_eq!(refusal(decide(&c, Some(b"read:live/anything"), KeySize::Unspecified, None)), Refusal::PlaybackOff);
    }

    fn refusal(r: Result<Decision, Refusal>) -> Refusal {
        match r {
            Err(e) => e,
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn decisions() {
        let c = ctx();
        let id = |s: &str| s.as_bytes().to_vec();
        assert!(matches!(
            decide(&c, Some(&id("publish:live/sk_good")), KeySize::AES128, None),
            Ok(Decision::Publish { ref path, keys: Some(_) }) if path.to_string() == "live/studio"
        ));
        assert!(matches!(
            decide(&c, Some(&id("publish:live/sk_good")), KeySize::Unspecified, None),
            Ok(Decision::Publish { keys: Some(_), .. })
        ));
        assert_eq!(
            refusal(decide(&c, Some(&id("#!::r=live/sk_bad,m=publish")), KeySize::AES128, None)),
            Refusal::Publish(PublishRefusal::Denied(Denied::UnknownKey))
        );
        let secret = refusal(decide(&c, Some(&id("read:live/secret")), KeySize::Unspecified, None));
        assert_eq!(secret, Refusal::Play(Denied::MissingToken));
        assert_eq!(secret.reason(), RejectReason::Server(ServerRejectReason::Unauthorized));
        assert_eq!(refusal(decide(&c, None, KeySize::Unspecified, None)), Refusal::StreamId(StreamIdError::Missing));
        assert_eq!(refusal(decide(&c, Some(&id("read:live/nobody")), KeySize::Unspecified, None)), Refusal::NotLive);
        assert_eq!(
            refusal(decide(&c, Some(&id("read:live/../x")), KeySize::Unspecified, None)),
            Refusal::Publish(PublishRefusal::InvalidName)
        );
        let _publisher = c
            .bus
            .publish(&StreamPath::live("other").unwrap(), PublisherInfo { protocol: "rtmp", peer: "p".into() })
            .unwrap();
        assert!(matches!(
            decide(&c, Some(&id("#!::r=live/other,m=request")), KeySize::Unspecified, None),
            Ok(Decision::Read { keys: None, .. })
        ));
        assert_eq!(refusal(decide(&c, Some(&id("read:live/other")), KeySize::AES256, None)), Refusal::NotEncrypted);
        assert_eq!(Refusal::NotEncrypted.metric_label(), "passphrase");
    }
}
