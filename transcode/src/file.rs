//! Uploaded files into the VOD ladder, with GStreamer. Blocking: run it in a child process.
//!
//! - [`probe`]: what a file holds (`filesrc ! decodebin`, prerolled): the video's size, frame
//!   rate and duration, whether there is audio; or why it cannot be played ([`FileError`]: a
//!   truncated or corrupt file, no video, a codec no decoder takes).
//! - [`transcode`]: one decode, one scaler + H.264 encoder per rung, AAC audio:
//!
//! ```text
//! filesrc ! decodebin ─┬─ queue ! videoconvert ! tee ─┬─ queue ! videoscale ! caps ! x264enc ! h264parse ! appsink v0
//!                      │                              └─ … one branch per rung (v1, v2, …)
//!                      └─ queue ! audioconvert ! audioresample ! avenc_aac ! aacparse ! appsink a
//! ```
//!
//! Every rung gets the same decoded pictures, and each encoder makes a keyframe exactly every
//! `gop` pictures and nowhere else (no scene-cut keyframes), so keyframes fall at the same
//! times in every rendition. Outputs are [`FileOutput`]s: each rendition's tracks, then its
//! frames (times on the source's clock), in the order the encoders produce them.

use crate::ladder::Rung;
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::AppSink;
use rill_media::{AacConfig, AvcConfig, CodecConfig, Frame, MediaTime, Timebase, TrackId, Tracks};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Why a file cannot be turned into a video. The messages are shown to users.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FileError {
    #[error("the file is truncated or corrupt: {0}")]
    Corrupt(String),
    #[error("the file has no video stream")]
    NoVideo,
    #[error("unsupported video codec ({0}): no decoder for it")]
    UnsupportedCodec(String),
    #[error("the file is truncated: its media ends at {got:.1} s of the {declared:.1} s it declares")]
    Truncated { got: f64, declared: f64 },
    #[error("processing failed: {0}")]
    Pipeline(String),
}

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeInfo {
    pub width: u32,
    pub height: u32,
    /// Frames per second, when the container says.
    pub frame_rate: Option<f64>,
    /// The duration the container declares.
    pub duration: Option<Duration>,
    pub has_audio: bool,
}

/// How long probing may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

fn pipeline_of(description: &str) -> Result<gst::Pipeline, FileError> {
    crate::init().map_err(|e| FileError::Pipeline(e.to_string()))?;
    gst::parse::launch(description)
        .map_err(|e| FileError::Pipeline(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| FileError::Pipeline("not a pipeline".into()))
}

/// A GStreamer location property value for `path` (quoted for `parse::launch`).
fn location(path: &Path) -> Result<String, FileError> {
    let text = path.to_str().ok_or_else(|| FileError::Pipeline("the file's path is not UTF-8".into()))?;
    if text.contains('"') || text.contains('\\') {
        return Err(FileError::Pipeline("the file's path has quotes or backslashes".into()));
    }
    Ok(format!("\"{text}\""))
}

/// Classifies the caps of a decodebin pad or of a type it could not decode.
fn caps_name(caps: &gst::CapsRef) -> String {
    caps.structure(0).map(|s| s.name().to_string()).unwrap_or_default()
}

/// Probes `path`: prerolls `filesrc ! decodebin` with fake sinks on its raw pads.
pub fn probe(path: &Path) -> Result<ProbeInfo, FileError> {
    let pipeline = pipeline_of(&format!("filesrc location={} ! decodebin name=d", location(path)?))?;
    let result = probe_run(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[derive(Default)]
struct Found {
    video: Option<gst::Caps>,
    audio: bool,
    undecodable: Vec<String>,
}

fn probe_run(pipeline: &gst::Pipeline) -> Result<ProbeInfo, FileError> {
    let decodebin = pipeline.by_name("d").ok_or_else(|| FileError::Pipeline("no decodebin".into()))?;
    let found = std::sync::Arc::new(std::sync::Mutex::new(Found::default()));
    let weak = pipeline.downgrade();
    let on_pad = found.clone();
    decodebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else { return };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let name = caps_name(&caps);
        let mut found = rill_media::sync::lock(&on_pad);
        if name.starts_with("video/x-raw") && found.video.is_none() {
            found.video = Some(caps);
        } else if name.starts_with("audio/x-raw") {
            found.audio = true;
        }
        drop(found);
        let Ok(sink) = gst::ElementFactory::make("fakesink").property("sync", false).build() else { return };
        let _ = pipeline.add(&sink);
        let _ = sink.sync_state_with_parent();
        if let Some(sink_pad) = sink.static_pad("sink") {
            let _ = pad.link(&sink_pad);
        }
    });
    let on_unknown = found.clone();
    decodebin.connect("unknown-type", false, move |values| {
        if let Some(caps) = values.get(2).and_then(|v| v.get::<gst::Caps>().ok()) {
            rill_media::sync::lock(&on_unknown).undecodable.push(caps_name(&caps));
        }
        None
    });
    pipeline.set_state(gst::State::Paused).map_err(|e| FileError::Pipeline(e.to_string()))?;
    let bus = pipeline.bus().ok_or_else(|| FileError::Pipeline("no bus".into()))?;
    let deadline = std::time::Instant::now() + PROBE_TIMEOUT;
    let mut error = None;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(FileError::Pipeline(format!("probing took longer than {PROBE_TIMEOUT:?}")));
        }
        let Some(message) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else { continue };
        match message.view() {
            gst::MessageView::AsyncDone(_) => break,
            gst::MessageView::Error(e) => {
                error = Some(e.error().to_string());
                break;
            }
            _ => {}
        }
    }
    let found = rill_media::sync::lock(&found);
    let undecodable_video = found.undecodable.iter().find(|c| c.starts_with("video/")).cloned();
    let Some(video) = found.video.clone() else {
        if let Some(codec) = undecodable_video {
            return Err(FileError::UnsupportedCodec(codec));
        }
        return Err(match error {
            // Demuxers fail on a cut file (an MP4 without its `moov`, a torn header).
            Some(message) if found.audio || !found.undecodable.is_empty() => FileError::Corrupt(message),
            Some(message) if message.contains("missing a plug-in") || message.contains("Could not determine type") => {
                FileError::Corrupt("not a media file GStreamer can read".into())
            }
            Some(message) => FileError::Corrupt(message),
            None => FileError::NoVideo,
        });
    };
    if let Some(message) = error {
        return Err(FileError::Corrupt(message));
    }
    let structure = video.structure(0).ok_or_else(|| FileError::Pipeline("video caps without a structure".into()))?;
    let width = structure.get::<i32>("width").unwrap_or(0).max(0) as u32;
    let height = structure.get::<i32>("height").unwrap_or(0).max(0) as u32;
    if width == 0 || height == 0 {
        return Err(FileError::Corrupt("the video has no picture size".into()));
    }
    let frame_rate = structure
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| f.numer() as f64 / f.denom() as f64);
    let duration = pipeline.query_duration::<gst::ClockTime>().map(|d| Duration::from_nanos(d.nseconds()));
    Ok(ProbeInfo { width, height, frame_rate, duration, has_audio: found.audio })
}

/// How [`transcode`] encodes.
#[derive(Debug, Clone)]
pub struct FileLadderConfig {
    /// Renditions, highest first (see [`file_plan`]).
    pub rungs: Vec<Rung>,
    /// x264's `speed-preset`.
    pub speed_preset: String,
    /// Pictures between keyframes (every rendition).
    pub gop: u32,
    pub audio_kbps: u32,
}

/// The renditions of a `source`-sized video: every rung at or below its height, widths kept
/// to its aspect ratio (even); a source smaller than every rung gets one rendition at its own
/// size (even), with the smallest rung's bitrate.
pub fn file_plan(source: (u32, u32), rungs: &[Rung]) -> Vec<Rung> {
    let (sw, sh) = (source.0 as u64, source.1 as u64);
    if sw == 0 || sh == 0 {
        return Vec::new();
    }
    let mut out: Vec<Rung> = rungs
        .iter()
        .filter(|r| r.height as u64 <= sh && r.height >= 2)
        .map(|r| {
            let height = r.height & !1;
            let width = ((sw * height as u64 + sh) / (2 * sh) * 2).max(2) as u32;
            Rung { name: r.name.clone(), width, height, video_kbps: r.video_kbps }
        })
        .collect();
    out.sort_by(|a, b| b.height.cmp(&a.height).then(b.video_kbps.cmp(&a.video_kbps)));
    out.dedup_by(|a, b| a.height == b.height);
    if out.is_empty() {
        let smallest = rungs.iter().min_by_key(|r| r.height);
        out.push(Rung {
            name: format!("{}p", sh & !1),
            width: (sw as u32 & !1).max(2),
            height: (sh as u32 & !1).max(2),
            video_kbps: smallest.map_or(500, |r| r.video_kbps),
        });
    }
    out
}

/// What [`transcode`] hands out. `rendition` is the index of a rung in
/// [`FileLadderConfig::rungs`], or `None` for the audio.
#[derive(Debug)]
pub enum FileOutput {
    /// A rendition's track (video or audio), before its frames.
    Tracks {
        rendition: Option<usize>,
        tracks: Tracks,
    },
    Frame {
        rendition: Option<usize>,
        frame: Frame,
    },
}

enum Sample {
    Video(usize, gst::Sample),
    Audio(gst::Sample),
    Done,
}

/// Transcodes `path` into `config.rungs` (+ AAC audio when `info.has_audio`), calling `output`
/// for every track set and frame, and `progress` with the media time reached. Returns the
/// media duration produced (video).
pub fn transcode(
    path: &Path,
    info: &ProbeInfo,
    config: &FileLadderConfig,
    mut output: impl FnMut(FileOutput),
    mut progress: impl FnMut(Duration),
) -> Result<Duration, FileError> {
    let mut description = format!(
        "filesrc location={} ! decodebin name=d d. ! queue max-size-buffers=0 max-size-bytes=0 \
         max-size-time=2000000000 ! videoconvert ! tee name=t",
        location(path)?
    );
    for (i, rung) in config.rungs.iter().enumerate() {
        description.push_str(&format!(
            " t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=2000000000 ! videoscale add-borders=false \
             ! videoconvert ! video/x-raw,format=I420,width={w},height={h},pixel-aspect-ratio=1/1 \
             ! x264enc name=enc{i} ! h264parse config-interval=-1 \
             ! video/x-h264,stream-format=avc,alignment=au ! appsink name=v{i} sync=false",
            w = rung.width,
            h = rung.height,
        ));
    }
    if info.has_audio {
        description.push_str(&format!(
            " d. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=2000000000 ! audioconvert ! audioresample \
             ! audio/x-raw,rate=48000,channels=2 ! avenc_aac bitrate={} ! aacparse \
             ! audio/mpeg,mpegversion=4,stream-format=raw ! appsink name=a sync=false",
            config.audio_kbps * 1000
        ));
    }
    let pipeline = pipeline_of(&description)?;
    let result = run_transcode(&pipeline, info, config, &mut output, &mut progress);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn configure_x264(enc: &gst::Element, config: &FileLadderConfig, rung: &Rung) {
    enc.set_property_from_str("speed-preset", &config.speed_preset);
    enc.set_property("bitrate", rung.video_kbps);
    enc.set_property("bframes", 0u32);
    // A keyframe every `gop` pictures and nowhere else: the same pictures in every rendition.
    enc.set_property("key-int-max", config.gop);
    enc.set_property("option-string", format!("scenecut=0:min-keyint={}", config.gop));
}

fn run_transcode(
    pipeline: &gst::Pipeline,
    info: &ProbeInfo,
    config: &FileLadderConfig,
    output: &mut impl FnMut(FileOutput),
    progress: &mut impl FnMut(Duration),
) -> Result<Duration, FileError> {
    let missing = |name: &str| FileError::Pipeline(format!("no element {name}"));
    let (sender, samples) = mpsc::channel::<Sample>();
    let appsink = |name: &str| -> Result<AppSink, FileError> {
        pipeline.by_name(name).and_then(|e| e.downcast::<AppSink>().ok()).ok_or_else(|| missing(name))
    };
    for (i, rung) in config.rungs.iter().enumerate() {
        let enc = pipeline.by_name(&format!("enc{i}")).ok_or_else(|| missing("x264enc"))?;
        configure_x264(&enc, config, rung);
        let sender = sender.clone();
        let sink = appsink(&format!("v{i}"))?;
        sink.set_callbacks(
            gstreamer_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    sender.send(Sample::Video(i, sample)).map_err(|_| gst::FlowError::Flushing)?;
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    if info.has_audio {
        let sender = sender.clone();
        appsink("a")?.set_callbacks(
            gstreamer_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    sender.send(Sample::Audio(sample)).map_err(|_| gst::FlowError::Flushing)?;
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    // The bus watcher ends the loop below on end of stream or an error.
    let bus = pipeline.bus().ok_or_else(|| FileError::Pipeline("no bus".into()))?;
    let done = sender.clone();
    drop(sender);
    let errors = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let bus_errors = errors.clone();
    let watcher = std::thread::spawn(move || {
        for message in bus.iter_timed(gst::ClockTime::NONE) {
            match message.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => {
                    let element = e.src().map(|s| s.path_string().to_string()).unwrap_or_default();
                    *rill_media::sync::lock(&bus_errors) = Some(format!("{element}: {}", e.error()));
                    break;
                }
                _ => {}
            }
        }
        let _ = done.send(Sample::Done);
    });
    pipeline.set_state(gst::State::Playing).map_err(|e| FileError::Pipeline(e.to_string()))?;
    let mut video_records: Vec<Option<Bytes>> = vec![None; config.rungs.len()];
    let mut audio_record: Option<Bytes> = None;
    let mut end = Duration::ZERO;
    while let Ok(sample) = samples.recv() {
        let (rendition, sample) = match sample {
            Sample::Done => break,
            Sample::Audio(sample) => (None, sample),
            Sample::Video(i, sample) => (Some(i), sample),
        };
        let current = match rendition {
            Some(i) => &mut video_records[i],
            None => &mut audio_record,
        };
        if let Some(record) = codec_data(&sample).filter(|record| current.as_ref() != Some(record)) {
            let codec = match rendition {
                Some(_) => AvcConfig::from_record(record.clone())
                    .map(CodecConfig::Avc)
                    .map_err(|e| FileError::Pipeline(format!("the encoder gave an unusable avcC: {e}")))?,
                None => AacConfig::from_asc(record.clone())
                    .map(CodecConfig::Aac)
                    .map_err(|e| FileError::Pipeline(format!("the encoder gave an unusable AAC config: {e}")))?,
            };
            let tracks = match rendition {
                Some(_) => Tracks { video: Some(codec), audio: None, encoder: Some("rill-transcode x264enc".into()) },
                None => Tracks { video: None, audio: Some(codec), encoder: Some("rill-transcode avenc_aac".into()) },
            };
            *current = Some(record);
            output(FileOutput::Tracks { rendition, tracks });
        }
        if current.is_none() {
            continue;
        }
        let Some(frame) = frame_of(&sample, if rendition.is_some() { TrackId::VIDEO } else { TrackId::AUDIO }) else {
            continue;
        };
        if rendition == Some(0) {
            let at = Duration::from_nanos((frame.pts.as_secs_f64() * 1e9).max(0.0) as u64);
            end = end.max(at + frame_duration(info));
            progress(at);
        }
        output(FileOutput::Frame { rendition, frame });
    }
    let _ = watcher.join();
    if let Some(error) = rill_media::sync::lock(&errors).take() {
        return Err(FileError::Corrupt(error));
    }
    Ok(end)
}

fn frame_duration(info: &ProbeInfo) -> Duration {
    Duration::from_secs_f64(1.0 / info.frame_rate.unwrap_or(30.0).max(1.0))
}

fn codec_data(sample: &gst::Sample) -> Option<Bytes> {
    sample
        .caps()
        .and_then(|c| c.structure(0))
        .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
        .and_then(|b| b.map_readable().ok().map(|m| Bytes::copy_from_slice(m.as_slice())))
}

/// A Frame from an encoded sample: times are running times (encoders shift buffer times and
/// compensate in the segment) in the Bus's 90 kHz clock.
fn frame_of(sample: &gst::Sample, track: TrackId) -> Option<Frame> {
    let buffer = sample.buffer()?;
    let pts = crate::ladder::running_time(sample, buffer)?;
    let ticks = (pts.nseconds() as i128 * 90_000 / 1_000_000_000) as i64;
    let time = MediaTime::new(ticks, Timebase::MPEG);
    let map = buffer.map_readable().ok()?;
    Some(Frame {
        track,
        pts: time,
        dts: time,
        keyframe: track == TrackId::AUDIO || !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        payload: Bytes::copy_from_slice(map.as_slice()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_keeps_rungs_up_to_the_source() {
        let rungs = crate::ladder::default_rungs();
        let names =
            |plan: Vec<Rung>| plan.iter().map(|r| format!("{}:{}x{}", r.name, r.width, r.height)).collect::<Vec<_>>();
        assert_eq!(
            names(file_plan((1920, 1080), &rungs)),
            ["1080p:1920x1080", "720p:1280x720", "480p:854x480", "360p:640x360"]
        );
        assert_eq!(names(file_plan((1280, 720), &rungs)), ["720p:1280x720", "480p:854x480", "360p:640x360"]);
        // Portrait keeps its aspect ratio.
        assert_eq!(names(file_plan((1080, 1920), &rungs))[0], "1080p:608x1080");
        // Smaller than every rung: one rendition at its own (even) size.
        assert_eq!(names(file_plan((321, 181), &rungs)), ["180p:320x180"]);
        assert!(file_plan((0, 0), &rungs).is_empty());
    }
}
