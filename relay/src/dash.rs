//! DASH / LL-DASH: the dynamic MPD of a packaged stream. One adaptation set per track, a
//! `SegmentTemplate` with `$Number$` (= the HLS media sequence number, so both protocols
//! fetch the same CMAF segments) and a `SegmentTimeline`, whose last entry is the segment
//! being written, announced with an estimated duration. `availabilityTimeOffset` lets a
//! low-latency client fetch that segment as soon as its first part exists; the server sends
//! it with chunked transfer encoding as parts arrive.

use crate::hls::RenditionView;
use crate::packager::{LiveState, PackagerConfig, TrackTimeline};
use rill_media::cmaf::TrackKind;
use rill_media::manifest::{dash_content_type, dash_representation, dash_utc_timing, xml_escape, TrackDescription};
use rill_media::wallclock::iso8601;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The latency a DASH player should aim for.
pub const TARGET_LATENCY: Duration = Duration::from_millis(1500);

/// The MPD. `time_url` is the absolute URL of the UTCTiming endpoint. The video adaptation set
/// has one representation per rendition (the source first), each with its own
/// `SegmentTemplate` (renditions are packaged as streams of their own, numbered separately,
/// on the source's timeline).
pub fn manifest(
    state: &LiveState,
    renditions: &[RenditionView<'_>],
    config: &PackagerConfig,
    now: SystemTime,
    time_url: &str,
) -> String {
    let ast = state.availability_start.unwrap_or(UNIX_EPOCH);
    let max_segment = crate::hls::target_duration(state, config);
    let window = config.window_segments as u64 * config.segment_target().as_secs().max(1);
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" \
         type=\"{}\" availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"PT1S\" timeShiftBufferDepth=\"PT{window}S\" \
         maxSegmentDuration=\"PT{max_segment}S\" minBufferTime=\"PT1S\">\n",
        if state.ended { "static" } else { "dynamic" },
        iso8601(ast),
        iso8601(now),
    );
    if state.ended {
        let duration: f64 =
            state.tracks.first().map_or(0.0, |t| t.segments.iter().map(|s| s.duration_secs(t.track.timescale)).sum());
        out.truncate(out.len() - 2);
        let _ = writeln!(out, " mediaPresentationDuration=\"PT{duration:.3}S\">");
    }
    let _ = writeln!(
        out,
        "  <ServiceDescription id=\"0\">\n    <Latency referenceId=\"0\" target=\"{}\" min=\"{}\" max=\"{}\"/>\n    <PlaybackRate min=\"0.96\" max=\"1.04\"/>\n  </ServiceDescription>",
        TARGET_LATENCY.as_millis(),
        TARGET_LATENCY.as_millis() * 2 / 3,
        TARGET_LATENCY.as_millis() * 2,
    );
    out.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    for (id, track) in state.tracks.iter().enumerate() {
        let content = dash_content_type(track.kind()).0;
        let mut members = vec![Member { id: content.to_string(), dir: String::new(), state, track }];
        if track.kind() == TrackKind::Video {
            members.extend(renditions.iter().filter_map(|(name, st)| {
                let track = st.track(TrackKind::Video)?;
                Some(Member { id: name.to_string(), dir: format!("{name}/"), state: st, track })
            }));
        }
        adaptation_set(&mut out, id, &members, state, config, now, time_url);
    }
    out.push_str("  </Period>\n");
    dash_utc_timing(&mut out, time_url);
    out.push_str("</MPD>\n");
    out
}

/// One representation of an adaptation set: a track of the source or of a rendition.
struct Member<'a> {
    /// Representation id.
    id: String,
    /// Directory of its files relative to the source's (`""` or `<rendition>/`).
    dir: String,
    state: &'a LiveState,
    track: &'a TrackTimeline,
}

fn adaptation_set(
    out: &mut String,
    id: usize,
    members: &[Member<'_>],
    state: &LiveState,
    config: &PackagerConfig,
    now: SystemTime,
    time_url: &str,
) {
    let kind = members[0].track.kind();
    let (content, mime) = dash_content_type(kind);
    if members[0].track.segments.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\"{}>",
        if kind == TrackKind::Audio { " lang=\"und\"" } else { "" }
    );
    if id == 0 {
        let ast = state.availability_start.unwrap_or(UNIX_EPOCH);
        let _ = writeln!(
            out,
            "      <ProducerReferenceTime id=\"0\" type=\"encoder\" wallClockTime=\"{}\" presentationTime=\"0\">\n        <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{}\"/>\n      </ProducerReferenceTime>",
            iso8601(ast),
            xml_escape(time_url)
        );
    }
    for member in members {
        let Some(template) = segment_template(member, content, config, now) else { continue };
        let track = member.track;
        let description = TrackDescription::new(kind, &track.track.codec, track.track.timescale);
        dash_representation(out, &member.id, &description, track.peak_bitrate(), &template);
    }
    out.push_str("    </AdaptationSet>\n");
}

/// The `SegmentTemplate` of one representation (inside its `Representation` element).
fn segment_template(member: &Member<'_>, content: &str, config: &PackagerConfig, now: SystemTime) -> Option<String> {
    let Member { dir, state, track, .. } = member;
    let ts = track.track.timescale as u64;
    let first = track.segments.get(track.segments.len().saturating_sub(config.window_segments + 1))?;
    let ato = (config.segment_target() - config.part_target()).as_secs_f64();
    let mut out = String::with_capacity(1024);
    let _ = write!(
        out,
        "        <SegmentTemplate timescale=\"{ts}\" initialization=\"{dir}{content}/{epoch}-init-{}.mp4\" media=\"{dir}{content}/{epoch}-$Number$.m4s\" startNumber=\"{}\"",
        track.init_version,
        first.msn,
        epoch = state.epoch
    );
    if !state.ended {
        let _ = write!(out, " availabilityTimeOffset=\"{ato:.3}\" availabilityTimeComplete=\"false\"");
    }
    out.push_str(">\n          <SegmentTimeline>\n");
    for segment in track.segments.iter().skip_while(|s| s.msn < first.msn) {
        let duration = if segment.complete {
            segment.duration
        } else {
            // The segment being written: at least the target, and always past what exists.
            let written = segment.duration + (config.part_target().as_secs_f64() * ts as f64) as u64;
            let elapsed =
                now.duration_since(segment.wall_clock).map(|d| (d.as_secs_f64() * ts as f64) as u64).unwrap_or(0);
            let target = (config.segment_target().as_secs_f64() * ts as f64) as u64;
            target.max(written).max(elapsed)
        };
        let _ = writeln!(out, "            <S t=\"{}\" d=\"{duration}\"/>", segment.decode_time);
    }
    out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden;
    use crate::packager::fixtures::{state, state_with_video};
    use rill_media::testing::{av1_640x360, hevc_426x240};

    #[test]
    fn hevc_and_av1_representations_have_width_and_height() {
        let config = PackagerConfig::default();
        for (video, size) in
            [(hevc_426x240(), "width=\"426\" height=\"240\""), (av1_640x360(), "width=\"640\" height=\"360\"")]
        {
            let codecs = video.rfc6381().unwrap();
            let st = state_with_video(video, 5100, &config);
            let now = st.availability_start.unwrap() + Duration::from_millis(5100);
            let mpd = manifest(&st, &[], &config, now, "http://h/time");
            let representation = mpd.lines().find(|l| l.contains(&format!("codecs=\"{codecs}\""))).unwrap();
            assert!(representation.contains(size), "{mpd}");
        }
    }

    /// The MPDs of the LL-HLS golden playlists' stream (5.1 s: segments 0 and 1 complete,
    /// segment 2 growing), asked for 5.1 s after its start: live, live with a rendition, ended.
    #[test]
    fn golden_mpds() {
        let config = PackagerConfig::default();
        let st = state(5100, &config, false);
        let now = st.availability_start.unwrap() + Duration::from_millis(5100);
        golden("live.mpd", &manifest(&st, &[], &config, now, "http://h/time"));
        let rendition = state(5100, &config, false);
        golden("live-renditions.mpd", &manifest(&st, &[("360p", &rendition)], &config, now, "http://h/time?a=1&b=2"));
        let ended = state(5100, &config, true);
        golden("ended.mpd", &manifest(&ended, &[], &config, now, "http://h/time"));
    }

    #[test]
    fn the_growing_segment_is_announced_at_least_as_long_as_the_target_and_what_exists() {
        let config = PackagerConfig::default();
        let st = state(5100, &config, false);
        let start = st.availability_start.unwrap();
        let last_d = |now: SystemTime| {
            let mpd = manifest(&st, &[], &config, now, "http://h/time");
            let video = &mpd[mpd.find("contentType=\"video\"").unwrap()..];
            let timeline = &video[..video.find("</SegmentTimeline>").unwrap()];
            let s = timeline.lines().rfind(|l| l.contains("<S ")).unwrap().to_string();
            s[s.find("d=\"").unwrap() + 3..].split('"').next().unwrap().parse::<u64>().unwrap()
        };
        // Segment 2 started at 4 s with 1.1 s written: the 2 s target (in a 90 kHz timeline).
        let ts = st.track(TrackKind::Video).unwrap().track.timescale as u64;
        assert_eq!(last_d(start + Duration::from_millis(5100)), 2 * ts);
        // Asked late (the next part overdue): at least the time elapsed since it started.
        assert_eq!(last_d(start + Duration::from_millis(7000)), 3 * ts);
    }

    #[test]
    fn renditions_are_representations_of_the_video_set() {
        let config = PackagerConfig::default();
        let st = state(5100, &config, false);
        let rendition = state(5100, &config, false);
        let now = st.availability_start.unwrap() + Duration::from_millis(5100);
        let mpd = manifest(&st, &[("360p", &rendition)], &config, now, "http://h/time");
        assert_eq!(mpd.matches("<AdaptationSet").count(), 2, "{mpd}");
        assert_eq!(mpd.matches("<Representation").count(), 3);
        assert!(mpd.contains("<Representation id=\"360p\""));
        assert!(mpd.contains("media=\"360p/video/7-$Number$.m4s\""));
        assert!(mpd.contains("media=\"video/7-$Number$.m4s\""));
        assert!(mpd.contains("initialization=\"audio/7-init-1.mp4\""));
        assert_eq!(mpd.matches("<SegmentTemplate").count(), 3);
    }
}
