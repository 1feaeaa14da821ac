//! VOD manifests from a video's segment index (never from the disk): the HLS multivariant and
//! media playlists (`VOD` once the video is ready, a growing `EVENT` playlist while it is being
//! recorded, so a viewer can seek back to the start of a live stream) and the DASH MPD (`static`,
//! or `dynamic` with an unbounded time-shift window while recording). A change of tracks during
//! the recording (a publisher reconnecting with other settings) is an HLS discontinuity with a
//! new `EXT-X-MAP`, and a new DASH period.

use crate::catalog::{Catalog, CatalogError, SegmentRow, Video, VideoStatus};
use crate::VideoId;
use rill_media::cmaf::TrackKind;
use rill_media::manifest::{
    dash_content_type, dash_representation, dash_utc_timing, hls_multivariant, xml_escape, xs_duration, HlsTrack,
    TrackDescription,
};
use rill_media::wallclock::iso8601;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One recorded track: its init segments by version and its segments in order.
#[derive(Debug, Clone)]
pub struct TrackIndex {
    pub kind: TrackKind,
    pub inits: Vec<(i64, TrackDescription)>,
    pub segments: Vec<SegmentRow>,
}

impl TrackIndex {
    /// The description of the track's latest init segment.
    pub fn description(&self) -> Option<&TrackDescription> {
        self.inits.last().map(|(_, d)| d)
    }

    pub fn segment(&self, sequence: i64) -> Option<&SegmentRow> {
        self.segments.binary_search_by_key(&sequence, |s| s.sequence).ok().map(|i| &self.segments[i])
    }

    pub fn has_init(&self, version: i64) -> bool {
        self.inits.iter().any(|(v, _)| *v == version)
    }

    fn duration_secs(&self) -> f64 {
        self.segments.iter().map(seconds).sum()
    }

    /// The highest bitrate of a segment, in bit/s.
    pub fn peak_bitrate(&self) -> u64 {
        self.segments.iter().map(|s| bitrate(s.size_bytes, seconds(s))).max().unwrap_or(0)
    }

    /// Bits over seconds of all segments.
    pub fn average_bitrate(&self) -> u64 {
        bitrate(self.segments.iter().map(|s| s.size_bytes).sum(), self.duration_secs())
    }
}

fn seconds(segment: &SegmentRow) -> f64 {
    segment.duration_ticks as f64 / segment.timescale.max(1) as f64
}

fn bitrate(bytes: i64, secs: f64) -> u64 {
    if secs > 0.0 {
        (bytes as f64 * 8.0 / secs) as u64
    } else {
        0
    }
}

/// What the manifests of one video are made from.
#[derive(Debug, Clone)]
pub struct VideoIndex {
    pub video: Video,
    pub tracks: Vec<TrackIndex>,
}

impl VideoIndex {
    /// The index of video `id`, or `None` if it does not exist.
    pub async fn load(catalog: &Catalog, id: VideoId) -> Result<Option<VideoIndex>, CatalogError> {
        let Some(video) = catalog.video(id).await? else { return Ok(None) };
        let inits = catalog.inits(id).await?;
        let mut tracks = Vec::new();
        for kind in [TrackKind::Video, TrackKind::Audio] {
            let versions: Vec<(i64, TrackDescription)> = inits
                .iter()
                .filter(|i| i.track == kind.as_str())
                .filter_map(|i| Some((i.version, serde_json::from_str(&i.info).ok()?)))
                .collect();
            if versions.is_empty() {
                continue;
            }
            let segments = catalog.segments(id, kind.as_str()).await?;
            tracks.push(TrackIndex { kind, inits: versions, segments });
        }
        Ok(Some(VideoIndex { video, tracks }))
    }

    pub fn track(&self, kind: TrackKind) -> Option<&TrackIndex> {
        self.tracks.iter().find(|t| t.kind == kind && !t.segments.is_empty())
    }

    /// Still being recorded: playlists grow and have no end.
    pub fn is_live(&self) -> bool {
        self.video.status == VideoStatus::Recording
    }

    /// Whether anything can be played yet.
    pub fn is_playable(&self) -> bool {
        self.tracks.iter().any(|t| !t.segments.is_empty())
    }
}

/// URI of a track's media playlist, relative to the multivariant playlist.
pub fn media_playlist_uri(kind: TrackKind) -> String {
    format!("{}/index.m3u8", kind.as_str())
}

/// The HLS multivariant playlist.
pub fn multivariant(index: &VideoIndex) -> String {
    let uris = [TrackKind::Video, TrackKind::Audio].map(media_playlist_uri);
    let variant = |kind: TrackKind, uri| {
        let track = index.track(kind)?;
        Some(HlsTrack {
            description: track.description()?,
            peak_bitrate: track.peak_bitrate(),
            average_bitrate: track.average_bitrate(),
            uri,
        })
    };
    let videos: Vec<HlsTrack<'_>> = variant(TrackKind::Video, &uris[0]).into_iter().collect();
    hls_multivariant(&videos, variant(TrackKind::Audio, &uris[1]), 7)
}

/// The HLS media playlist of one track: `VOD` with `EXT-X-ENDLIST`, or `EVENT` while recording.
pub fn media_playlist(index: &VideoIndex, track: &TrackIndex) -> String {
    let target = track.segments.iter().map(seconds).fold(1.0f64, f64::max).ceil() as u64;
    let first = track.segments.first().map_or(0, |s| s.sequence);
    let kind = if index.is_live() { "EVENT" } else { "VOD" };
    let mut out = String::with_capacity(64 + track.segments.len() * 80);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-PLAYLIST-TYPE:{kind}\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    let mut version = None;
    for segment in &track.segments {
        if version != Some(segment.init_version) || segment.discontinuity {
            if version.is_some() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4\"", segment.init_version);
            if segment.wall_clock_ms > 0 {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(from_unix_ms(segment.wall_clock_ms)));
            }
            version = Some(segment.init_version);
        }
        let _ = writeln!(out, "#EXTINF:{:.5},\n{}.m4s", seconds(segment), segment.sequence);
    }
    if !index.is_live() {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// The DASH MPD. `time_url` is the absolute URL of the server's UTCTiming endpoint (used while
/// the MPD is dynamic).
pub fn dash_manifest(index: &VideoIndex, now: SystemTime, time_url: &str) -> String {
    let periods = periods(index);
    let total: f64 = periods.iter().map(|p| p.duration).sum();
    let max_segment = index.tracks.iter().flat_map(|t| &t.segments).map(seconds).fold(0.0f64, f64::max);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" minBufferTime=\"PT2S\" maxSegmentDuration=\"{}\"",
        xs_duration(max_segment.max(1.0))
    );
    if index.is_live() {
        let start = index.tracks.iter().filter_map(|t| t.segments.first()).map(|s| s.wall_clock_ms).min().unwrap_or(0);
        let _ = writeln!(
            out,
            " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"PT2S\">",
            iso8601(from_unix_ms(start)),
            iso8601(now)
        );
    } else {
        let _ = writeln!(out, " type=\"static\" mediaPresentationDuration=\"{}\">", xs_duration(total));
    }
    let _ =
        writeln!(out, "  <ProgramInformation><Title>{}</Title></ProgramInformation>", xml_escape(&index.video.title));
    let mut start = 0.0;
    for (number, period) in periods.iter().enumerate() {
        let _ = write!(out, "  <Period id=\"{number}\" start=\"{}\"", xs_duration(start));
        if !index.is_live() || number + 1 < periods.len() {
            let _ = write!(out, " duration=\"{}\"", xs_duration(period.duration));
        }
        out.push_str(">\n");
        for (id, (track, segments)) in period.tracks.iter().enumerate() {
            adaptation_set(&mut out, id, track, period.version, segments);
        }
        out.push_str("  </Period>\n");
        start += period.duration;
    }
    if index.is_live() {
        dash_utc_timing(&mut out, time_url);
    }
    out.push_str("</MPD>\n");
    out
}

/// The segments of one init version of every track.
struct Period<'a> {
    version: i64,
    tracks: Vec<(&'a TrackIndex, &'a [SegmentRow])>,
    duration: f64,
}

fn periods(index: &VideoIndex) -> Vec<Period<'_>> {
    let mut versions: Vec<i64> = index.tracks.iter().flat_map(|t| t.segments.iter().map(|s| s.init_version)).collect();
    versions.sort_unstable();
    versions.dedup();
    versions
        .into_iter()
        .map(|version| {
            let tracks: Vec<(&TrackIndex, &[SegmentRow])> = index
                .tracks
                .iter()
                .filter_map(|track| {
                    let first = track.segments.iter().position(|s| s.init_version == version)?;
                    let count = track.segments[first..].iter().take_while(|s| s.init_version == version).count();
                    Some((track, &track.segments[first..first + count]))
                })
                .collect();
            let duration =
                tracks.iter().map(|(_, segments)| segments.iter().map(seconds).sum::<f64>()).fold(0.0, f64::max);
            Period { version, tracks, duration }
        })
        .collect()
}

fn adaptation_set(out: &mut String, id: usize, track: &TrackIndex, version: i64, segments: &[SegmentRow]) {
    let Some(first) = segments.first() else { return };
    let Some((_, description)) = track.inits.iter().find(|(v, _)| *v == version) else { return };
    let (content, mime) = dash_content_type(track.kind);
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\"{}>",
        if track.kind == TrackKind::Audio { " lang=\"und\"" } else { "" }
    );
    let _ = writeln!(
        out,
        "      <SegmentTemplate timescale=\"{}\" presentationTimeOffset=\"{}\" initialization=\"{content}/init-{version}.mp4\" media=\"{content}/$Number$.m4s\" startNumber=\"{}\">\n        <SegmentTimeline>",
        first.timescale, first.start_ticks, first.sequence
    );
    // Runs of equal durations become one `S` with a repeat count.
    let mut i = 0;
    while i < segments.len() {
        let segment = &segments[i];
        let mut repeat = 0;
        while let Some(next) = segments.get(i + repeat + 1) {
            let previous = &segments[i + repeat];
            if next.duration_ticks != segment.duration_ticks
                || next.start_ticks != previous.start_ticks + previous.duration_ticks
            {
                break;
            }
            repeat += 1;
        }
        let _ = write!(out, "          <S t=\"{}\" d=\"{}\"", segment.start_ticks, segment.duration_ticks);
        if repeat > 0 {
            let _ = write!(out, " r=\"{repeat}\"");
        }
        out.push_str("/>\n");
        i += repeat + 1;
    }
    out.push_str("        </SegmentTimeline>\n      </SegmentTemplate>\n");
    let bandwidth = segments.iter().map(|s| bitrate(s.size_bytes, seconds(s))).max().unwrap_or(0);
    dash_representation(out, content, description, bandwidth, "");
    out.push_str("    </AdaptationSet>\n");
}

fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}
