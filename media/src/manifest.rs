//! How a CMAF track is described to players, shared by the live packager (relay) and VOD
//! (vod): the codec facts a manifest needs ([`TrackDescription`]), the HLS multivariant playlist
//! of one variant with its audio group, and a DASH `Representation`.

use crate::cmaf::TrackKind;
use crate::track::CodecConfig;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// What players are told about a track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackDescription {
    pub kind: TrackKind,
    /// Short codec name, e.g. "h264".
    pub codec: String,
    /// RFC 6381 `codecs` value, where known.
    pub codecs: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    /// Ticks per second of the track's media time.
    pub timescale: u32,
}

impl TrackDescription {
    pub fn new(kind: TrackKind, codec: &CodecConfig, timescale: u32) -> TrackDescription {
        let (width, height) = codec.picture_size().unzip();
        let mut description = TrackDescription {
            kind,
            codec: codec.name().into(),
            codecs: codec.rfc6381(),
            width,
            height,
            frame_rate: None,
            sample_rate: None,
            channels: None,
            timescale,
        };
        match codec {
            CodecConfig::Avc(c) => description.frame_rate = c.sps.fps,
            CodecConfig::Aac(c) => {
                description.sample_rate = Some(c.info.sample_rate);
                description.channels = Some(c.info.channels);
            }
            CodecConfig::Opus { channels, .. } => {
                description.sample_rate = Some(48_000);
                description.channels = Some(*channels);
            }
            CodecConfig::Hevc { .. } | CodecConfig::Av1 { .. } | CodecConfig::Vp9 { .. } | CodecConfig::Vp8 { .. } => {}
        }
        description
    }
}

/// One track of an HLS variant: its description, bitrates (bit/s) and media playlist URI.
pub struct HlsTrack<'a> {
    pub description: &'a TrackDescription,
    pub peak_bitrate: u64,
    pub average_bitrate: u64,
    pub uri: &'a str,
}

/// One subtitles rendition (a WebVTT media playlist) of an HLS multivariant playlist.
pub struct HlsSubtitles<'a> {
    /// BCP 47 language tag.
    pub language: &'a str,
    /// A name for viewers.
    pub name: &'a str,
    pub uri: &'a str,
}

/// The `GROUP-ID` of the subtitles renditions.
const SUBTITLES_GROUP: &str = "subs";

/// The multivariant playlist: one variant per video rendition (the first is the source), all
/// sharing the audio as an `EXT-X-MEDIA` group; or audio alone. `version` is the
/// `EXT-X-VERSION` the media playlists need.
pub fn hls_multivariant(videos: &[HlsTrack<'_>], audio: Option<HlsTrack<'_>>, version: u8) -> String {
    hls_multivariant_with_subtitles(videos, audio, &[], version)
}

/// [`hls_multivariant`] with subtitles: each an `EXT-X-MEDIA:TYPE=SUBTITLES` of one group that
/// every video variant names (none is on by default; players list them).
pub fn hls_multivariant_with_subtitles(
    videos: &[HlsTrack<'_>],
    audio: Option<HlsTrack<'_>>,
    subtitles: &[HlsSubtitles<'_>],
    version: u8,
) -> String {
    let mut out = format!("#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let subtitles = if videos.is_empty() { &[][..] } else { subtitles };
    for subtitle in subtitles {
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{SUBTITLES_GROUP}\",NAME=\"{}\",LANGUAGE=\"{}\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"{}\"",
            quoted_string(subtitle.name),
            quoted_string(subtitle.language),
            subtitle.uri
        );
    }
    if let (false, Some(audio)) = (videos.is_empty(), &audio) {
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"main\",LANGUAGE=\"und\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"{}\"",
            audio.description.channels.unwrap_or(2),
            audio.uri
        );
    }
    if videos.is_empty() {
        if let Some(audio) = &audio {
            variant(&mut out, audio, None, false);
        }
    }
    for video in videos {
        variant(&mut out, video, audio.as_ref(), !subtitles.is_empty());
    }
    out
}

/// `s` as an HLS quoted-string: no double quote, CR or LF (RFC 8216 §4.2).
fn quoted_string(s: &str) -> String {
    s.chars().map(|c| if matches!(c, '"' | '\r' | '\n') { '\'' } else { c }).collect()
}

/// One `EXT-X-STREAM-INF` (with the audio group's codec and bitrate added to a video variant).
fn variant(out: &mut String, main: &HlsTrack<'_>, audio: Option<&HlsTrack<'_>>, subtitles: bool) {
    let codecs: Vec<&str> =
        [Some(main), audio].into_iter().flatten().filter_map(|t| t.description.codecs.as_deref()).collect();
    let audio_bits = audio.map_or(0, |a| a.peak_bitrate);
    let peak = (main.peak_bitrate + audio_bits).max(1);
    let average = (main.average_bitrate + audio_bits).max(1);
    let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average}");
    if !codecs.is_empty() {
        let _ = write!(out, ",CODECS=\"{}\"", codecs.join(","));
    }
    if let (Some(width), Some(height)) = (main.description.width, main.description.height) {
        let _ = write!(out, ",RESOLUTION={width}x{height}");
    }
    if let Some(fps) = main.description.frame_rate {
        let _ = write!(out, ",FRAME-RATE={fps:.3}");
    }
    if audio.is_some() {
        out.push_str(",AUDIO=\"audio\"");
    }
    if subtitles {
        let _ = write!(out, ",SUBTITLES=\"{SUBTITLES_GROUP}\"");
    }
    let _ = writeln!(out, "\n{}", main.uri);
}

/// A DASH text adaptation set of one side-loaded WebVTT file (`url`, relative to the MPD),
/// indented for a period.
pub fn dash_text_adaptation_set(out: &mut String, id: usize, language: &str, label: &str, url: &str) {
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"{}\">\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n      <Label>{}</Label>\n      <Representation id=\"captions-{}\" bandwidth=\"256\">\n        <BaseURL>{}</BaseURL>\n      </Representation>\n    </AdaptationSet>",
        xml_escape(language),
        xml_escape(label),
        xml_escape(language),
        xml_escape(url)
    );
}

/// `contentType` and `mimeType` of a DASH adaptation set of `kind`.
pub fn dash_content_type(kind: TrackKind) -> (&'static str, &'static str) {
    match kind {
        TrackKind::Video => ("video", "video/mp4"),
        TrackKind::Audio => ("audio", "audio/mp4"),
    }
}

/// A DASH `Representation` element (with its audio channel configuration, and `inner`: e.g. a
/// per-representation `SegmentTemplate`, already indented), indented for an adaptation set
/// inside a period.
pub fn dash_representation(out: &mut String, id: &str, description: &TrackDescription, bandwidth: u64, inner: &str) {
    let codecs = description.codecs.as_deref().unwrap_or(&description.codec);
    let _ = write!(out, "      <Representation id=\"{id}\" codecs=\"{codecs}\" bandwidth=\"{}\"", bandwidth.max(1));
    if let (Some(width), Some(height)) = (description.width, description.height) {
        let _ = write!(out, " width=\"{width}\" height=\"{height}\" sar=\"1:1\"");
    }
    if let Some(fps) = description.frame_rate {
        let _ = write!(out, " frameRate=\"{}\"", dash_frame_rate(fps));
    }
    if let Some(rate) = description.sample_rate {
        let _ = write!(out, " audioSamplingRate=\"{rate}\"");
    }
    if description.channels.is_none() && inner.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    if let Some(channels) = description.channels {
        let _ = writeln!(
            out,
            "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{channels}\"/>"
        );
    }
    out.push_str(inner);
    out.push_str("      </Representation>\n");
}

/// A frame rate as DASH writes it: an integer, or a fraction for NTSC rates.
pub fn dash_frame_rate(fps: f64) -> String {
    if (fps - fps.round()).abs() < 0.001 {
        format!("{}", fps.round() as u64)
    } else {
        format!("{}/1001", (fps * 1001.0).round() as u64)
    }
}

/// The MPD's `UTCTiming` element: players sync their clock with `time_url` (an http-iso
/// endpoint returning the server's time).
pub fn dash_utc_timing(out: &mut String, time_url: &str) {
    let _ = writeln!(
        out,
        "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{}\"/>",
        xml_escape(time_url)
    );
}

/// `s` safe inside an XML attribute value.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// An `xs:duration` of `secs` seconds, as MPDs write them.
pub fn xs_duration(secs: f64) -> String {
    format!("PT{secs:.3}S")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{av1_640x360, hevc_426x240, vp9_640x360};

    /// What the live packager and VOD (which stores these descriptions with each recording)
    /// both write: every video codec Rill packages gets its picture size.
    #[test]
    fn every_packaged_video_codec_is_described_with_its_size() {
        for (codec, size) in [(hevc_426x240(), (426, 240)), (av1_640x360(), (640, 360)), (vp9_640x360(), (640, 360))] {
            let description = TrackDescription::new(TrackKind::Video, &codec, 90_000);
            assert_eq!((description.width, description.height), (Some(size.0), Some(size.1)), "{}", codec.name());
            let track = HlsTrack { description: &description, peak_bitrate: 1, average_bitrate: 1, uri: "v.m3u8" };
            let playlist = hls_multivariant(&[track], None, 9);
            assert!(playlist.contains(&format!(",RESOLUTION={}x{}", size.0, size.1)), "{playlist}");
            let mut mpd = String::new();
            dash_representation(&mut mpd, "v", &description, 1, "");
            assert!(mpd.contains(&format!(" width=\"{}\" height=\"{}\"", size.0, size.1)), "{mpd}");
        }
    }
}

/// Appends `param` (`key=value`, already URL-safe) to a URI, after `?` or `&`.
fn with_param(uri: &str, param: &str) -> String {
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{param}")
}

/// An HLS playlist whose every URI (URI lines and `URI="…"` attributes: maps, parts,
/// preload hints, rendition reports, media) carries `param`, so that a player that sends no
/// cookie and no header still names its session (or its token) on every request it builds
/// from the playlist.
pub fn hls_with_param(playlist: &str, param: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.split_inclusive('\n') {
        let text = line.strip_suffix('\n').map_or(line, |t| t.strip_suffix('\r').unwrap_or(t));
        let newline = &line[text.len()..];
        if text.is_empty() {
            out.push_str(line);
        } else if !text.starts_with('#') {
            out.push_str(&with_param(text, param));
            out.push_str(newline);
        } else {
            let mut rest = text;
            while let Some(at) = rest.find("URI=\"") {
                let start = at + "URI=\"".len();
                let Some(len) = rest[start..].find('"') else { break };
                out.push_str(&rest[..start]);
                out.push_str(&with_param(&rest[start..start + len], param));
                rest = &rest[start + len..];
            }
            out.push_str(rest);
            out.push_str(newline);
        }
    }
    out
}

/// A DASH MPD whose segment templates (`media`, `initialization`) and `BaseURL`s (side-loaded
/// captions) carry `param`.
pub fn mpd_with_param(mpd: &str, param: &str) -> String {
    let mut out = String::with_capacity(mpd.len() + 64);
    let mut rest = mpd;
    loop {
        // Attributes end at a quote; a `BaseURL` (side-loaded captions) at its closing tag.
        let next = [("media=\"", '"'), ("initialization=\"", '"'), ("<BaseURL>", '<')]
            .iter()
            .filter_map(|(attr, end)| rest.find(attr).map(|at| (at, attr.len(), *end)))
            .min();
        let Some((at, attr_len, end)) = next else { break };
        let start = at + attr_len;
        let Some(len) = rest[start..].find(end) else { break };
        out.push_str(&rest[..start]);
        out.push_str(&with_param(&rest[start..start + len], param));
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// A DASH MPD with a `Location` (where players fetch its updates from: e.g. the MPD's own URL
/// with a session token), placed where the schema wants it: before `ServiceDescription` and
/// the first `Period`. `location` is escaped here.
pub fn mpd_with_location(mpd: &str, location: &str) -> String {
    let at = ["<ServiceDescription", "<Period"].iter().filter_map(|tag| mpd.find(tag)).min();
    let Some(at) = at else { return mpd.to_string() };
    let line_start = mpd[..at].rfind('\n').map_or(at, |n| n + 1);
    let indent = &mpd[line_start..at];
    let indent = if indent.trim().is_empty() { indent } else { "" };
    format!("{}<Location>{}</Location>\n{indent}{}", &mpd[..at], xml_escape(location), &mpd[at..])
}

#[cfg(test)]
mod param_tests {
    use super::*;

    #[test]
    fn mpd_location_before_the_first_period() {
        let mpd = "<MPD type=\"dynamic\">\n  <ServiceDescription id=\"0\"/>\n  <Period id=\"0\"/>\n</MPD>\n";
        assert_eq!(
            mpd_with_location(mpd, "manifest.mpd?token=a&b"),
            "<MPD type=\"dynamic\">\n  <Location>manifest.mpd?token=a&amp;b</Location>\n  <ServiceDescription id=\"0\"/>\n  <Period id=\"0\"/>\n</MPD>\n"
        );
    }

    #[test]
    fn every_hls_uri_carries_the_param() {
        let playlist = "#EXTM3U\n#EXT-X-MAP:URI=\"7-init-1.mp4\"\n#EXT-X-PART:DURATION=0.2,URI=\"7-3.0.m4s\"\n\
            #EXTINF:2.0,\n7-3.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"7-4.1.m4s\"\n\
            #EXT-X-RENDITION-REPORT:URI=\"../audio/media.m3u8?a=1\",LAST-MSN=3\nvideo/index.m3u8\r\n";
        let out = hls_with_param(playlist, "rs=abc");
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-MAP:URI=\"7-init-1.mp4?rs=abc\"\n#EXT-X-PART:DURATION=0.2,URI=\"7-3.0.m4s?rs=abc\"\n\
            #EXTINF:2.0,\n7-3.m4s?rs=abc\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"7-4.1.m4s?rs=abc\"\n\
            #EXT-X-RENDITION-REPORT:URI=\"../audio/media.m3u8?a=1&rs=abc\",LAST-MSN=3\nvideo/index.m3u8?rs=abc\r\n"
        );
    }

    #[test]
    fn mpd_templates_carry_the_param() {
        let mpd = r#"<SegmentTemplate timescale="90000" initialization="video/7-init-1.mp4" media="video/7-$Number$.m4s" startNumber="0">"#;
        assert_eq!(
            mpd_with_param(mpd, "rs=x"),
            r#"<SegmentTemplate timescale="90000" initialization="video/7-init-1.mp4?rs=x" media="video/7-$Number$.m4s?rs=x" startNumber="0">"#
        );
    }

    #[test]
    fn side_loaded_captions_carry_the_param_too() {
        let mut mpd = String::new();
        dash_text_adaptation_set(&mut mpd, 2, "en", "English", "captions/en.vtt");
        let carried = mpd_with_param(&mpd, "token=t");
        assert!(carried.contains("<BaseURL>captions/en.vtt?token=t</BaseURL>"), "{carried}");
    }
}
