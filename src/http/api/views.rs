//! The API's JSON, as types: what `GET /api/v1/streams` shows of a stream (its registry
//! entry, the Bus's live snapshot, its recording, ladder, packaging and WebRTC sessions) and
//! what creating a stream returns. Built by pure functions from the subsystems' snapshots, so
//! the shapes are unit-tested without a server.

use crate::streams::{Origin, StreamEntry};
use rill_media::{CodecConfig, StreamSnapshot};
use rill_relay::packager::LiveState;
use rill_transcode::manager::TranscodeView;
use rill_vod::recorder::ActiveRecording;
use rill_webrtc::SessionInfo;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// The ports and host URLs are built for.
#[derive(Clone, Debug)]
pub struct UrlBase {
    pub host: String,
    pub http_port: u16,
    pub rtmp_port: u16,
    pub srt_port: u16,
}

impl UrlBase {
    pub fn http(&self) -> String {
        format!("http://{}:{}", self.host, self.http_port)
    }
}

/// Where a stream can be watched.
#[derive(Debug, Serialize)]
pub struct PlayUrls {
    pub flv_url: String,
    pub hls_url: String,
    pub dash_url: String,
    pub player_url: String,
    pub rtmp_play_url: String,
    pub srt_play_url: String,
}

impl PlayUrls {
    pub fn new(base: &UrlBase, name: &str) -> PlayUrls {
        let http = base.http();
        PlayUrls {
            flv_url: format!("{http}/live/{name}.flv"),
            hls_url: format!("{http}/live/{name}/index.m3u8"),
            dash_url: format!("{http}/live/{name}/manifest.mpd"),
            player_url: format!("{http}/play/{name}"),
            rtmp_play_url: format!("rtmp://{}:{}/live/{name}", base.host, base.rtmp_port),
            srt_play_url: format!("srt://{}:{}?streamid=read:live/{name}", base.host, base.srt_port),
        }
    }
}

/// A stream's entry: `POST /api/v1/streams` and key rotation (the key is shown only here).
#[derive(Debug, Serialize)]
pub struct CreatedStream {
    pub name: String,
    pub key: String,
    pub rtmp_url: String,
    pub rtmp_server: String,
    pub srt_url: String,
    pub created_at: u64,
    #[serde(flatten)]
    pub urls: PlayUrls,
}

impl CreatedStream {
    pub fn new(base: &UrlBase, entry: &StreamEntry) -> CreatedStream {
        let rtmp_server = format!("rtmp://{}:{}/live", base.host, base.rtmp_port);
        CreatedStream {
            name: entry.name.clone(),
            key: entry.key.clone(),
            rtmp_url: format!("{rtmp_server}/{}", entry.key),
            rtmp_server,
            srt_url: format!("srt://{}:{}?streamid=publish:live/{}", base.host, base.srt_port, entry.key),
            created_at: entry.created_at,
            urls: PlayUrls::new(base, &entry.name),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    Live,
    Reconnecting,
    Offline,
}

/// One stream as `GET /api/v1/streams` shows it.
#[derive(Debug, Serialize)]
pub struct StreamView {
    pub name: String,
    pub state: StreamState,
    pub origin: Option<Origin>,
    /// Who may watch: `public`, or `token` (a play token: `POST /api/v1/tokens`).
    pub playback: rill_media::access::Playback,
    pub urls: PlayUrls,
    #[serde(flatten)]
    pub live: Option<LiveView>,
    /// Viewers now by protocol, LL-HLS and DASH included (from analytics sessions).
    pub viewers_now: rill_analytics::report::ViewersNow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingView>,
    pub transcode: TranscodeView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packaging: Option<PackagingView>,
}

/// What only a stream on the Bus has.
#[derive(Debug, Serialize)]
pub struct LiveView {
    /// `None` while waiting for the publisher to reconnect.
    pub publisher: Option<PublisherView>,
    pub uptime_s: u64,
    pub video: Option<VideoView>,
    pub audio: Option<AudioView>,
    pub encoder: Option<String>,
    pub ingest_kbps: f64,
    pub viewers: BTreeMap<&'static str, usize>,
    pub viewers_total: usize,
    pub webrtc_sessions: Vec<WebRtcSessionView>,
    /// The WebRTC rendition (Constrained Baseline H.264) while viewers that cannot decode the
    /// source's video hold it; the sessions' `video`/`video_reason` say which and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webrtc_rendition: Option<rill_transcode::webrtc::BaselineView>,
}

#[derive(Debug, Serialize)]
pub struct PublisherView {
    pub protocol: &'static str,
    pub address: String,
}

#[derive(Debug, Serialize)]
pub struct VideoView {
    pub codec: &'static str,
    pub codecs: Option<String>,
    pub fps: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct AudioView {
    pub codec: &'static str,
    pub codecs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
}

/// A WHIP or WHEP session of the stream.
#[derive(Debug, Serialize)]
pub struct WebRtcSessionView {
    pub id: String,
    pub kind: &'static str,
    pub address: String,
    pub state: &'static str,
    pub age_s: u64,
    pub audio: &'static str,
    /// WHEP: `source`, `webrtc rendition` (Constrained Baseline transcoded for this viewer) or `none`.
    pub video: &'static str,
    /// WHEP: why: the source's profile and the offered entry it is sent as, or what the offer lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_reason: Option<String>,
    pub rtt_ms: Option<f64>,
    pub packets_lost: u64,
    pub nacks_received: u64,
    pub plis_received: u64,
    pub plis_sent: u64,
}

impl From<&SessionInfo> for WebRtcSessionView {
    fn from(s: &SessionInfo) -> Self {
        WebRtcSessionView {
            id: s.id.clone(),
            kind: s.role.as_str(),
            address: s.peer.clone(),
            state: if s.connected { "connected" } else { "connecting" },
            age_s: s.started.elapsed().as_secs(),
            audio: s.audio,
            video: s.video,
            video_reason: s.video_reason.clone(),
            rtt_ms: s.rtt_ms.map(|r| (r * 10.0).round() / 10.0),
            packets_lost: s.packets_lost,
            nacks_received: s.nacks_received,
            plis_received: s.plis_received,
            plis_sent: s.plis_sent,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RecordingView {
    pub video_id: String,
    pub state: &'static str,
    pub error: Option<String>,
    pub segments: u64,
    pub bytes: u64,
    pub watch_url: String,
}

impl RecordingView {
    pub fn new(base: &UrlBase, recording: &ActiveRecording) -> RecordingView {
        RecordingView {
            video_id: recording.video_id.to_string(),
            state: if recording.failed() { "failed" } else { "recording" },
            error: recording.error(),
            segments: recording.segments.load(Ordering::Relaxed),
            bytes: recording.bytes_written.load(Ordering::Relaxed),
            watch_url: format!("{}/watch/{}", base.http(), recording.video_id),
        }
    }
}

/// What the LL-HLS/DASH packager holds of the stream.
#[derive(Debug, Serialize)]
pub struct PackagingView {
    pub ended: bool,
    pub tracks: Vec<PackagedTrackView>,
    pub unsupported: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PackagedTrackView {
    pub track: &'static str,
    pub segments: usize,
    pub last_segment: Option<u64>,
    pub last_part: Option<String>,
    pub peak_kbps: u64,
}

impl From<&LiveState> for PackagingView {
    fn from(st: &LiveState) -> Self {
        let tracks = st
            .tracks
            .iter()
            .map(|t| PackagedTrackView {
                track: t.kind().as_str(),
                segments: t.segments.len(),
                last_segment: t.last_complete_msn(),
                last_part: t.last_part().map(|(m, p)| format!("{m}.{p}")),
                peak_kbps: t.peak_bitrate() / 1000,
            })
            .collect();
        PackagingView { ended: st.ended, tracks, unsupported: st.unsupported.clone() }
    }
}

impl LiveView {
    pub fn new(snapshot: &StreamSnapshot, webrtc_sessions: Vec<WebRtcSessionView>) -> LiveView {
        let tracks = &snapshot.tracks;
        let size = tracks.resolution();
        let video = tracks.video.as_ref().map(|v| VideoView {
            codec: v.name(),
            codecs: v.rfc6381(),
            fps: (snapshot.video_fps * 100.0).round() / 100.0,
            width: size.map(|(w, _)| w),
            height: size.map(|(_, h)| h),
        });
        let audio = tracks.audio.as_ref().map(|a| {
            let (sample_rate, channels) = match a {
                CodecConfig::Aac(aac) => (Some(aac.info.sample_rate), Some(aac.info.channels)),
                CodecConfig::Opus { sample_rate, channels } => (Some(*sample_rate), Some(*channels)),
                _ => (None, None),
            };
            AudioView { codec: a.name(), codecs: a.rfc6381(), sample_rate, channels }
        });
        LiveView {
            publisher: snapshot
                .publisher
                .as_ref()
                .map(|p| PublisherView { protocol: p.protocol, address: p.peer.clone() }),
            uptime_s: snapshot.publishing_for.map_or(0, |d| d.as_secs()),
            video,
            audio,
            encoder: tracks.encoder.clone(),
            ingest_kbps: snapshot.ingest_kbps.round(),
            viewers: snapshot.viewers.clone(),
            viewers_total: snapshot.viewers.values().sum(),
            webrtc_sessions,
            webrtc_rendition: None,
        }
    }
}

impl StreamState {
    pub fn of(live: Option<&StreamSnapshot>) -> StreamState {
        match live {
            Some(s) if s.publisher.is_some() => StreamState::Live,
            Some(_) => StreamState::Reconnecting,
            None => StreamState::Offline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rill_media::{PublisherInfo, Tracks};
    use serde_json::{json, Value};
    use std::sync::Arc;
    use std::time::Duration;

    fn base() -> UrlBase {
        UrlBase { host: "media.example".into(), http_port: 8080, rtmp_port: 1935, srt_port: 8890 }
    }

    fn snapshot(publisher: bool) -> StreamSnapshot {
        let tracks = Tracks { encoder: Some("obs-output module".into()), ..rill_media::testing::avc_aac_tracks(true) };
        StreamSnapshot {
            path: "live/studio".parse().unwrap(),
            publisher: publisher.then(|| PublisherInfo { protocol: "rtmp", peer: "10.0.0.7:50000".into() }),
            publishing_for: publisher.then_some(Duration::from_secs(42)),
            tracks: Arc::new(tracks),
            ingest_kbps: 2999.6,
            video_fps: 29.971,
            bytes_in: 1,
            viewers: BTreeMap::from([("http-flv", 2), ("rtmp", 1)]),
            cached_frames: 60,
        }
    }

    #[test]
    fn a_live_stream_shows_what_an_operator_needs() {
        let live = snapshot(true);
        let view = StreamView {
            name: "studio".into(),
            state: StreamState::of(Some(&live)),
            origin: Some(Origin::Api),
            playback: Default::default(),
            urls: PlayUrls::new(&base(), "studio"),
            live: Some(LiveView::new(&live, Vec::new())),
            viewers_now: rill_analytics::report::ViewersNow::from([2, 0, 0, 0, 3, 0]),
            recording: None,
            transcode: TranscodeView { enabled: false, ladder: None, ladder_state: None },
            packaging: Some(PackagingView::from(&LiveState::default())),
        };
        let v: Value = serde_json::to_value(&view).unwrap();
        assert_eq!(v["state"], "live");
        assert_eq!(v["origin"], "api");
        assert_eq!(v["publisher"], json!({ "protocol": "rtmp", "address": "10.0.0.7:50000" }));
        assert_eq!(v["uptime_s"], 42);
        assert_eq!(v["ingest_kbps"], 3000.0);
        assert_eq!(v["viewers"], json!({ "http-flv": 2, "rtmp": 1 }));
        assert_eq!(v["viewers_total"], 3);
        assert_eq!(
            v["viewers_now"],
            json!({ "flv": 2, "rtmp": 0, "srt": 0, "webrtc": 0, "hls": 3, "dash": 0, "total": 5 })
        );
        assert_eq!(v["video"]["codec"], "h264");
        assert_eq!(v["video"]["fps"], 29.97);
        assert!(v["video"]["width"].as_u64().unwrap() > 0 && v["video"]["height"].as_u64().unwrap() > 0);
        assert_eq!(v["audio"]["sample_rate"], 48_000);
        assert_eq!(v["encoder"], "obs-output module");
        assert_eq!(v["urls"]["hls_url"], "http://media.example:8080/live/studio/index.m3u8");
        assert_eq!(v["urls"]["srt_play_url"], "srt://media.example:8890?streamid=read:live/studio");
        assert_eq!(v["transcode"], json!({ "enabled": false, "ladder": null }));
        assert_eq!(v["packaging"]["ended"], false);
        assert!(v.get("recording").is_none());
    }

    #[test]
    fn an_offline_stream_has_no_live_fields_and_a_reconnecting_one_no_publisher() {
        let view = StreamView {
            name: "studio".into(),
            state: StreamState::of(None),
            origin: Some(Origin::Config),
            playback: Default::default(),
            urls: PlayUrls::new(&base(), "studio"),
            live: None,
            viewers_now: Default::default(),
            recording: None,
            transcode: TranscodeView { enabled: true, ladder: Some(vec!["360p".into()]), ladder_state: None },
            packaging: None,
        };
        let v: Value = serde_json::to_value(&view).unwrap();
        assert_eq!(v["state"], "offline");
        for absent in ["publisher", "video", "viewers", "packaging", "recording"] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
        assert_eq!(v["transcode"]["ladder"], json!(["360p"]));
        let waiting = snapshot(false);
        assert_eq!(StreamState::of(Some(&waiting)), StreamState::Reconnecting);
        let v = serde_json::to_value(LiveView::new(&waiting, Vec::new())).unwrap();
        assert_eq!(v["publisher"], Value::Null);
        assert_eq!(v["uptime_s"], 0);
    }

    #[test]
    fn created_streams_carry_the_key_and_every_url() {
        let entry = StreamEntry {
            name: "studio".into(),
            key: "sk_x".into(),
            origin: Origin::Api,
            created_at: 7,
            playback: None,
        };
        let v = serde_json::to_value(CreatedStream::new(&base(), &entry)).unwrap();
        assert_eq!(v["rtmp_url"], "rtmp://media.example:1935/live/sk_x");
        assert_eq!(v["rtmp_server"], "rtmp://media.example:1935/live");
        assert_eq!(v["srt_url"], "srt://media.example:8890?streamid=publish:live/sk_x");
        assert_eq!(v["flv_url"], "http://media.example:8080/live/studio.flv");
        assert_eq!(v["created_at"], 7);
    }
}
