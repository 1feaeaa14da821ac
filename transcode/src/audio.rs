//! AAC → Opus for consumers that need Opus (WebRTC viewers): one transcode per source stream,
//! shared by every consumer, published on the Bus as `live/<name>/opus` (one Opus audio track,
//! 48 kHz, 20 ms frames, 96 kbit/s), running while at least one [`OpusFeedGuard`] is held.
//!
//! `appsrc (raw AAC + ASC) ! aacparse ! avdec_aac ! audioconvert ! audioresample
//! ! audio/x-raw,rate=48000 ! opusenc ! appsink`. Opus frames carry the source's timeline
//! (48 kHz ticks): a consumer can pair them with the source's video. Like the ladder, the feed
//! reads the Bus as a service and never makes the source wait.

use crate::timeline::Timeline;
use crate::TranscodeError;
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::{AppSink, AppSinkCallbacks, AppSrc};
use rill_media::sync::lock;
use rill_media::{AacConfig, Bus, BusError, CodecConfig, Delivery, Frame, Publisher, PublisherInfo, Subscriber};
use rill_media::{Feed, StreamPath, Timebase, TrackId, Tracks};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::Instrument;

/// Opus bitrate, bit/s.
pub const OPUS_BITRATE: u32 = 96_000;
/// Duration of an Opus packet.
const OPUS_FRAME: gst::ClockTime = gst::ClockTime::from_mseconds(20);
/// AAC frames waiting in the appsrc beyond which input is dropped.
const MAX_QUEUED_INPUT: u64 = 200;

/// The shared Opus feeds of a Bus. Cheap to clone.
#[derive(Clone)]
pub struct OpusFeeds {
    bus: Bus,
    feeds: Arc<Mutex<HashMap<StreamPath, Weak<FeedTaskHandle>>>>,
}

/// A running transcode; stops when the last guard lets go of it.
struct FeedTaskHandle {
    stop: Mutex<Option<oneshot::Sender<()>>>,
    done: Arc<AtomicBool>,
}

impl Drop for FeedTaskHandle {
    fn drop(&mut self) {
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
    }
}

/// A consumer's hold on an Opus feed. The feed stops when the last guard is dropped.
pub struct OpusFeedGuard {
    path: StreamPath,
    feed: Option<Arc<FeedTaskHandle>>,
}

impl OpusFeedGuard {
    /// Where the Opus audio is on the Bus: `live/<name>/opus`, or the source itself when its
    /// audio already is Opus.
    pub fn path(&self) -> &StreamPath {
        &self.path
    }

    /// The source's audio is Opus already: nothing is transcoded.
    pub fn is_passthrough(&self) -> bool {
        self.feed.is_none()
    }

    /// False once the transcode ended (source ended, or an error).
    pub fn is_running(&self) -> bool {
        self.feed.as_ref().is_none_or(|f| !f.done.load(Ordering::Relaxed))
    }
}

impl OpusFeeds {
    pub fn new(bus: Bus) -> OpusFeeds {
        OpusFeeds { bus, feeds: Arc::default() }
    }

    /// Makes sure `live/<name>/opus` exists on the Bus (starting the transcode if needed) and
    /// holds it until the guard drops. The source must be live with its tracks known; when its
    /// audio is Opus already the guard points at the source. Must be called within a tokio
    /// runtime. When it returns, the Opus stream is published with its tracks set.
    pub fn acquire(&self, source_path: &StreamPath) -> Result<OpusFeedGuard, TranscodeError> {
        let bus_error = |source| TranscodeError::Bus { stream: source_path.to_string(), source };
        let snapshot =
            self.bus.stream_snapshot(source_path).ok_or_else(|| bus_error(BusError::NotLive(source_path.clone())))?;
        let aac = match &snapshot.tracks.audio {
            Some(CodecConfig::Opus { .. }) => return Ok(OpusFeedGuard { path: source_path.clone(), feed: None }),
            Some(CodecConfig::Aac(aac)) => aac.clone(),
            other => {
                return Err(TranscodeError::Unsupported {
                    stream: source_path.to_string(),
                    what: other
                        .as_ref()
                        .map_or("a stream without audio".into(), |c| format!("{} audio to Opus", c.name())),
                })
            }
        };
        let path = source_path.with_feed(Feed::Opus);
        let mut feeds = lock(&self.feeds);
        feeds.retain(|_, f| f.strong_count() > 0);
        if let Some(feed) = feeds.get(source_path).and_then(Weak::upgrade) {
            if !feed.done.load(Ordering::Relaxed) {
                return Ok(OpusFeedGuard { path, feed: Some(feed) });
            }
        }
        crate::init()?;
        let sub = self.bus.subscribe_service(source_path).map_err(bus_error)?;
        let publisher = self
            .bus
            .publish(&path, PublisherInfo { protocol: "transcode", peer: source_path.to_string() })
            .map_err(|e| TranscodeError::Bus { stream: path.to_string(), source: e })?;
        let channels = opus_channels(&aac);
        publisher.set_tracks(Tracks {
            video: None,
            audio: Some(CodecConfig::Opus { channels, sample_rate: 48_000 }),
            encoder: Some("rill-transcode opusenc".into()),
        });
        let publisher = Arc::new(publisher);
        let (stop, stopped) = oneshot::channel();
        let done = Arc::new(AtomicBool::new(false));
        let feed = Arc::new(FeedTaskHandle { stop: Mutex::new(Some(stop)), done: done.clone() });
        feeds.insert(source_path.clone(), Arc::downgrade(&feed));
        let span = tracing::info_span!("opus", stream = %source_path);
        let task = FeedTask { bus: self.bus.clone(), source: source_path.to_string(), path: path.clone(), channels };
        tokio::spawn(
            async move {
                tracing::info!("AAC → Opus started");
                match task.run(sub, &publisher, stopped).await {
                    Ok(()) => tracing::info!("AAC → Opus stopped"),
                    Err(e) => tracing::warn!(error = %e, "AAC → Opus ended"),
                }
                done.store(true, Ordering::Relaxed);
                drop(publisher);
                task.bus.close(&task.path);
            }
            .instrument(span),
        );
        Ok(OpusFeedGuard { path, feed: Some(feed) })
    }
}

/// Opus channels for an AAC track: mono stays mono, anything else is (down)mixed to stereo.
fn opus_channels(aac: &AacConfig) -> u8 {
    if aac.info.channels == 1 {
        1
    } else {
        2
    }
}

struct FeedTask {
    bus: Bus,
    /// The source path as text, for errors and logs.
    source: String,
    path: StreamPath,
    channels: u8,
}

impl FeedTask {
    async fn run(
        &self,
        mut sub: Subscriber,
        publisher: &Arc<Publisher>,
        mut stopped: oneshot::Receiver<()>,
    ) -> Result<(), TranscodeError> {
        let bus_error = |source| TranscodeError::Bus { stream: self.source.clone(), source };
        let mut current: Option<(AacConfig, Pipeline)> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = &mut stopped => return Ok(()),
                delivery = sub.recv() => match delivery.map_err(bus_error)? {
                    Delivery::Tracks(tracks) => match &tracks.audio {
                        Some(CodecConfig::Aac(aac)) => {
                            if current.as_ref().is_none_or(|(c, _)| c.asc != aac.asc) {
                                if opus_channels(aac) != self.channels {
                                    return Err(TranscodeError::Unsupported {
                                        stream: self.source.clone(),
                                        what: "a change of channel count".into(),
                                    });
                                }
                                current = Some((aac.clone(), Pipeline::start(&self.source, aac, self.channels, publisher)?));
                            }
                        }
                        other => {
                            return Err(TranscodeError::Unsupported {
                                stream: self.source.clone(),
                                what: other.as_ref().map_or("a stream without audio".into(), |c| format!("{} audio", c.name())),
                            })
                        }
                    },
                    Delivery::Frames(frames) => {
                        if let Some((_, pipeline)) = &mut current {
                            for frame in frames.into_iter().filter(|f| f.track == TrackId::AUDIO) {
                                pipeline.feed(frame)?;
                            }
                        }
                    }
                    Delivery::Ended => {
                        if let Some((_, pipeline)) = &current {
                            pipeline.drain().await?;
                        }
                        return Ok(());
                    }
                },
                _ = tick.tick() => {
                    if let Some((_, pipeline)) = &current {
                        pipeline.poll_messages()?;
                    }
                }
            }
        }
    }
}

/// One GStreamer pipeline for one AAC configuration.
struct Pipeline {
    stream: String,
    pipeline: gst::Pipeline,
    src: AppSrc,
    timeline: Arc<Mutex<Timeline>>,
}

impl Pipeline {
    fn start(
        stream: &str,
        aac: &AacConfig,
        channels: u8,
        publisher: &Arc<Publisher>,
    ) -> Result<Pipeline, TranscodeError> {
        let pipeline_error = |message: String| TranscodeError::Pipeline { stream: stream.to_string(), message };
        let description = format!(
            "appsrc name=src is-live=true format=time do-timestamp=false ! aacparse ! avdec_aac ! audioconvert \
             ! audioresample ! audio/x-raw,rate=48000,channels={channels} \
             ! opusenc bitrate={OPUS_BITRATE} frame-size=20 perfect-timestamp=true ! appsink name=sink sync=false"
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| pipeline_error(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| pipeline_error("not a pipeline".into()))?;
        pipeline.set_property("name", format!("opus:{stream}"));
        let by_name = |name: &str| pipeline.by_name(name).ok_or_else(|| pipeline_error(format!("no element {name}")));
        let src = by_name("src")?.downcast::<AppSrc>().map_err(|_| pipeline_error("src".into()))?;
        let sink = by_name("sink")?.downcast::<AppSink>().map_err(|_| pipeline_error("sink".into()))?;
        src.set_caps(Some(
            &gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .field("codec_data", gst::Buffer::from_slice(aac.asc.clone()))
                .build(),
        ));
        src.set_property("block", false);
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let sink_timeline = timeline.clone();
        let publisher = publisher.clone();
        let started = AtomicBool::new(false);
        sink.set_callbacks(
            AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buffer) = sample.buffer() else { return Ok(gst::FlowSuccess::Ok) };
                    if buffer.flags().contains(gst::BufferFlags::HEADER) {
                        return Ok(gst::FlowSuccess::Ok);
                    }
                    let (Some(pts), Ok(map)) = (crate::ladder::running_time(&sample, buffer), buffer.map_readable())
                    else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    // The first packet is short by the encoder's lookahead (312 samples), which
                    // decoders without pre-skip (WebRTC) play as a full 20 ms frame: end-align it
                    // so that every packet is 20 ms after the previous one.
                    let mut pts = pts;
                    if !started.swap(true, Ordering::Relaxed) {
                        if let Some(short) = buffer.duration().and_then(|d| OPUS_FRAME.checked_sub(d)) {
                            pts = pts.saturating_sub(short);
                        }
                    }
                    let pts = lock(&sink_timeline).media_time(pts, Timebase::new(48_000).expect("non-zero"));
                    let frame = Frame {
                        track: TrackId::AUDIO,
                        pts,
                        dts: pts,
                        keyframe: true,
                        payload: Bytes::copy_from_slice(map.as_slice()),
                    };
                    publisher.push(frame);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline.set_state(gst::State::Playing).map_err(|e| pipeline_error(format!("cannot start: {e}")))?;
        Ok(Pipeline { stream: stream.to_string(), pipeline, src, timeline })
    }

    fn feed(&mut self, frame: Frame) -> Result<(), TranscodeError> {
        if self.src.current_level_buffers() >= MAX_QUEUED_INPUT {
            tracing::debug!("Opus encoder behind: dropping an AAC frame");
            return Ok(());
        }
        let Some(pts) = lock(&self.timeline).gst_time(frame.pts) else { return Ok(()) };
        let mut buffer = gst::Buffer::from_slice(frame.payload);
        buffer.get_mut().expect("a new buffer is writable").set_pts(pts);
        crate::pipeline::push(&self.pipeline, &self.src, buffer, &self.stream, "the Opus feed")
    }

    /// An error the pipeline posted; true at end of stream.
    fn poll_messages(&self) -> Result<bool, TranscodeError> {
        crate::pipeline::poll_messages(&self.pipeline, &self.stream, "the Opus feed")
    }

    async fn drain(&self) -> Result<(), TranscodeError> {
        let _ = self.src.end_of_stream();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if self.poll_messages()? {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
