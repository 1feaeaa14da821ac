//! The tokio driver of one RTSP source: connect (DESCRIBE, SETUP, PLAY over TCP), pump frames
//! onto the Bus, and on any failure wait ([`Backoff`]) and connect again, until stopped.
//! Its state is shared with the API through [`SourceHandle`]. Each state change is logged
//! once; repeated failures with the same error are logged at debug level only.

use super::backoff::Backoff;
use super::map::{self, Choice, FrameMapper, MapError, VideoCodec};
use super::url::CameraUrl;
use bytes::Bytes;
use futures_util::StreamExt;
use retina::client::{
    Credentials, InitialTimestampPolicy, PlayOptions, SessionOptions, SetupOptions, TeardownPolicy, Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use rill_media::sync::lock;
use rill_media::{Bus, BusError, PublisherInfo, StreamName, StreamPath};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use thiserror::Error;
use tokio::sync::watch;
use tracing::{debug, info, warn, Instrument};

/// Settings shared by all sources.
#[derive(Debug, Clone)]
pub struct RtspSettings {
    /// Bound on connecting and on each RTSP request until PLAY.
    pub connect_timeout: Duration,
    /// A playing camera that sends nothing for this long is treated as gone.
    pub stall_timeout: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// A session with media for this long resets the backoff to `retry_min`.
    pub healthy_after: Duration,
}

impl Default for RtspSettings {
    fn default() -> Self {
        RtspSettings {
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    Rtsp(#[from] retina::Error),
    #[error("the camera offers no stream Rill can carry ({0})")]
    NothingUsable(String),
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("stream name is taken by another publisher: {0}")]
    Bus(#[from] BusError),
    #[error("the camera ended the session")]
    Ended,
    #[error("disconnected by the operator (kick)")]
    Kicked,
}

/// Where a source is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Connecting (DESCRIBE … PLAY) or waiting for the first frame.
    Connecting,
    /// Frames are flowing onto the Bus.
    Live,
    /// The last attempt failed; the next one is scheduled.
    Retrying,
    /// Stopped by the operator.
    Stopped,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Connecting => "connecting",
            SourceState::Live => "live",
            SourceState::Retrying => "retrying",
            SourceState::Stopped => "stopped",
        }
    }
}

/// A source's state for the API and metrics.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    pub state: SourceState,
    /// When `state` was entered.
    pub since: SystemTime,
    /// The last failure (never contains credentials).
    pub last_error: Option<String>,
    /// When the next attempt starts (state `Retrying`).
    pub next_retry: Option<SystemTime>,
    /// Connection attempts after the first.
    pub reconnects: u64,
    /// What the camera sends that is not carried (e.g. G.711 audio).
    pub ignored: Vec<String>,
}

/// The handle the server keeps per source: its status, and stopping it.
pub struct SourceHandle {
    path: StreamPath,
    url: String,
    status: Mutex<SourceStatus>,
    stop: watch::Sender<bool>,
}

impl SourceHandle {
    pub fn name(&self) -> &str {
        self.path.name.as_str()
    }

    /// The camera URL without credentials.
    pub fn redacted_url(&self) -> &str {
        &self.url
    }

    pub fn status(&self) -> SourceStatus {
        lock(&self.status).clone()
    }

    /// Stops pulling: the connection closes and the Bus stream ends at once.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn update(&self, f: impl FnOnce(&mut SourceStatus)) {
        f(&mut lock(&self.status));
    }

    fn set_state(&self, state: SourceState) {
        self.update(|s| {
            if s.state != state {
                s.state = state;
                s.since = SystemTime::now();
            }
            if state != SourceState::Retrying {
                s.next_retry = None;
            }
        });
    }
}

impl SourceHandle {
    /// A handle that is connecting, with no error and no reconnect yet.
    fn new(path: StreamPath, url: &CameraUrl, stop: watch::Sender<bool>) -> SourceHandle {
        let status = SourceStatus {
            state: SourceState::Connecting,
            since: SystemTime::now(),
            last_error: None,
            next_retry: None,
            reconnects: 0,
            ignored: Vec::new(),
        };
        SourceHandle { path, url: url.redacted().to_string(), status: Mutex::new(status), stop }
    }
}

#[cfg(test)]
impl SourceHandle {
    /// A handle with no task behind it (`connecting`, with `reconnects`), for tests.
    pub(crate) fn fake(name: &str, url: &CameraUrl, reconnects: u64) -> Arc<SourceHandle> {
        let handle =
            SourceHandle::new(StreamPath::live(name).expect("a valid test name"), url, watch::channel(false).0);
        lock(&handle.status).reconnects = reconnects;
        Arc::new(handle)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

/// Starts pulling `url` onto the Bus as `live/<name>` and returns its handle. The task runs
/// until [`SourceHandle::stop`].
pub fn spawn(bus: Bus, name: &StreamName, url: CameraUrl, settings: RtspSettings) -> Arc<SourceHandle> {
    let (stop, stopped) = watch::channel(false);
    let handle = Arc::new(SourceHandle::new(StreamPath::source(name.clone()), &url, stop));
    let span = tracing::info_span!("rtsp", source = %name, url = %url.redacted());
    tokio::spawn(run(bus, url, settings, handle.clone(), stopped).instrument(span));
    handle
}

async fn run(
    bus: Bus,
    url: CameraUrl,
    settings: RtspSettings,
    handle: Arc<SourceHandle>,
    mut stopped: watch::Receiver<bool>,
) {
    let path = handle.path.clone();
    let mut backoff = Backoff::new(settings.retry_min, settings.retry_max, settings.healthy_after);
    let mut last_error: Option<String> = None;
    let mut published = false;
    info!("pulling");
    loop {
        handle.set_state(SourceState::Connecting);
        let mut live_since = None;
        let result = tokio::select! {
            r = connect_and_pump(&bus, &path, &url, &settings, &handle, &mut live_since, &mut published) => r,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let healthy_for = live_since.map_or(Duration::ZERO, |t: Instant| t.elapsed());
        let error = match result {
            Ok(()) => SourceError::Ended.to_string(),
            Err(e) => e.to_string(),
        };
        let delay = backoff.after_failure(healthy_for);
        if live_since.is_some() {
            warn!(error = %error, retry_in = ?delay, "camera lost; reconnecting");
        } else if last_error.as_deref() != Some(&error) {
            warn!(error = %error, retry_in = ?delay, "cannot pull from the camera; retrying with backoff");
        } else {
            debug!(error = %error, retry_in = ?delay, "still failing");
        }
        last_error = Some(error.clone());
        handle.update(|s| {
            s.last_error = Some(error);
            s.next_retry = Some(SystemTime::now() + delay);
        });
        handle.set_state(SourceState::Retrying);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
        handle.update(|s| s.reconnects += 1);
    }
    handle.set_state(SourceState::Stopped);
    // End the stream now rather than after the grace period, unless someone else took the name.
    let ours =
        bus.stream_snapshot(&path).map(|s| s.publisher.is_none_or(|p| p.protocol == "rtsp" && p.peer == handle.url));
    if published && ours == Some(true) {
        bus.close(&path);
    }
    info!("stopped");
}

/// One connection: DESCRIBE, SETUP the first usable video and audio streams, PLAY, then
/// frames onto the Bus until the camera stops or stalls.
async fn connect_and_pump(
    bus: &Bus,
    path: &StreamPath,
    url: &CameraUrl,
    settings: &RtspSettings,
    handle: &SourceHandle,
    live_since: &mut Option<Instant>,
    published: &mut bool,
) -> Result<(), SourceError> {
    let step = |what| move |_| SourceError::Timeout(what);
    let creds = url.credentials().map(|(u, p)| Credentials { username: u.into(), password: p.into() });
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent(concat!("Rill/", env!("CARGO_PKG_VERSION")).into())
        .teardown(TeardownPolicy::Auto);
    let mut session = tokio::time::timeout(
        settings.connect_timeout,
        retina::client::Session::describe(url.request_url().clone(), options),
    )
    .await
    .map_err(step("connecting (DESCRIBE)"))??;

    let mut video = None;
    let mut audio = None;
    let mut ignored = Vec::new();
    for (i, stream) in session.streams().iter().enumerate() {
        match map::choose(stream.media(), stream.encoding_name()) {
            Choice::Video(codec) if video.is_none() => video = Some((i, codec)),
            Choice::Aac if audio.is_none() => audio = Some(i),
            Choice::Video(_) | Choice::Aac => ignored.push(format!("stream {i}: a second {} stream", stream.media())),
            Choice::Ignore(reason) => ignored.push(format!("stream {i}: {reason}")),
        }
    }
    if handle.status().ignored != ignored {
        for reason in &ignored {
            info!(%reason, "camera stream ignored");
        }
        handle.update(|s| s.ignored = ignored.clone());
    }
    if video.is_none() && audio.is_none() {
        return Err(SourceError::NothingUsable(ignored.join("; ")));
    }
    for i in video.iter().map(|(i, _)| *i).chain(audio) {
        let setup = SetupOptions::default().transport(Transport::default()).frame_format(FrameFormat::MP4);
        tokio::time::timeout(settings.connect_timeout, session.setup(i, setup)).await.map_err(step("in SETUP"))??;
    }
    let playing = tokio::time::timeout(
        settings.connect_timeout,
        session.play(PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive)),
    )
    .await
    .map_err(step("in PLAY"))??;
    let mut demuxed = playing.demuxed()?;

    let mut mapper = FrameMapper::new(video.is_some());
    let refresh = |mapper: &mut FrameMapper, streams: &[retina::client::Stream]| -> Result<(), MapError> {
        if let Some((i, codec)) = video {
            if let Some(ParametersRef::Video(p)) = streams[i].parameters() {
                mapper.set_video(map::video_config(codec, p.extra_data())?);
            }
        }
        if let Some(i) = audio {
            if let Some(ParametersRef::Audio(p)) = streams[i].parameters() {
                mapper.set_audio(map::aac_config(p.extra_data())?);
            }
        }
        Ok(())
    };
    refresh(&mut mapper, demuxed.streams())?;
    let publisher = bus.publish(path, PublisherInfo { protocol: "rtsp", peer: url.redacted().to_string() })?;
    *published = true;
    info!(
        video = video.map_or("none", |(_, c)| match c {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
        }),
        audio = audio.map_or("none", |_| "aac"),
        "camera connected"
    );
    loop {
        let item = tokio::select! {
            item = tokio::time::timeout(settings.stall_timeout, demuxed.next()) => {
                item.map_err(step("waiting for media from the camera"))?
            }
            _ = publisher.kicked() => return Err(SourceError::Kicked),
        };
        let frame = match item {
            None => return Ok(()),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(CodecItem::VideoFrame(f))) if Some(f.stream_id()) == video.map(|(i, _)| i) => {
                if f.has_new_parameters() || !mapper.has_video_config() {
                    refresh(&mut mapper, demuxed.streams())?;
                }
                let ts = f.timestamp();
                let keyframe = f.is_random_access_point();
                mapper.video(ts.elapsed(), ts.clock_rate().get(), keyframe, Bytes::from(f.into_data()))?
            }
            Some(Ok(CodecItem::AudioFrame(f))) if Some(f.stream_id()) == audio => {
                if !mapper.has_audio_config() {
                    refresh(&mut mapper, demuxed.streams())?;
                }
                let ts = f.timestamp();
                mapper.audio(ts.elapsed(), ts.clock_rate().get(), Bytes::copy_from_slice(f.data()))?
            }
            Some(Ok(_)) => None,
        };
        let Some(frame) = frame else { continue };
        if let Some(tracks) = mapper.take_changed_tracks() {
            publisher.set_tracks(tracks);
        }
        if live_since.is_none() {
            *live_since = Some(Instant::now());
            handle.set_state(SourceState::Live);
            info!("live");
        }
        publisher.push(frame);
    }
}
