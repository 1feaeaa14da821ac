//! VOD manifests from a video's segment index (never from the disk): the HLS multivariant and
//! media playlists (`VOD` once the video is ready, a growing `EVENT` playlist while it is being
//! recorded, so a viewer can seek back to the start of a live stream) and the DASH MPD (`static`,
//! or `dynamic` with an unbounded time-shift window while recording). A change of tracks during
//! the recording (a publisher reconnecting with other settings) is an HLS discontinuity with a
//! new `EXT-X-MAP`, and a new DASH period. A processed upload has several video renditions
//! (tracks `video`, `video-<rung>`): every one is a variant of the multivariant playlist and a
//! representation of the one video adaptation set (each with its own `SegmentTemplate`).
//! Captions (one WebVTT file per language) are an HLS `SUBTITLES` group, each language a
//! media playlist of one WebVTT "segment" as long as the video, and a DASH text adaptation set
//! per language pointing at the file (in the first period: cue times count from the video's
//! start).

use crate::catalog::{CaptionRow, Catalog, CatalogError, SegmentRow, Video, VideoStatus};
use crate::upload::package::{is_track_name, track_kind};
use crate::VideoId;
use rill_media::cmaf::TrackKind;
use rill_media::manifest::{
    dash_content_type, dash_representation, dash_text_adaptation_set, dash_utc_timing, hls_multivariant_with_subtitles,
    xml_escape, xs_duration, HlsSubtitles, HlsTrack, TrackDescription,
};
use rill_media::wallclock::iso8601;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One recorded track: its init segments by version and its segments in order.
#[derive(Debug, Clone)]
pub struct TrackIndex {
    /// The track's name in the catalog and in URLs: `video`, `audio`, or `video-<rung>`.
    pub name: String,
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

    /// Where segment `sequence` lies in the video's media time (ms from its start, end
    /// excluded): the segments before it, back to back.
    pub fn media_range_ms(&self, sequence: i64) -> Option<(u64, u64)> {
        let index = self.segments.binary_search_by_key(&sequence, |s| s.sequence).ok()?;
        let start: f64 = self.segments[..index].iter().map(seconds).sum();
        let end = start + seconds(&self.segments[index]);
        Some(((start * 1000.0) as u64, (end * 1000.0) as u64))
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
    /// Caption languages, by tag.
    pub captions: Vec<CaptionRow>,
}

impl VideoIndex {
    /// The index of video `id`, or `None` if it does not exist.
    pub async fn load(catalog: &Catalog, id: VideoId) -> Result<Option<VideoIndex>, CatalogError> {
        let Some(video) = catalog.video(id).await? else { return Ok(None) };
        let inits = catalog.inits(id).await?;
        let mut names: Vec<&str> = inits.iter().map(|i| i.track.as_str()).filter(|n| is_track_name(n)).collect();
        names.dedup();
        let mut tracks = Vec::new();
        for name in names {
            let versions: Vec<(i64, TrackDescription)> = inits
                .iter()
                .filter(|i| i.track == name)
                .filter_map(|i| Some((i.version, serde_json::from_str(&i.info).ok()?)))
                .collect();
            if versions.is_empty() {
                continue;
            }
            let segments = catalog.segments(id, name).await?;
            tracks.push(TrackIndex { name: name.to_owned(), kind: track_kind(name), inits: versions, segments });
        }
        // `video` first, the other renditions by height (highest first), then `audio`.
        tracks.sort_by_key(|t| {
            let height = t.description().and_then(|d| d.height).unwrap_or(0);
            (t.kind == TrackKind::Audio, t.name != "video", std::cmp::Reverse(height))
        });
        let captions = catalog.captions(id).await?;
        Ok(Some(VideoIndex { video, tracks, captions }))
    }

    /// The captions in `lang`, if the video has them.
    pub fn caption(&self, lang: &str) -> Option<&CaptionRow> {
        self.captions.iter().find(|c| c.lang == lang)
    }

    /// The media time of the video's start on the 90 kHz clock: the earliest first segment of
    /// any track. Cue time 0 of the captions is this time (HLS `X-TIMESTAMP-MAP`).
    pub fn start_90khz(&self) -> u64 {
        self.tracks
            .iter()
            .filter_map(|t| t.segments.first())
            .map(|s| (s.start_ticks.max(0) as u128 * 90_000 / s.timescale.max(1) as u128) as u64)
            .min()
            .unwrap_or(0)
    }

    /// The video's length in seconds: its longest track.
    pub fn duration_secs(&self) -> f64 {
        self.tracks.iter().map(TrackIndex::duration_secs).fold(0.0, f64::max)
    }

    /// The first track of `kind` with segments (`video`: the top rendition).
    pub fn track(&self, kind: TrackKind) -> Option<&TrackIndex> {
        self.tracks.iter().find(|t| t.kind == kind && !t.segments.is_empty())
    }

    /// The track named `name`, if it has segments.
    pub fn track_named(&self, name: &str) -> Option<&TrackIndex> {
        self.tracks.iter().find(|t| t.name == name && !t.segments.is_empty())
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

/// The HLS multivariant playlist: every video track (rendition) is a variant.
pub fn multivariant(index: &VideoIndex) -> String {
    let playable: Vec<&TrackIndex> = index.tracks.iter().filter(|t| !t.segments.is_empty()).collect();
    let uris: Vec<String> = playable.iter().map(|t| format!("{}/index.m3u8", t.name)).collect();
    fn variant<'a>((track, uri): (&&'a TrackIndex, &'a String)) -> Option<HlsTrack<'a>> {
        Some(HlsTrack {
            description: track.description()?,
            peak_bitrate: track.peak_bitrate(),
            average_bitrate: track.average_bitrate(),
            uri,
        })
    }
    let videos: Vec<HlsTrack<'_>> =
        playable.iter().zip(&uris).filter(|(t, _)| t.kind == TrackKind::Video).filter_map(variant).collect();
    let audio = playable.iter().zip(&uris).find(|(t, _)| t.kind == TrackKind::Audio).and_then(variant);
    let caption_uris: Vec<String> = index.captions.iter().map(|c| caption_playlist_uri(&c.lang)).collect();
    let subtitles: Vec<HlsSubtitles<'_>> = index
        .captions
        .iter()
        .zip(&caption_uris)
        .map(|(c, uri)| HlsSubtitles { language: &c.lang, name: &c.label, uri })
        .collect();
    hls_multivariant_with_subtitles(&videos, audio, &subtitles, 7)
}

/// URI of a caption language's media playlist, relative to the multivariant playlist.
pub fn caption_playlist_uri(lang: &str) -> String {
    format!("captions/{lang}.m3u8")
}

/// The HLS media playlist of one caption language: its WebVTT file as one segment lasting the
/// whole video (`EVENT` without an end while recording).
pub fn caption_playlist(index: &VideoIndex, lang: &str) -> String {
    let duration = index.duration_secs();
    let kind = if index.is_live() { "EVENT" } else { "VOD" };
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{kind}\n#EXTINF:{duration:.5},\n{lang}.vtt\n",
        duration.ceil().max(1.0) as u64
    );
    if !index.is_live() {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
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
        let kinds = [TrackKind::Video, TrackKind::Audio];
        let sets = kinds.iter().map(|&kind| period.tracks.iter().filter(|(t, _)| t.kind == kind).collect::<Vec<_>>());
        let mut sets_written = 0;
        for (id, set) in sets.filter(|set| !set.is_empty()).enumerate() {
            match set.as_slice() {
                [(track, segments)] => adaptation_set(&mut out, id, track, period.version, segments),
                renditions => rendition_set(&mut out, id, renditions, period.version),
            }
            sets_written = id + 1;
        }
        if number == 0 {
            for (i, caption) in index.captions.iter().enumerate() {
                let url = format!("captions/{}.vtt", caption.lang);
                dash_text_adaptation_set(&mut out, sets_written + i, &caption.lang, &caption.label, &url);
            }
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
    let Some((_, description)) = track.inits.iter().find(|(v, _)| *v == version) else { return };
    let (content, mime) = dash_content_type(track.kind);
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\"{}>",
        if track.kind == TrackKind::Audio { " lang=\"und\"" } else { "" }
    );
    if !segment_template(out, "      ", &track.name, version, segments) {
        return;
    }
    let bandwidth = segments.iter().map(|s| bitrate(s.size_bytes, seconds(s))).max().unwrap_or(0);
    dash_representation(out, content, description, bandwidth, "");
    out.push_str("    </AdaptationSet>\n");
}

/// Renditions of one kind: one adaptation set, a representation (with its own
/// `SegmentTemplate`) per track; their segments are aligned.
fn rendition_set(out: &mut String, id: usize, renditions: &[&(&TrackIndex, &[SegmentRow])], version: i64) {
    let Some((first, _)) = renditions.first() else { return };
    let (content, mime) = dash_content_type(first.kind);
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\">"
    );
    for (track, segments) in renditions {
        let Some((_, description)) = track.inits.iter().find(|(v, _)| *v == version) else { continue };
        let mut inner = String::new();
        if !segment_template(&mut inner, "        ", &track.name, version, segments) {
            continue;
        }
        let bandwidth = segments.iter().map(|s| bitrate(s.size_bytes, seconds(s))).max().unwrap_or(0);
        dash_representation(out, &track.name, description, bandwidth, &inner);
    }
    out.push_str("    </AdaptationSet>\n");
}

/// A `SegmentTemplate` with its timeline for the files of track `path`, indented by `indent`;
/// `false` (nothing written) without segments.
fn segment_template(out: &mut String, indent: &str, path: &str, version: i64, segments: &[SegmentRow]) -> bool {
    let Some(first) = segments.first() else { return false };
    let _ = writeln!(
        out,
        "{indent}<SegmentTemplate timescale=\"{}\" presentationTimeOffset=\"{}\" initialization=\"{path}/init-{version}.mp4\" media=\"{path}/$Number$.m4s\" startNumber=\"{}\">\n{indent}  <SegmentTimeline>",
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
        let _ = write!(out, "{indent}    <S t=\"{}\" d=\"{}\"", segment.start_ticks, segment.duration_ticks);
        if repeat > 0 {
            let _ = write!(out, " r=\"{repeat}\"");
        }
        out.push_str("/>\n");
        i += repeat + 1;
    }
    let _ = write!(out, "{indent}  </SegmentTimeline>\n{indent}</SegmentTemplate>\n");
    true
}

fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{VideoSource, Visibility};
    use rill_media::testing::{assert_golden, avc_aac_tracks};

    /// 2026-11-21T12:00:00Z, when the recordings below start.
    const START_MS: i64 = 1_795_262_400_000;

    fn golden(name: &str, actual: &str) {
        assert_golden(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata").join(name), actual);
    }

    fn video(status: VideoStatus) -> Video {
        Video {
            id: "0123456789AB".into(),
            title: "Launch <day> & \"Q&A\"".into(),
            description: String::new(),
            tags: Vec::new(),
            visibility: Visibility::Public,
            status,
            error: None,
            stream: "studio".into(),
            duration_ms: 0,
            size_bytes: 0,
            thumbnail: None,
            created_at_ms: START_MS,
            ended_at_ms: None,
            updated_at_ms: START_MS,
            frames_lost: 0,
            lost_ms: 0,
            source: VideoSource::Recording,
        }
    }

    /// 720p30 H.264 (90 kHz) or 48 kHz stereo AAC, as the recorder describes its init segments.
    fn description(kind: TrackKind) -> TrackDescription {
        let tracks = avc_aac_tracks(true);
        match kind {
            TrackKind::Video => TrackDescription::new(kind, tracks.video.as_ref().unwrap(), 90_000),
            _ => TrackDescription::new(kind, tracks.audio.as_ref().unwrap(), 48_000),
        }
    }

    /// Segments of `kind` back to back from `(sequence, start_ticks)`, one per duration (in
    /// ticks), all of init `version`; the first marked as a discontinuity when `discontinuity`.
    fn run(
        kind: TrackKind,
        (sequence, start): (i64, i64),
        durations: &[i64],
        version: i64,
        discontinuity: bool,
    ) -> Vec<SegmentRow> {
        let timescale = if kind == TrackKind::Video { 90_000 } else { 48_000 };
        let mut ticks = start;
        durations
            .iter()
            .enumerate()
            .map(|(i, &duration)| {
                let row = SegmentRow {
                    track: kind.as_str().into(),
                    sequence: sequence + i as i64,
                    init_version: version,
                    discontinuity: discontinuity && i == 0,
                    start_ticks: ticks,
                    duration_ticks: duration,
                    timescale,
                    // 1 Mbit/s of video, 128 kbit/s of audio.
                    size_bytes: duration * if kind == TrackKind::Video { 125_000 } else { 16_000 } / timescale,
                    wall_clock_ms: START_MS + ticks * 1000 / timescale,
                };
                ticks += duration;
                row
            })
            .collect()
    }

    fn track(kind: TrackKind, versions: &[i64], segments: Vec<SegmentRow>) -> TrackIndex {
        TrackIndex {
            name: kind.as_str().into(),
            kind,
            inits: versions.iter().map(|&v| (v, description(kind))).collect(),
            segments,
        }
    }

    /// 7.5 s of video in 2 s segments and audio in AAC-framed ones (1024 samples per frame).
    fn recording(status: VideoStatus) -> VideoIndex {
        VideoIndex {
            video: video(status),
            tracks: vec![
                track(
                    TrackKind::Video,
                    &[0],
                    run(TrackKind::Video, (0, 0), &[180_000, 180_000, 180_000, 135_000], 0, false),
                ),
                track(
                    TrackKind::Audio,
                    &[0],
                    run(TrackKind::Audio, (0, 0), &[96_256, 96_256, 95_232, 72_704], 0, false),
                ),
            ],
            captions: Vec::new(),
        }
    }

    /// A publisher that came back with other settings after 4 s: init version 1 from segment 2
    /// on, a discontinuity in HLS and a second period in DASH.
    fn reconnected(status: VideoStatus) -> VideoIndex {
        let pictures = [
            run(TrackKind::Video, (0, 0), &[180_000, 180_000], 0, false),
            run(TrackKind::Video, (2, 450_000), &[180_000, 90_000], 1, true),
        ];
        let sound = [
            run(TrackKind::Audio, (0, 0), &[96_256, 95_232], 0, false),
            run(TrackKind::Audio, (2, 240_000), &[96_256, 48_128], 1, true),
        ];
        VideoIndex {
            video: video(status),
            tracks: vec![
                track(TrackKind::Video, &[0, 1], pictures.concat()),
                track(TrackKind::Audio, &[0, 1], sound.concat()),
            ],
            captions: Vec::new(),
        }
    }

    /// A processed upload: three video renditions with aligned segments, and audio.
    fn processed() -> VideoIndex {
        let mut index = recording(VideoStatus::Ready);
        let top = index.tracks.remove(0);
        let mut tracks = vec![top.clone()];
        for (name, width, height, share) in [("video-480p", 854, 480, 3), ("video-720p", 1280, 720, 2)] {
            let mut rendition = top.clone();
            rendition.name = name.into();
            for (_, description) in &mut rendition.inits {
                (description.width, description.height) = (Some(width), Some(height));
            }
            for segment in &mut rendition.segments {
                segment.track = name.into();
                segment.size_bytes /= share;
            }
            tracks.push(rendition);
        }
        tracks.extend(index.tracks);
        VideoIndex { video: video(VideoStatus::Ready), tracks, captions: Vec::new() }
    }

    #[test]
    fn renditions_are_variants_and_representations() {
        let index = processed();
        golden("renditions.m3u8", &multivariant(&index));
        let now = UNIX_EPOCH + Duration::from_millis(START_MS as u64 + 8_000);
        let mpd = dash_manifest(&index, now, "http://h/time");
        golden("renditions.mpd", &mpd);
        assert_eq!(mpd.matches("<AdaptationSet").count(), 2, "one set of video renditions, one of audio");
        assert!(mpd.contains("media=\"video-720p/$Number$.m4s\""));
        assert_eq!(index.track_named("video-480p").unwrap().name, "video-480p");
        assert_eq!(index.track(TrackKind::Video).unwrap().name, "video");
    }

    #[test]
    fn captions_are_a_subtitles_group_and_text_adaptation_sets() {
        let mut index = processed();
        for (lang, label) in [("en", "English"), ("pt-BR", "Português (pt-BR)")] {
            index.captions.push(CaptionRow {
                lang: lang.into(),
                label: label.into(),
                cues: 3,
                size_bytes: 100,
                created_at_ms: START_MS,
            });
        }
        golden("captions.m3u8", &multivariant(&index));
        golden("captions-en.m3u8", &caption_playlist(&index, "en"));
        let now = UNIX_EPOCH + Duration::from_millis(START_MS as u64 + 8_000);
        let mpd = dash_manifest(&index, now, "http://h/time");
        golden("captions.mpd", &mpd);
        let master = multivariant(&index);
        assert_eq!(master.matches("TYPE=SUBTITLES").count(), 2, "{master}");
        assert_eq!(master.matches("SUBTITLES=\"subs\"").count(), 3, "every variant names the group: {master}");
        assert!(mpd.contains("<BaseURL>captions/pt-BR.vtt</BaseURL>"), "{mpd}");
        assert_eq!(mpd.matches("mimeType=\"text/vtt\"").count(), 2, "{mpd}");
        assert_eq!(index.start_90khz(), 0);
        assert!((index.duration_secs() - 7.509).abs() < 0.01);
    }

    #[test]
    fn golden_playlists_and_mpds() {
        let now = UNIX_EPOCH + Duration::from_millis(START_MS as u64 + 8_000);
        let ready = recording(VideoStatus::Ready);
        let video = ready.track(TrackKind::Video).unwrap();
        let audio = ready.track(TrackKind::Audio).unwrap();
        golden("multivariant.m3u8", &multivariant(&ready));
        golden("vod-video.m3u8", &media_playlist(&ready, video));
        golden("vod-audio.m3u8", &media_playlist(&ready, audio));
        golden("vod.mpd", &dash_manifest(&ready, now, "http://h/time"));
        let live = recording(VideoStatus::Recording);
        golden("event-video.m3u8", &media_playlist(&live, live.track(TrackKind::Video).unwrap()));
        golden("event.mpd", &dash_manifest(&live, now, "http://h/time"));
        let reconnected_ready = reconnected(VideoStatus::Ready);
        golden(
            "reconnected-video.m3u8",
            &media_playlist(&reconnected_ready, reconnected_ready.track(TrackKind::Video).unwrap()),
        );
        golden("reconnected.mpd", &dash_manifest(&reconnected_ready, now, "http://h/time"));
        let reconnected_live = reconnected(VideoStatus::Recording);
        golden("reconnected-event.mpd", &dash_manifest(&reconnected_live, now, "http://h/time"));
    }

    #[test]
    fn playlists_follow_the_recording() {
        let live = recording(VideoStatus::Recording);
        let text = media_playlist(&live, live.track(TrackKind::Video).unwrap());
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{text}");
        assert!(!text.contains("#EXT-X-ENDLIST"), "a recording has no end yet");
        let ready = recording(VideoStatus::Ready);
        let text = media_playlist(&ready, ready.track(TrackKind::Video).unwrap());
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
        assert!(text.contains("#EXT-X-TARGETDURATION:2\n"), "the longest segment, rounded up: {text}");
        // One map and one program date-time per run of an init version.
        let reconnected = reconnected(VideoStatus::Ready);
        let text = media_playlist(&reconnected, reconnected.track(TrackKind::Video).unwrap());
        assert_eq!(text.matches("#EXT-X-MAP").count(), 2, "{text}");
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
        assert_eq!(text.matches("#EXT-X-PROGRAM-DATE-TIME").count(), 2, "{text}");
    }

    #[test]
    fn mpd_timelines_repeat_equal_segments_and_split_periods_by_init_version() {
        let now = UNIX_EPOCH + Duration::from_millis(START_MS as u64 + 8_000);
        let ready = recording(VideoStatus::Ready);
        let mpd = dash_manifest(&ready, now, "http://h/time");
        assert!(mpd.contains("<S t=\"0\" d=\"180000\" r=\"2\"/>"), "three equal segments in one S: {mpd}");
        assert!(mpd.contains("type=\"static\" mediaPresentationDuration=\"PT7.509S\""), "{mpd}");
        assert!(mpd.contains("<Title>Launch &lt;day&gt; &amp; &quot;Q&amp;A&quot;</Title>"), "{mpd}");
        assert!(!mpd.contains("UTCTiming"), "a static MPD needs no clock");
        let reconnected = reconnected(VideoStatus::Recording);
        let mpd = dash_manifest(&reconnected, now, "http://h/time");
        assert_eq!(mpd.matches("<Period ").count(), 2, "{mpd}");
        assert!(mpd.contains("<Period id=\"1\" start=\"PT4.000S\">"), "the open period has no duration: {mpd}");
        assert!(mpd.contains("initialization=\"video/init-1.mp4\" media=\"video/$Number$.m4s\" startNumber=\"2\""));
        assert!(mpd.contains("presentationTimeOffset=\"450000\""), "the period starts at its first segment: {mpd}");
    }

    #[test]
    fn an_index_without_segments_is_not_playable() {
        let mut empty = recording(VideoStatus::Recording);
        for track in &mut empty.tracks {
            track.segments.clear();
        }
        assert!(!empty.is_playable());
        assert!(empty.track(TrackKind::Video).is_none());
        assert_eq!(empty.tracks[0].peak_bitrate(), 0);
        assert_eq!(empty.tracks[0].average_bitrate(), 0);
        let ready = recording(VideoStatus::Ready);
        let video = ready.track(TrackKind::Video).unwrap();
        assert_eq!((video.peak_bitrate(), video.average_bitrate()), (1_000_000, 1_000_000));
        assert!(video.has_init(0) && !video.has_init(1));
        assert_eq!(video.segment(3).map(|s| s.duration_ticks), Some(135_000));
        assert!(video.segment(4).is_none());
    }
}
