//! LL-HLS (RFC 8216bis): the multivariant and media playlists of a packaged stream, and the
//! delivery directives of §6.2.5 — blocking playlist reload (`_HLS_msn`, `_HLS_part`) and
//! delta updates (`_HLS_skip`). Pure functions of the packager's state; the HTTP layer waits
//! on the stream's version counter while [`readiness`] says [`Readiness::Wait`], and likewise
//! for parts and segments not yet written ([`find_part`], [`find_segment`]: wait, serve or 404).

use crate::packager::{LiveState, PackagerConfig, Segment, TrackTimeline};
use bytes::Bytes;
use rill_media::cmaf::TrackKind;
use rill_media::manifest::{hls_multivariant, HlsTrack, TrackDescription};
use rill_media::wallclock::iso8601;
use std::fmt::Write as _;
use std::time::Duration;

/// Delivery directives of a media playlist request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    pub msn: Option<u64>,
    pub part: Option<u32>,
    pub skip: Skip,
}

/// `_HLS_skip`: a delta update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Skip {
    #[default]
    No,
    /// `YES`: skip old segments.
    Segments,
    /// `v2`: also skip date ranges (there are none).
    SegmentsAndDateRanges,
}

/// A request the server answers with 400.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    #[error("_HLS_part requires _HLS_msn")]
    PartWithoutMsn,
    #[error("invalid value for {0}")]
    Invalid(&'static str),
    #[error("_HLS_msn/_HLS_part is too far ahead of the playlist")]
    TooFarAhead,
}

/// Parses the query string of a media playlist request. Unknown parameters are ignored
/// (players add cache busters); the delivery directives must be well-formed.
pub fn parse_directives(query: &str) -> Result<Directives, DirectiveError> {
    let mut d = Directives::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "_HLS_msn" => d.msn = Some(value.parse().map_err(|_| DirectiveError::Invalid("_HLS_msn"))?),
            "_HLS_part" => d.part = Some(value.parse().map_err(|_| DirectiveError::Invalid("_HLS_part"))?),
            "_HLS_skip" => {
                d.skip = match value {
                    "YES" => Skip::Segments,
                    "v2" => Skip::SegmentsAndDateRanges,
                    _ => return Err(DirectiveError::Invalid("_HLS_skip")),
                }
            }
            _ => {}
        }
    }
    if d.part.is_some() && d.msn.is_none() {
        return Err(DirectiveError::PartWithoutMsn);
    }
    Ok(d)
}

/// Whether a blocking request can be answered now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Wait,
}

/// RFC 8216bis §6.2.5.2: a request for `_HLS_msn=M` is ready once segment M is complete;
/// with `_HLS_part=N`, once part N of segment M or any later part exists (so a part index
/// past the end of segment M is satisfied by segment M+1's part 0). Requests more than two
/// segments, or more than the Advance Part Limit of parts, ahead are errors.
pub fn readiness(
    track: &TrackTimeline,
    d: &Directives,
    ended: bool,
    config: &PackagerConfig,
) -> Result<Readiness, DirectiveError> {
    let Some(msn) = d.msn else { return Ok(Readiness::Ready) };
    let ready = match d.part {
        Some(part) => track.last_part().is_some_and(|last| last >= (msn, part)),
        None => track.last_complete_msn().is_some_and(|last| last >= msn),
    };
    if ready || ended {
        return Ok(Readiness::Ready);
    }
    // In u64: an `_HLS_msn` of 2⁶³ or more would be negative as an i64 (and pass this check).
    if msn > track.last_complete_msn().map_or(1, |m| m.saturating_add(2)) {
        return Err(DirectiveError::TooFarAhead);
    }
    if let Some(part) = d.part {
        let (last_msn, last_part) = track.last_part().map_or((0, -1), |(m, p)| (m, p as i64));
        let parts_per_segment = parts_per_segment(config) as i64;
        let ahead = (msn as i64 - last_msn as i64) * parts_per_segment + part as i64 - last_part;
        if ahead > advance_part_limit(config) as i64 {
            return Err(DirectiveError::TooFarAhead);
        }
    }
    Ok(Readiness::Wait)
}

/// What a request for a part or a segment gets from the packager's state now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    /// Serve this.
    Found(T),
    /// It will never exist (gone from the window, too far ahead, or the stream ended): 404.
    Missing,
    /// Not yet: wait for the stream to change and ask again.
    Wait,
}

impl<T> Lookup<T> {
    /// `None` while waiting; the answer otherwise (for [`crate::packager::LiveStream::wait_for`]).
    pub fn decided(self) -> Option<Option<T>> {
        match self {
            Lookup::Found(t) => Some(Some(t)),
            Lookup::Missing => Some(None),
            Lookup::Wait => None,
        }
    }
}

/// Part `index` of segment `msn` of track `kind` (§6.2.5.2 preload hints): an existing part is
/// found at once; a part not yet written is awaited while it is at most the Advance Part Limit
/// ahead and its segment is still open; anything else will never exist.
pub fn find_part(state: &LiveState, kind: TrackKind, msn: u64, index: u32, config: &PackagerConfig) -> Lookup<Bytes> {
    let Some(track) = state.track(kind) else { return Lookup::Wait };
    if let Some(segment) = track.segment(msn) {
        if let Some(part) = segment.part(index) {
            return Lookup::Found(part.bytes.clone());
        }
        if segment.complete || state.ended || segment.next_part_index() > index {
            return Lookup::Missing;
        }
        let limit = advance_part_limit(config) as u64;
        return if index as u64 > segment.next_part_index() as u64 + limit { Lookup::Missing } else { Lookup::Wait };
    }
    let (next_msn, _) = track.next_part();
    if msn < track.segments.front().map_or(0, |s| s.msn) || msn > next_msn + 1 || state.ended {
        return Lookup::Missing;
    }
    Lookup::Wait
}

/// Segment `msn` of track `kind`: `Found(Some(size))` when complete, `Found(None)` while it is
/// being written (it is then streamed part by part); the segment the next part will start
/// (once the previous one is complete) is awaited.
pub fn find_segment(state: &LiveState, kind: TrackKind, msn: u64) -> Lookup<Option<usize>> {
    let Some(track) = state.track(kind) else { return Lookup::Wait };
    if let Some(segment) = track.segment(msn) {
        return Lookup::Found(segment.complete.then_some(segment.size));
    }
    let (next_msn, _) = track.next_part();
    if msn < track.segments.front().map_or(0, |s| s.msn) || msn > next_msn || state.ended {
        return Lookup::Missing;
    }
    Lookup::Wait
}

/// Part `index` of segment `msn` while streaming that segment: `Found(None)` once the segment
/// is complete (or gone, or the stream ended before it) and every part has been sent.
pub fn next_segment_piece(state: &LiveState, kind: TrackKind, msn: u64, index: usize) -> Lookup<Option<Bytes>> {
    let Some(segment) = state.track(kind).and_then(|t| t.segment(msn)) else {
        return Lookup::Found(None);
    };
    match segment.parts.get(index) {
        Some(part) => Lookup::Found(Some(part.bytes.clone())),
        None if segment.complete || state.ended => Lookup::Found(None),
        None => Lookup::Wait,
    }
}

/// Three divided by the part target when that is under a second, else three (§6.2.5.2).
pub fn advance_part_limit(config: &PackagerConfig) -> u32 {
    let part = config.part_target().as_secs_f64();
    if part < 1.0 {
        (3.0 / part).floor() as u32
    } else {
        3
    }
}

fn parts_per_segment(config: &PackagerConfig) -> u32 {
    (config.segment_target().as_secs_f64() / config.part_target().as_secs_f64()).ceil().max(1.0) as u32
}

/// How long a blocking request may wait before 503: three target durations.
pub fn block_timeout(state: &LiveState, config: &PackagerConfig) -> Duration {
    Duration::from_secs(3 * target_duration(state, config))
}

/// `EXT-X-TARGETDURATION`: the configured segment target, or the longest segment kept
/// (rounded to the nearest second, as the spec compares).
pub fn target_duration(state: &LiveState, config: &PackagerConfig) -> u64 {
    let longest = state
        .tracks
        .iter()
        .flat_map(|t| t.segments.iter().map(move |s| s.duration_secs(t.track.timescale)))
        .fold(0.0f64, f64::max);
    (config.segment_target().as_secs_f64().round() as u64).max(longest.round() as u64).max(1)
}

/// The media playlist URI of a track, relative to the stream's directory.
pub fn media_playlist_uri(kind: TrackKind) -> String {
    format!("{}/media.m3u8", kind.as_str())
}

/// A rendition of a stream, listed beside its source: the directory its files are under
/// (`<rendition>/`, relative to the source's) and its packaged state.
pub type RenditionView<'a> = (&'a str, &'a LiveState);

/// The multivariant playlist: the source's video, then each rendition's (highest first), all
/// sharing the source's audio group.
pub fn multivariant(state: &LiveState, renditions: &[RenditionView<'_>]) -> String {
    let describe = |track: &TrackTimeline, uri: String| {
        let mut description = TrackDescription::new(track.kind(), &track.track.codec, track.track.timescale);
        if description.width.is_some() {
            description.frame_rate = description.frame_rate.or_else(|| measured_fps(track));
        }
        (description, track.peak_bitrate(), track.average_bitrate(), uri)
    };
    let videos: Vec<_> = state
        .track(TrackKind::Video)
        .map(|t| describe(t, media_playlist_uri(TrackKind::Video)))
        .into_iter()
        .chain(renditions.iter().filter_map(|(name, st)| {
            st.track(TrackKind::Video).map(|t| describe(t, format!("{name}/{}", media_playlist_uri(TrackKind::Video))))
        }))
        .collect();
    let audio = state.track(TrackKind::Audio).map(|t| describe(t, media_playlist_uri(TrackKind::Audio)));
    fn hls_track(
        (description, peak_bitrate, average_bitrate, uri): &(TrackDescription, u64, u64, String),
    ) -> HlsTrack<'_> {
        HlsTrack { description, peak_bitrate: *peak_bitrate, average_bitrate: *average_bitrate, uri }
    }
    let videos: Vec<HlsTrack<'_>> = videos.iter().map(hls_track).collect();
    hls_multivariant(&videos, audio.as_ref().map(hls_track), 9)
}

/// An `EXT-X-RENDITION-REPORT` line for `track`, whose media playlist is at `uri` (relative
/// to the reporting playlist); `None` before it has a part.
pub fn rendition_report(uri: &str, track: &TrackTimeline) -> Option<String> {
    let (msn, part) = track.last_part()?;
    Some(format!("#EXT-X-RENDITION-REPORT:URI=\"{uri}\",LAST-MSN={msn},LAST-PART={part}\n"))
}

/// Frames per second from the samples of the segments kept (when the SPS has no timing info).
fn measured_fps(track: &TrackTimeline) -> Option<f64> {
    let segment = track.segments.iter().rev().find(|s| s.complete)?;
    let samples: u32 = segment.parts.iter().map(|p| p.samples).sum();
    let secs = segment.duration_secs(track.track.timescale);
    (secs > 0.0 && samples > 0).then(|| samples as f64 / secs)
}

/// `PART-TARGET` of a track: the configured part duration; audio parts are cut at the video's
/// part boundaries and may run over by up to one audio frame.
pub fn part_target(track: &TrackTimeline, config: &PackagerConfig) -> f64 {
    let overshoot = match &track.track.codec {
        rill_media::CodecConfig::Aac(c) => 1024.0 / c.info.sample_rate.max(1) as f64,
        rill_media::CodecConfig::Opus { .. } => 0.020,
        _ => 0.0,
    };
    ((config.part_target().as_secs_f64() + overshoot) * 1000.0).ceil() / 1000.0
}

/// The media playlist of `track`.
pub fn media_playlist(state: &LiveState, track: &TrackTimeline, config: &PackagerConfig, skip: Skip) -> String {
    let target = target_duration(state, config);
    let part_target = part_target(track, config);
    let skip_until = 6.0 * target as f64;
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{target}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={skip_until:.1},PART-HOLD-BACK={:.3},HOLD-BACK={:.1}\n\
         #EXT-X-PART-INF:PART-TARGET={part_target:.3}\n",
        3.0 * part_target,
        3.0 * target as f64,
    );
    // The window of complete segments, and the growing one (older kept segments stay downloadable).
    let listed = track.segments.len().saturating_sub(config.window_segments + 1);
    let segments: Vec<&Segment> = track.segments.iter().skip(listed).collect();
    let first_msn = segments.first().map_or(0, |s| s.msn);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
    let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", track.discontinuity_sequence);
    let ts = track.track.timescale;
    // Playlist end, and each segment's end, in seconds from the first segment's start.
    let total: f64 = segments.iter().map(|s| s.duration_secs(ts)).sum();
    let mut skipped = 0;
    if skip != Skip::No {
        let mut elapsed = 0.0;
        for s in &segments {
            elapsed += s.duration_secs(ts);
            if s.complete && total - elapsed >= skip_until && !s.discontinuity {
                skipped += 1;
            } else {
                break;
            }
        }
    }
    let mut map_version = None;
    if skipped > 0 {
        let _ = write!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        if skip == Skip::SegmentsAndDateRanges {
            out.push_str(",RECENTLY-REMOVED-DATERANGES=\"\"");
        }
        out.push('\n');
    }
    let parts_from = total - 3.0 * target as f64;
    let mut start = 0.0;
    for s in &segments {
        start += s.duration_secs(ts);
        if skipped > 0 && s.msn < first_msn + skipped {
            continue;
        }
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if map_version != Some(s.init_version) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}-init-{}.mp4\"", state.epoch, s.init_version);
            map_version = Some(s.init_version);
        }
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(s.wall_clock));
        if start > parts_from || !s.complete {
            for p in &s.parts {
                let duration = p.duration as f64 / ts as f64;
                let _ =
                    write!(out, "#EXT-X-PART:DURATION={duration:.5},URI=\"{}-{}.{}.m4s\"", state.epoch, s.msn, p.index);
                if p.independent {
                    out.push_str(",INDEPENDENT=YES");
                }
                out.push('\n');
            }
        }
        if s.complete {
            let _ = writeln!(out, "#EXTINF:{:.5},\n{}-{}.m4s", s.duration_secs(ts), state.epoch, s.msn);
        }
    }
    if state.ended {
        out.push_str("#EXT-X-ENDLIST\n");
        return out;
    }
    let (hint_msn, hint_part) = track.next_part();
    let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}-{hint_msn}.{hint_part}.m4s\"", state.epoch);
    for other in state.tracks.iter().filter(|t| t.kind() != track.kind()) {
        if let Some(line) = rendition_report(&format!("../{}", media_playlist_uri(other.kind())), other) {
            out.push_str(&line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden;
    use crate::packager::fixtures::state;

    fn config() -> PackagerConfig {
        PackagerConfig::default()
    }

    fn d(query: &str) -> Directives {
        parse_directives(query).unwrap()
    }

    #[test]
    fn golden_playlists() {
        // 5.1 s: segments 0 and 1 complete, segment 2 growing (with parts), hint at 2.x.
        let st = state(5100, &config(), false);
        golden("multivariant.m3u8", &multivariant(&st, &[]));
        golden("video.m3u8", &media_playlist(&st, st.track(TrackKind::Video).unwrap(), &config(), Skip::No));
        golden("audio.m3u8", &media_playlist(&st, st.track(TrackKind::Audio).unwrap(), &config(), Skip::No));
        let ended = state(5100, &config(), true);
        golden(
            "video-ended.m3u8",
            &media_playlist(&ended, ended.track(TrackKind::Video).unwrap(), &config(), Skip::No),
        );
    }

    #[test]
    fn renditions_share_the_source_audio_group() {
        let st = state(5100, &config(), false);
        let rendition = state(5100, &config(), false);
        let text = multivariant(&st, &[("360p", &rendition)]);
        assert_eq!(text.matches("#EXT-X-STREAM-INF").count(), 2, "{text}");
        assert_eq!(text.matches("#EXT-X-MEDIA:TYPE=AUDIO").count(), 1);
        assert_eq!(text.matches(",AUDIO=\"audio\"").count(), 2);
        let uris: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(uris, ["video/media.m3u8", "360p/video/media.m3u8"]);
        let report = rendition_report("../360p/video/media.m3u8", rendition.track(TrackKind::Video).unwrap()).unwrap();
        assert!(report.starts_with("#EXT-X-RENDITION-REPORT:URI=\"../360p/video/media.m3u8\",LAST-MSN=2,LAST-PART="));
    }

    #[test]
    fn hevc_and_av1_variants_have_a_resolution() {
        use crate::packager::fixtures::state_with_video;
        use rill_media::testing::{av1_640x360, hevc_426x240};
        for (video, codecs, resolution) in [
            (hevc_426x240(), "CODECS=\"hvc1.1.6.L60.90,mp4a.40.2\"", "RESOLUTION=426x240"),
            (av1_640x360(), "CODECS=\"av01.0.01M.08,mp4a.40.2\"", "RESOLUTION=640x360"),
        ] {
            let text = multivariant(&state_with_video(video, 5100, &config()), &[]);
            let variant = text.lines().find(|l| l.starts_with("#EXT-X-STREAM-INF")).unwrap();
            assert!(variant.contains(codecs) && variant.contains(resolution), "{text}");
            assert!(variant.contains(",FRAME-RATE=30.000"), "measured, as for H.264 without VUI timing: {variant}");
        }
    }

    #[test]
    fn directives_parse_and_reject() {
        assert_eq!(d(""), Directives::default());
        assert_eq!(d("_HLS_msn=5&_HLS_part=2&x=1"), Directives { msn: Some(5), part: Some(2), skip: Skip::No });
        assert_eq!(d("_HLS_skip=YES").skip, Skip::Segments);
        assert_eq!(d("_HLS_skip=v2").skip, Skip::SegmentsAndDateRanges);
        assert_eq!(parse_directives("_HLS_part=1"), Err(DirectiveError::PartWithoutMsn));
        assert_eq!(parse_directives("_HLS_msn=-1"), Err(DirectiveError::Invalid("_HLS_msn")));
        assert_eq!(parse_directives("_HLS_msn=1&_HLS_part=x"), Err(DirectiveError::Invalid("_HLS_part")));
        assert_eq!(parse_directives("_HLS_skip=no"), Err(DirectiveError::Invalid("_HLS_skip")));
    }

    #[test]
    fn blocking_reload_rules() {
        let c = config();
        let st = state(5100, &c, false); // complete: 0, 1; growing: 2 with parts 0..=4 (5.0 s)
        let video = st.track(TrackKind::Video).unwrap();
        assert_eq!(video.last_complete_msn(), Some(1));
        let (last_msn, last_part) = video.last_part().unwrap();
        assert_eq!(last_msn, 2);
        let ready = |q: &str| readiness(video, &d(q), false, &c);
        // No directive, or a segment/part that exists: answer now.
        assert_eq!(ready(""), Ok(Readiness::Ready));
        assert_eq!(ready("_HLS_msn=1"), Ok(Readiness::Ready));
        assert_eq!(ready(&format!("_HLS_msn=2&_HLS_part={last_part}")), Ok(Readiness::Ready));
        // Segment 2 is not complete yet: hold; so is the next part.
        assert_eq!(ready("_HLS_msn=2"), Ok(Readiness::Wait));
        assert_eq!(ready(&format!("_HLS_msn=2&_HLS_part={}", last_part + 1)), Ok(Readiness::Wait));
        // A part index past the end of segment 1 is satisfied by segment 2's part 0.
        assert_eq!(ready("_HLS_msn=1&_HLS_part=40"), Ok(Readiness::Ready));
        // Two segments past the last complete one is allowed; three is not.
        assert_eq!(ready("_HLS_msn=3"), Ok(Readiness::Wait));
        assert_eq!(ready("_HLS_msn=4"), Err(DirectiveError::TooFarAhead));
        // Parts beyond the Advance Part Limit (3 / 0.2 s = 15 parts) are refused.
        assert_eq!(advance_part_limit(&c), 15);
        assert_eq!(ready(&format!("_HLS_msn=2&_HLS_part={}", last_part + 15)), Ok(Readiness::Wait));
        assert_eq!(ready(&format!("_HLS_msn=2&_HLS_part={}", last_part + 16)), Err(DirectiveError::TooFarAhead));
        assert_eq!(ready("_HLS_msn=3&_HLS_part=12"), Err(DirectiveError::TooFarAhead));
        // An ended stream answers everything at once.
        assert_eq!(readiness(video, &d("_HLS_msn=3"), true, &c), Ok(Readiness::Ready));
        // Three target durations before a 503.
        assert_eq!(block_timeout(&st, &c), Duration::from_secs(6));
    }

    #[test]
    fn part_and_segment_lookups() {
        let c = config();
        let st = state(5100, &c, false); // complete: 0, 1; growing: 2 with parts 0..=4
        let video = TrackKind::Video;
        let (_, last_part) = st.track(video).unwrap().last_part().unwrap();
        // Parts: written ones at once; the next ones (up to the Advance Part Limit) wait.
        assert!(matches!(find_part(&st, video, 2, last_part, &c), Lookup::Found(_)));
        assert!(matches!(find_part(&st, video, 0, 0, &c), Lookup::Found(_)));
        assert_eq!(find_part(&st, video, 2, last_part + 1, &c), Lookup::Wait);
        assert_eq!(find_part(&st, video, 2, last_part + 16, &c), Lookup::Wait);
        assert_eq!(find_part(&st, video, 2, last_part + 17, &c), Lookup::Missing);
        assert_eq!(find_part(&st, video, 3, 0, &c), Lookup::Wait, "the preload hint of the next segment");
        assert_eq!(find_part(&st, video, 4, 0, &c), Lookup::Missing);
        assert_eq!(find_part(&st, video, 1, 40, &c), Lookup::Missing, "segment 1 is complete");
        // Segments: complete ones with their size, the growing one streamed.
        assert!(matches!(find_segment(&st, video, 1), Lookup::Found(Some(size)) if size > 0));
        assert_eq!(find_segment(&st, video, 2), Lookup::Found(None));
        assert_eq!(find_segment(&st, video, 3), Lookup::Missing, "not the segment of the next part");
        assert!(matches!(next_segment_piece(&st, video, 2, 0), Lookup::Found(Some(_))));
        assert_eq!(next_segment_piece(&st, video, 2, last_part as usize + 1), Lookup::Wait);
        assert_eq!(next_segment_piece(&st, video, 1, 1000), Lookup::Found(None));
        // An ended stream waits for nothing.
        let ended = state(5100, &c, true);
        assert_eq!(find_part(&ended, video, 3, 0, &c), Lookup::Missing);
        assert_eq!(find_segment(&ended, video, 3), Lookup::Missing);
        assert_eq!(next_segment_piece(&ended, video, 2, 1000), Lookup::Found(None));
        // A track that has not appeared yet is waited for.
        let empty = LiveState::default();
        assert_eq!(find_segment(&empty, video, 0), Lookup::Wait);
        assert_eq!(find_part(&empty, video, 0, 0, &c), Lookup::Wait);
    }

    #[test]
    fn delta_updates_skip_old_segments() {
        let c = config();
        let st = state(30_300, &c, false); // 15 complete segments and a growing one; a window of 12
        let video = st.track(TrackKind::Video).unwrap();
        let full = media_playlist(&st, video, &c, Skip::No);
        let delta = media_playlist(&st, video, &c, Skip::Segments);
        assert!(full.contains("CAN-SKIP-UNTIL=12.0"));
        assert!(!full.contains("EXT-X-SKIP"));
        // 12 listed complete segments + the growing one (24.1 s); those ending ≥ 12 s before
        // the end are skipped.
        let first = full.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap();
        assert_eq!(first, delta.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap());
        let skipped: usize =
            delta.lines().find_map(|l| l.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS=")).unwrap().parse().unwrap();
        assert_eq!(skipped, 6);
        assert_eq!(full.matches("#EXTINF").count(), delta.matches("#EXTINF").count() + skipped);
        assert!(delta.contains("#EXT-X-MAP"));
        let v2 = media_playlist(&st, video, &c, Skip::SegmentsAndDateRanges);
        assert!(v2.contains("RECENTLY-REMOVED-DATERANGES=\"\""));
        // Memory stays bounded: the window, one more, and the growing segment.
        assert_eq!(video.segments.len(), c.window_segments + 2);
    }

    #[test]
    fn parts_are_listed_only_near_the_live_edge() {
        let c = config();
        let st = state(30_300, &c, false);
        let video = media_playlist(&st, st.track(TrackKind::Video).unwrap(), &c, Skip::No);
        // Parts of the last 3 target durations (6 s) only.
        let with_parts: std::collections::BTreeSet<&str> = video
            .lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
            .filter_map(|l| l.split("URI=\"7-").nth(1)?.split('.').next())
            .collect();
        assert_eq!(with_parts.into_iter().collect::<Vec<_>>(), vec!["12", "13", "14", "15"]);
        assert!(video.contains("#EXT-X-RENDITION-REPORT:URI=\"../audio/media.m3u8\",LAST-MSN=15,LAST-PART="));
        assert!(video.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"7-15."));
    }
}
