//! Our own checks on an SDP offer before it reaches the peer connection: a bounded line
//! parser (media sections, `rtpmap`/`fmtp`/`rtcp-fb`, ICE/DTLS attributes) and the codec
//! choice for WHIP (what we can put on the Bus) and WHEP (what matches the source, including
//! H.264 `profile-level-id` compatibility per RFC 6184 §8.1).

use thiserror::Error;

/// Largest offer we read (browsers send 3–10 KiB).
pub const MAX_OFFER_LEN: usize = 64 * 1024;
/// Most media sections we look at.
pub const MAX_MEDIA_SECTIONS: usize = 16;
/// Most codecs per media section.
pub const MAX_CODECS: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("offer is {0} bytes, over the {MAX_OFFER_LEN}-byte limit")]
    TooLong(usize),
    #[error("offer is not UTF-8 text")]
    NotText,
    #[error("offer does not start with v=0")]
    NoVersion,
    #[error("line {0}: not of the form <type>=<value>")]
    BadLine(usize),
    #[error("line {0}: malformed m= line")]
    BadMedia(usize),
    #[error("line {0}: malformed a=rtpmap")]
    BadRtpmap(usize),
    #[error("offer has no media section")]
    NoMedia,
    #[error("offer has more than {MAX_MEDIA_SECTIONS} media sections")]
    TooManyMedia,
    #[error("offer has no ICE credentials (a=ice-ufrag/a=ice-pwd)")]
    NoIce,
    #[error("offer has no DTLS fingerprint (a=fingerprint)")]
    NoFingerprint,
}

/// Audio or video (anything else, e.g. `application` for data channels, is `Other`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
    Other,
}

/// Direction attribute of a media section, from the offerer's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// One `a=rtpmap` codec with its `fmtp` and `rtcp-fb` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedCodec {
    pub payload_type: u8,
    /// Encoding name as written (`H264`, `opus`, `VP8`, …).
    pub name: String,
    pub clock_rate: u32,
    pub channels: u16,
    /// The `a=fmtp` parameters as written (empty when none).
    pub fmtp: String,
    /// `a=rtcp-fb` values (`nack`, `nack pli`, `ccm fir`, `transport-cc`, …).
    pub feedback: Vec<String>,
}

impl OfferedCodec {
    /// True when the encoding name is `name` (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// One `fmtp` parameter's value.
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        self.fmtp
            .split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim())
    }

    /// H.264 `profile-level-id` as (profile_idc, constraint flags, level_idc); RFC 6184's
    /// default (42000a, Baseline 1.0) when absent.
    pub fn h264_profile(&self) -> Option<(u8, u8, u8)> {
        let Some(hex) = self.fmtp_param("profile-level-id") else { return Some((0x42, 0, 0x0a)) };
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some((byte(0)?, byte(2)?, byte(4)?))
    }

    /// H.264 with `packetization-mode=1` (non-interleaved: single NAL, STAP-A, FU-A), the
    /// only mode we send and take.
    pub fn is_h264_mode1(&self) -> bool {
        self.is("H264") && self.clock_rate == 90_000 && self.fmtp_param("packetization-mode") == Some("1")
    }
}

/// One `m=` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaSection {
    pub kind: Kind,
    pub mid: Option<String>,
    pub direction: Direction,
    pub codecs: Vec<OfferedCodec>,
}

/// What we read from an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub media: Vec<MediaSection>,
}

impl Offer {
    /// Parses and checks an offer: `v=0` first, every line `<letter>=<value>`, at least one
    /// media section, ICE credentials and a DTLS fingerprint (session or media level).
    pub fn parse(sdp: &[u8]) -> Result<Offer, SdpError> {
        if sdp.len() > MAX_OFFER_LEN {
            return Err(SdpError::TooLong(sdp.len()));
        }
        let text = std::str::from_utf8(sdp).map_err(|_| SdpError::NotText)?;
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r')).enumerate().filter(|(_, l)| !l.is_empty());
        if lines.next().map(|(_, l)| l.trim()) != Some("v=0") {
            return Err(SdpError::NoVersion);
        }
        let (mut ufrag, mut pwd, mut fingerprint) = (false, false, false);
        let mut media: Vec<MediaSection> = Vec::new();
        let mut session_direction = Direction::SendRecv;
        for (i, line) in lines {
            let n = i + 1;
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
                return Err(SdpError::BadLine(n));
            }
            let value = &line[2..];
            match bytes[0] {
                b'm' => {
                    if media.len() == MAX_MEDIA_SECTIONS {
                        return Err(SdpError::TooManyMedia);
                    }
                    let mut parts = value.split_ascii_whitespace();
                    let kind = match parts.next() {
                        Some("audio") => Kind::Audio,
                        Some("video") => Kind::Video,
                        Some(_) => Kind::Other,
                        None => return Err(SdpError::BadMedia(n)),
                    };
                    let port = parts.next().ok_or(SdpError::BadMedia(n))?;
                    if port.split('/').next().and_then(|p| p.parse::<u16>().ok()).is_none() {
                        return Err(SdpError::BadMedia(n));
                    }
                    parts.next().ok_or(SdpError::BadMedia(n))?;
                    media.push(MediaSection { kind, mid: None, direction: session_direction, codecs: Vec::new() });
                }
                b'a' => {
                    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                    match name {
                        "ice-ufrag" => ufrag |= !arg.is_empty(),
                        "ice-pwd" => pwd |= !arg.is_empty(),
                        "fingerprint" => fingerprint |= !arg.is_empty(),
                        "sendrecv" | "sendonly" | "recvonly" | "inactive" => {
                            let d = match name {
                                "sendrecv" => Direction::SendRecv,
                                "sendonly" => Direction::SendOnly,
                                "recvonly" => Direction::RecvOnly,
                                _ => Direction::Inactive,
                            };
                            match media.last_mut() {
                                Some(m) => m.direction = d,
                                None => session_direction = d,
                            }
                        }
                        "mid" => {
                            if let Some(m) = media.last_mut() {
                                m.mid = Some(arg.chars().take(32).collect());
                            }
                        }
                        "rtpmap" => {
                            let Some(m) = media.last_mut() else { continue };
                            let (pt, enc) = arg.split_once(' ').ok_or(SdpError::BadRtpmap(n))?;
                            let pt: u8 = pt.parse().map_err(|_| SdpError::BadRtpmap(n))?;
                            let mut enc = enc.trim().split('/');
                            let name = enc.next().filter(|s| !s.is_empty()).ok_or(SdpError::BadRtpmap(n))?;
                            let clock_rate: u32 =
                                enc.next().and_then(|c| c.parse().ok()).ok_or(SdpError::BadRtpmap(n))?;
                            let channels: u16 = match enc.next() {
                                Some(c) => c.parse().map_err(|_| SdpError::BadRtpmap(n))?,
                                None => 0,
                            };
                            if pt > 127 || m.codecs.len() == MAX_CODECS {
                                return Err(SdpError::BadRtpmap(n));
                            }
                            m.codecs.push(OfferedCodec {
                                payload_type: pt,
                                name: name.chars().take(32).collect(),
                                clock_rate,
                                channels,
                                fmtp: String::new(),
                                feedback: Vec::new(),
                            });
                        }
                        "fmtp" | "rtcp-fb" => {
                            let Some(m) = media.last_mut() else { continue };
                            let Some((pt, rest)) = arg.split_once(' ') else { continue };
                            let Ok(pt) = pt.parse::<u8>() else { continue };
                            if let Some(c) = m.codecs.iter_mut().find(|c| c.payload_type == pt) {
                                if name == "fmtp" {
                                    c.fmtp = rest.trim().chars().take(512).collect();
                                } else if c.feedback.len() < 16 {
                                    c.feedback.push(rest.trim().chars().take(64).collect());
                                }
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if media.is_empty() {
            return Err(SdpError::NoMedia);
        }
        if !(ufrag && pwd) {
            return Err(SdpError::NoIce);
        }
        if !fingerprint {
            return Err(SdpError::NoFingerprint);
        }
        Ok(Offer { media })
    }

    /// The first audio/video section of `kind` that is not inactive.
    pub fn section(&self, kind: Kind) -> Option<&MediaSection> {
        self.media.iter().find(|m| m.kind == kind && m.direction != Direction::Inactive)
    }
}

/// A codec the session will use, as negotiated (payload type and fmtp from the offer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub kind: Kind,
    pub codec: OfferedCodec,
}

/// The non-H.264 video codec of an offered entry WHIP can take: VP8, VP9 (profile 0 or 2;
/// RFC 9628 `profile-id`, 0 when absent) or AV1 (any profile), all at 90 kHz.
pub fn whip_video_codec(c: &OfferedCodec) -> Option<crate::depacketize::VideoCodec> {
    use crate::depacketize::VideoCodec;
    if c.clock_rate != 90_000 {
        return None;
    }
    if c.is("VP8") {
        Some(VideoCodec::Vp8)
    } else if c.is("VP9") && matches!(c.fmtp_param("profile-id").unwrap_or("0"), "0" | "2") {
        Some(VideoCodec::Vp9)
    } else if c.is("AV1") {
        Some(VideoCodec::Av1)
    } else {
        None
    }
}

/// Which codec a publisher's offered section gives us. Video: H.264 (packetization-mode 1,
/// preferring Constrained Baseline 42e0xx, which every player decodes) when offered, since
/// every egress takes it; else VP9 (profile 0 first), then AV1, then VP8 (the last is not
/// packaged for LL-HLS/DASH or HTTP-FLV). Audio: Opus.
pub fn choose_whip(section: &MediaSection) -> Option<OfferedCodec> {
    match section.kind {
        Kind::Video => {
            if !section.codecs.iter().any(|c| c.is_h264_mode1() && c.h264_profile().is_some()) {
                use crate::depacketize::VideoCodec;
                let rank = |c: &OfferedCodec| match whip_video_codec(c)? {
                    VideoCodec::Vp9 if c.fmtp_param("profile-id").unwrap_or("0") == "0" => Some(0),
                    VideoCodec::Vp9 => Some(1),
                    VideoCodec::Av1 => Some(2),
                    VideoCodec::Vp8 => Some(3),
                };
                return section
                    .codecs
                    .iter()
                    .filter_map(|c| Some((rank(c)?, c)))
                    .min_by_key(|(r, _)| *r)
                    .map(|(_, c)| c.clone());
            }
            // Constrained Baseline first, then other Baseline, then the rest; the first offered
            // of a rank wins.
            let rank = |(p, flags, _): (u8, u8, u8)| match (p, flags & 0x40 != 0) {
                (0x42, true) => 0,
                (0x42, false) => 1,
                _ => 2,
            };
            section
                .codecs
                .iter()
                .filter(|c| c.is_h264_mode1())
                .filter_map(|c| Some((rank(c.h264_profile()?), c)))
                .min_by_key(|(r, _)| *r)
                .map(|(_, c)| c.clone())
        }
        Kind::Audio => section.codecs.iter().find(|c| c.is("opus") && c.clock_rate == 48_000).cloned(),
        Kind::Other => None,
    }
}

/// Whether an H.264 stream of `source` (profile_idc, constraint flags) conforms to the
/// profile `profile` (H.264 Annex A: the constraint_set flags 0..2 say a stream also conforms
/// to Baseline, Main or Extended; Constrained Baseline is Baseline and Main at once).
fn h264_conforms(source: (u8, u8), profile: u8) -> bool {
    let (p, c) = source;
    let baseline = p == 0x42 || c & 0x80 != 0;
    let main = p == 0x4d || c & 0x40 != 0;
    match profile {
        0x42 => baseline,
        0x4d => main,
        0x58 => p == 0x58 || c & 0x20 != 0 || baseline,
        _ => false,
    }
}

/// Whether a viewer that offered `offered` (profile_idc, constraint flags, level) decodes a
/// source of `source` (profile_idc, constraint flags), per H.264 Annex A: a Constrained
/// Baseline decoder (`42e0xx`, or `4d80xx`… with constraint_set0) takes Constrained Baseline
/// streams; Baseline takes Baseline; Main takes Main (and Constrained Baseline); Extended
/// takes Baseline and Extended; High takes Main and High; High 10 / 4:2:2 / 4:4:4 Predictive
/// (`6e`/`7a`/`f4`) also take the High profiles below them. A Progressive or Constrained High
/// entry (`64` with constraint_set4/5) only takes streams that say they keep those constraints.
/// The level is not compared: RFC 6184's `level-asymmetry-allowed=1` (every browser offers
/// it) lets the sender's level differ, and browsers decode above the level they offer.
pub fn h264_compatible(offered: (u8, u8, u8), source: (u8, u8)) -> bool {
    let (op, oc, _) = offered;
    let (sp, sc) = source;
    let constrained_baseline = h264_conforms(source, 0x42) && h264_conforms(source, 0x4d);
    // An offered entry with constraint_set1 on Baseline, or constraint_set0 on Main: a
    // Constrained Baseline decoder.
    if (op == 0x42 && oc & 0x40 != 0) || (op == 0x4d && oc & 0x80 != 0) {
        return constrained_baseline;
    }
    let high_family = |p: u8| match p {
        0x64 => Some(0),
        0x6e => Some(1),
        0x7a => Some(2),
        0xf4 => Some(3),
        _ => None,
    };
    match op {
        0x42 | 0x4d | 0x58 => h264_conforms(source, op),
        0x64 if oc & 0x0c != 0 => {
            // Progressive (set4) / Constrained (set4+set5) High: the stream must keep them.
            constrained_baseline || (sp == 0x64 && sc & oc & 0x0c == oc & 0x0c)
        }
        _ => match (high_family(op), high_family(sp)) {
            (Some(o), Some(s)) => s <= o,
            (Some(_), None) => h264_conforms(source, 0x4d) || constrained_baseline,
            _ => op == sp,
        },
    }
}

/// A short name of an H.264 profile (profile_idc, constraint flags), for messages.
pub fn h264_profile_name(profile: u8, constraints: u8) -> &'static str {
    match profile {
        0x42 if constraints & 0x40 != 0 => "Constrained Baseline",
        0x42 => "Baseline",
        0x4d if constraints & 0x80 != 0 => "Constrained Baseline",
        0x4d => "Main",
        0x58 => "Extended",
        0x64 if constraints & 0x0c == 0x0c => "Constrained High",
        0x64 if constraints & 0x08 != 0 => "Progressive High",
        0x64 => "High",
        0x6e => "High 10",
        0x7a => "High 4:2:2",
        0xf4 => "High 4:4:4 Predictive",
        _ => "unknown",
    }
}

/// The `profile-level-id`s of an offered section's packetization-mode=1 H.264 entries, for
/// messages (`42001f, 42e01f, 4d001f`), or `no H.264 with packetization-mode=1`.
pub fn offered_h264(section: Option<&MediaSection>) -> String {
    let ids: Vec<String> = section
        .into_iter()
        .flat_map(|s| s.codecs.iter())
        .filter(|c| c.is_h264_mode1())
        .filter_map(|c| c.h264_profile())
        .map(|(p, c, l)| format!("{p:02x}{c:02x}{l:02x}"))
        .collect();
    if ids.is_empty() {
        "no H.264 with packetization-mode=1".to_string()
    } else {
        format!("H.264 {}", ids.join(", "))
    }
}

/// The viewer's H.264 payload type for a source of `source` (profile, constraints): an
/// exact profile match first, then any compatible one.
pub fn choose_whep_h264(section: &MediaSection, source: (u8, u8)) -> Option<OfferedCodec> {
    let candidates: Vec<(&OfferedCodec, (u8, u8, u8))> = section
        .codecs
        .iter()
        .filter(|c| c.is_h264_mode1())
        .filter_map(|c| Some((c, c.h264_profile()?)))
        .filter(|(_, offered)| h264_compatible(*offered, source))
        .collect();
    let exact = candidates.iter().find(|(_, (p, flags, _))| (*p, *flags) == source);
    exact.or(candidates.first()).map(|(c, _)| (*c).clone())
}

/// The video an offered section lists, for messages: its H.264 `profile-level-id`s and its
/// other codecs (`H.264 42e01f, 42001f; VP8, VP9`).
fn offered_video(section: &MediaSection) -> String {
    let mut others: Vec<String> = Vec::new();
    for c in section.codecs.iter().filter(|c| !c.is("H264")) {
        if let Some(send) = SendCodec::of(c) {
            let name = format!("{send:?}").to_ascii_uppercase();
            if !others.contains(&name) {
                others.push(name);
            }
        }
    }
    let h264 = offered_h264(Some(section));
    if others.is_empty() {
        h264
    } else {
        format!("{h264}; {}", others.join(", "))
    }
}

/// The viewer's H.264 payload type for a Constrained Baseline stream (the WebRTC rendition):
/// a `42e0xx` entry first, then any entry that decodes it.
pub fn choose_whep_baseline(section: &MediaSection) -> Option<OfferedCodec> {
    choose_whep_h264(section, (0x42, 0xe0))
}

/// Where a WHEP viewer's video comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoOrigin {
    /// The source's own video, passed through.
    Source,
    /// The WebRTC rendition (`live/<name>/webrtc`): Constrained Baseline H.264 transcoded for
    /// viewers that cannot decode the source's video.
    Rendition,
}

/// The video codecs WHEP sends (the source's as it is, or the rendition's H.264).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendCodec {
    H264,
    H265,
    Vp8,
    Vp9,
    Av1,
}

impl SendCodec {
    /// The codec of an offered entry we can send (H.264 only in packetization-mode 1).
    pub fn of(c: &OfferedCodec) -> Option<SendCodec> {
        if c.clock_rate != 90_000 {
            return None;
        }
        match c.name.to_ascii_uppercase().as_str() {
            "H264" if c.is_h264_mode1() => Some(SendCodec::H264),
            "H265" => Some(SendCodec::H265),
            "VP8" => Some(SendCodec::Vp8),
            "VP9" => Some(SendCodec::Vp9),
            "AV1" => Some(SendCodec::Av1),
            _ => None,
        }
    }
}

/// The offered entry that decodes a non-H.264 source as it is: VP8; VP9 of the source's
/// profile (vpcC's first byte; RFC 9628 `profile-id`, 0 when absent); AV1 of its `seq_profile`
/// (`profile`, 0 when absent); H.265 whose `profile-id` (1 when absent) is the source's
/// general_profile_idc, or Main 10 for a Main source.
fn choose_whep_passthrough(section: &MediaSection, video: &rill_media::CodecConfig) -> Option<OfferedCodec> {
    use rill_media::CodecConfig;
    let param = |c: &OfferedCodec, key: &str, default: u8| c.fmtp_param(key).map_or(Some(default), |v| v.parse().ok());
    section
        .codecs
        .iter()
        .find(|c| match (video, SendCodec::of(c)) {
            (CodecConfig::Vp8 { .. }, Some(SendCodec::Vp8)) => true,
            (CodecConfig::Vp9 { record, .. }, Some(SendCodec::Vp9)) => {
                param(c, "profile-id", 0) == record.first().copied()
            }
            (CodecConfig::Av1 { record }, Some(SendCodec::Av1)) => {
                param(c, "profile", 0) == record.get(1).map(|b| b >> 5)
            }
            (CodecConfig::Hevc { record }, Some(SendCodec::H265)) => {
                let source = record.get(1).map(|b| b & 0x1f);
                let offered = param(c, "profile-id", 1);
                offered == source || (source == Some(1) && offered == Some(2))
            }
            _ => false,
        })
        .cloned()
}

/// The video of a WHEP session: the offered codec it is sent as, from where, and why (for the API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhepVideo {
    pub codec: OfferedCodec,
    pub send: SendCodec,
    pub origin: VideoOrigin,
    pub reason: String,
}

/// Which video a WHEP viewer gets, from its offered video `section` and the source's `video`:
/// the source's when an offered entry decodes it, else the WebRTC rendition when `rendition`
/// (transcoding available) and the offer takes Constrained Baseline H.264. `Ok(None)`: no
/// video (the source has none, or the offer asks for none). `Err`: the viewer asked for video
/// it cannot get; the reason names the source's codec/profile and what the offer lacks.
pub fn plan_whep_video(
    section: Option<&MediaSection>,
    video: Option<&rill_media::CodecConfig>,
    rendition: bool,
) -> Result<Option<WhepVideo>, String> {
    use rill_media::CodecConfig;
    let (Some(section), Some(video)) = (section, video) else { return Ok(None) };
    let offered = offered_video(section);
    let source = match video {
        CodecConfig::Avc(avc) => {
            let (p, c, l) = (avc.sps.profile_idc, avc.sps.constraint_flags, avc.sps.level_idc);
            let name = format!("H.264 {} (profile-level-id {p:02x}{c:02x}{l:02x})", h264_profile_name(p, c));
            if let Some(codec) = choose_whep_h264(section, (p, c)) {
                let reason = format!(
                    "the source's {name}, sent as offered {}",
                    codec.fmtp_param("profile-level-id").unwrap_or("42000a")
                );
                return Ok(Some(WhepVideo { codec, send: SendCodec::H264, origin: VideoOrigin::Source, reason }));
            }
            name
        }
        other => {
            if let Some(codec) = choose_whep_passthrough(section, other) {
                let send = SendCodec::of(&codec).expect("a codec we send");
                let reason = format!("the source's {} video, as it is", other.name());
                return Ok(Some(WhepVideo { codec, send, origin: VideoOrigin::Source, reason }));
            }
            format!("{} video", other.name())
        }
    };
    let transcodable = matches!(video, CodecConfig::Avc(_) | CodecConfig::Hevc { .. });
    let lacks = format!("the offer's video ({offered}) cannot decode the stream's {source}");
    if !transcodable {
        return Err(format!("{lacks}, and WebRTC playback sends it only as it is"));
    }
    if !rendition {
        return Err(format!("{lacks}, and WebRTC transcoding is disabled ([webrtc] transcode = false)"));
    }
    match choose_whep_baseline(section) {
        Some(codec) => Ok(Some(WhepVideo {
            codec,
            send: SendCodec::H264,
            origin: VideoOrigin::Rendition,
            reason: format!("{lacks}: it gets the WebRTC rendition (Constrained Baseline H.264, transcoded)"),
        })),
        None => Err(format!("{lacks}, nor the Constrained Baseline H.264 it could be transcoded to")),
    }
}

/// The viewer's Opus payload type.
pub fn choose_opus(section: &MediaSection) -> Option<OfferedCodec> {
    section.codecs.iter().find(|c| c.is("opus") && c.clock_rate == 48_000).cloned()
}

/// Puts the ICE candidates of an answer where the viewer reads them. webrtc-rs writes them into
/// the first media section even when that section is rejected (port 0: e.g. the viewer's video
/// comes first in its offer and nothing is sent on it), and browsers ignore a rejected
/// section's attributes: the session would never connect. Moves `a=candidate` and
/// `a=end-of-candidates` lines out of rejected sections into the first accepted one (the
/// BUNDLE tag), unless it has its own.
pub fn candidates_in_accepted_section(answer: &str) -> String {
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in answer.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        sections.last_mut().expect("one section at least").push(line);
    }
    let rejected = |s: &[&str]| s.first().and_then(|m| m.split_ascii_whitespace().nth(1)) == Some("0");
    fn is_candidate(l: &&str) -> bool {
        l.starts_with("a=candidate:") || *l == "a=end-of-candidates"
    }
    let mut moved: Vec<&str> = Vec::new();
    for section in sections.iter_mut().skip(1).filter(|s| rejected(s)) {
        moved.extend(section.iter().filter(|l| is_candidate(l)));
        section.retain(|l| !is_candidate(l));
    }
    if let Some(first) = sections.iter_mut().skip(1).find(|s| !rejected(s)) {
        if !first.iter().any(is_candidate) {
            first.extend(moved);
        }
    }
    let mut out = sections.concat().join("\r\n");
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const CHROME_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
a=fingerprint:sha-256 AA:BB\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=mid:0\r\na=sendonly\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102 108 127\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n\
a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:127 H264/90000\r\na=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:125 H264/90000\r\na=fmtp:125 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f\r\n";

    #[test]
    fn parses_a_browser_offer() {
        let offer = Offer::parse(CHROME_OFFER.as_bytes()).unwrap();
        assert_eq!(offer.media.len(), 2);
        let video = offer.section(Kind::Video).unwrap();
        assert_eq!(video.direction, Direction::SendOnly);
        assert_eq!(video.codecs.len(), 5);
        assert_eq!(video.codecs[0].feedback, vec!["nack pli".to_string()]);
        assert_eq!(choose_whip(video).unwrap().payload_type, 127, "Constrained Baseline, mode 1");
        assert_eq!(choose_whip(offer.section(Kind::Audio).unwrap()).unwrap().payload_type, 111);
    }

    #[test]
    fn whep_profile_matching() {
        let offer = Offer::parse(CHROME_OFFER.as_bytes()).unwrap();
        let video = offer.section(Kind::Video).unwrap();
        // The offer's High entry is Constrained High (640c1f): a Constrained High source takes
        // it, a plain High one (x264 640028, B-frames allowed) has no entry.
        assert_eq!(choose_whep_h264(video, (0x64, 0x0c)).unwrap().payload_type, 125);
        assert_eq!(choose_whep_h264(video, (0x64, 0x00)), None);
        // Constrained Baseline → the exact 42e0xx mode-1 entry.
        assert_eq!(choose_whep_h264(video, (0x42, 0xe0)).unwrap().payload_type, 127);
        // Main (4d0028) is not offered and not decodable by a Baseline-only decoder.
        assert_eq!(choose_whep_h264(video, (0x4d, 0x00)), None);
        assert_eq!(choose_whep_baseline(video).unwrap().payload_type, 127);
    }

    fn avc(profile: u8, constraints: u8) -> rill_media::CodecConfig {
        // A 320x240 SPS with the profile and constraint bytes replaced.
        let mut sps = vec![
            0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
            0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
        ];
        sps[1] = profile;
        sps[2] = constraints;
        let record = rill_media::avc::DecoderConfigRecord::build(&sps, &[0x68, 0xcb, 0x83, 0xcb, 0x20]).unwrap();
        rill_media::CodecConfig::Avc(rill_media::AvcConfig::from_record(record).unwrap())
    }

    #[test]
    fn whep_video_plan() {
        let firefox = "v=0\r\na=fingerprint:sha-256 AA\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 97 126\r\na=rtpmap:126 H264/90000\r\n\
a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n\
a=rtpmap:97 H264/90000\r\na=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1\r\n";
        let offer = Offer::parse(firefox.as_bytes()).unwrap();
        let video = offer.section(Kind::Video);
        let high = avc(0x64, 0x00);
        // Baseline-only viewer of a High source: the rendition, as the mode-1 entry.
        let plan = plan_whep_video(video, Some(&high), true).unwrap().unwrap();
        assert_eq!((plan.origin, plan.codec.payload_type), (VideoOrigin::Rendition, 126));
        assert!(
            plan.reason.contains("H.264 42e01f") && plan.reason.contains("High (profile-level-id 64000d)"),
            "{}",
            plan.reason
        );
        // Transcoding disabled: refused, saying what the source is and what the offer has.
        let refused = plan_whep_video(video, Some(&high), false).unwrap_err();
        assert!(refused.contains("High") && refused.contains("42e01f") && refused.contains("disabled"), "{refused}");
        // A Constrained Baseline source goes straight through.
        let cb = avc(0x42, 0xc0);
        assert_eq!(plan_whep_video(video, Some(&cb), true).unwrap().unwrap().origin, VideoOrigin::Source);
        // Chromium: High plays as High 4:4:4 Predictive, Main as Main; no transcoding.
        let offer =
            Offer::parse(CHROME_OFFER.replace("640c1f", "f4001f").replace("42001f", "4d001f").as_bytes()).unwrap();
        let video = offer.section(Kind::Video);
        let plan = plan_whep_video(video, Some(&high), true).unwrap().unwrap();
        assert_eq!((plan.origin, plan.codec.payload_type), (VideoOrigin::Source, 125));
        assert_eq!(plan_whep_video(video, Some(&avc(0x4d, 0)), true).unwrap().unwrap().codec.payload_type, 102);
        // No video asked for, or none to send: audio only.
        assert_eq!(plan_whep_video(None, Some(&high), true), Ok(None));
        assert_eq!(plan_whep_video(video, None, true), Ok(None));
        // VP8 goes to a viewer offering VP8 as it is.
        let vp8 = rill_media::CodecConfig::Vp8 { width: 640, height: 360 };
        let plan = plan_whep_video(video, Some(&vp8), true).unwrap().unwrap();
        assert_eq!((plan.send, plan.codec.payload_type, plan.origin), (SendCodec::Vp8, 96, VideoOrigin::Source));
        // VP9 and AV1 are not transcoded: without the codec in the offer, a refusal.
        let vp9 = rill_media::CodecConfig::Vp9 {
            record: bytes::Bytes::from_static(&[0, 10, 0x80, 1, 1, 1, 0, 0]),
            size: None,
        };
        let refused = plan_whep_video(video, Some(&vp9), true).unwrap_err();
        assert!(refused.contains("vp9 video") && refused.contains("VP8"), "{refused}");
        let head = "v=0\r\na=fingerprint:sha-256 AA\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n";
        let offer = Offer::parse(
            format!(
                "{head}m=video 9 UDP/TLS/RTP/SAVPF 98 100 45 49\r\na=rtpmap:98 VP9/90000\r\n\
a=fmtp:98 profile-id=2\r\na=rtpmap:100 VP9/90000\r\na=fmtp:100 profile-id=0\r\na=rtpmap:45 AV1/90000\r\n\
a=rtpmap:49 H265/90000\r\na=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let video = offer.section(Kind::Video);
        assert_eq!(plan_whep_video(video, Some(&vp9), false).unwrap().unwrap().codec.payload_type, 100);
        let av1 = rill_media::CodecConfig::Av1 { record: bytes::Bytes::from_static(&[0x81, 0x08, 0x0c, 0x00]) };
        assert_eq!(plan_whep_video(video, Some(&av1), false).unwrap().unwrap().codec.payload_type, 45);
        // HEVC Main to an H.265 Main entry as it is; without one, the rendition.
        let hevc = rill_media::CodecConfig::Hevc { record: bytes::Bytes::from_static(&[1, 0x01, 0x60, 0, 0, 0]) };
        let plan = plan_whep_video(video, Some(&hevc), false).unwrap().unwrap();
        assert_eq!((plan.send, plan.codec.payload_type), (SendCodec::H265, 49));
        let offer = Offer::parse(CHROME_OFFER.as_bytes()).unwrap();
        let plan = plan_whep_video(offer.section(Kind::Video), Some(&hevc), true).unwrap().unwrap();
        assert_eq!((plan.send, plan.origin), (SendCodec::H264, VideoOrigin::Rendition));
    }

    #[test]
    fn h264_decoder_profiles() {
        let cb = (0x42, 0xe0);
        let baseline = (0x42, 0x00);
        let main = (0x4d, 0x00);
        let main_cb = (0x4d, 0x80 | 0x40);
        let high = (0x64, 0x00);
        let high10 = (0x6e, 0x00);
        // Chromium's H.264 entries.
        let chromium = [(0x42, 0x00, 0x1f), (0x42, 0xe0, 0x1f), (0x4d, 0x00, 0x1f), (0xf4, 0x00, 0x1f)];
        let takes = |source| chromium.iter().filter(|o| h264_compatible(**o, source)).count();
        assert_eq!(takes(cb), 4, "every decoder takes Constrained Baseline");
        assert_eq!(takes(main), 2, "Main: the 4d entry, and High 4:4:4 Predictive");
        assert_eq!(takes(high), 1, "High: only High 4:4:4 Predictive (Annex A.2.11)");
        assert_eq!(takes(baseline), 1, "Baseline (not constrained): the 42 entry");
        // Firefox offers Constrained Baseline and Baseline only.
        let firefox = [(0x42, 0xe0, 0x1f), (0x42, 0x00, 0x1f)];
        assert!(firefox.iter().all(|o| !h264_compatible(*o, high) && !h264_compatible(*o, main)));
        assert!(firefox.iter().all(|o| h264_compatible(*o, cb) && h264_compatible(*o, main_cb)));
        // A Main source with constraint_set1 decodes on Main and High, not on Baseline-only.
        assert!(h264_compatible((0x64, 0x00, 0x28), main));
        assert!(!h264_compatible((0x64, 0x00, 0x28), high10));
        assert!(h264_compatible((0x6e, 0x00, 0x28), high));
        // Constrained High entries take Constrained Baseline, not plain High.
        assert!(h264_compatible((0x64, 0x0c, 0x1f), cb));
        assert!(!h264_compatible((0x64, 0x0c, 0x1f), high));
        assert!(h264_compatible((0x64, 0x0c, 0x1f), (0x64, 0x0c)));
        // A Main entry with constraint_set0 is a Constrained Baseline decoder.
        assert!(!h264_compatible((0x4d, 0x80, 0x1f), main));
        assert_eq!(h264_profile_name(0x64, 0), "High");
        assert_eq!(h264_profile_name(0x42, 0xe0), "Constrained Baseline");
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(Offer::parse(b"hello"), Err(SdpError::NoVersion));
        assert_eq!(Offer::parse(&[0xff, 0xfe]), Err(SdpError::NotText));
        assert_eq!(Offer::parse(b"v=0\r\nxyz\r\n"), Err(SdpError::BadLine(2)));
        assert_eq!(Offer::parse(b"v=0\r\ns=-\r\n"), Err(SdpError::NoMedia));
        assert_eq!(Offer::parse(b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"), Err(SdpError::NoIce));
        assert_eq!(Offer::parse(b"v=0\r\nm=video x UDP 96\r\n"), Err(SdpError::BadMedia(2)));
        assert!(matches!(Offer::parse(&vec![b'a'; MAX_OFFER_LEN + 1]), Err(SdpError::TooLong(_))));
        let bad_rtpmap = CHROME_OFFER.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus");
        assert!(matches!(Offer::parse(bad_rtpmap.as_bytes()), Err(SdpError::BadRtpmap(_))));
    }

    #[test]
    fn no_usable_codec() {
        let theora_only = "v=0\r\na=fingerprint:sha-256 AA\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 theora/90000\r\n";
        let offer = Offer::parse(theora_only.as_bytes()).unwrap();
        assert_eq!(choose_whip(offer.section(Kind::Video).unwrap()), None);
    }

    #[test]
    fn whip_takes_vp8_vp9_av1_without_h264() {
        let head = "v=0\r\na=fingerprint:sha-256 AA\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n";
        let choose = |video: &str| {
            let offer = Offer::parse(format!("{head}{video}").as_bytes()).unwrap();
            choose_whip(offer.section(Kind::Video).unwrap()).map(|c| c.payload_type)
        };
        let vp8 = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(choose(vp8), Some(96));
        let all = "m=video 9 UDP/TLS/RTP/SAVPF 96 98 100 45\r\na=rtpmap:96 VP8/90000\r\n\
a=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=2\r\na=rtpmap:100 VP9/90000\r\na=fmtp:100 profile-id=0\r\n\
a=rtpmap:45 AV1/90000\r\n";
        assert_eq!(choose(all), Some(100), "VP9 profile 0 first");
        let av1_vp8 = "m=video 9 UDP/TLS/RTP/SAVPF 96 45\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:45 AV1/90000\r\n";
        assert_eq!(choose(av1_vp8), Some(45));
        // H.264 still wins when offered (the browser offer lists VP8 first).
        let offer = Offer::parse(CHROME_OFFER.as_bytes()).unwrap();
        assert_eq!(choose_whip(offer.section(Kind::Video).unwrap()).unwrap().payload_type, 127);
    }

    #[test]
    fn candidates_leave_a_rejected_first_section() {
        let answer =
            "v=0\r\ns=-\r\na=group:BUNDLE 1\r\nm=video 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 8189 typ host\r\na=end-of-candidates\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=rtpmap:111 opus/48000/2\r\na=sendonly\r\n";
        let fixed = candidates_in_accepted_section(answer);
        let (video, audio) = fixed.split_once("m=audio").unwrap();
        assert!(!video.contains("a=candidate"), "{fixed}");
        assert!(
            audio.contains("a=candidate:1 1 udp 2130706431 127.0.0.1 8189 typ host\r\na=end-of-candidates\r\n"),
            "{fixed}"
        );
        // An answer whose first section is accepted is unchanged.
        let ok = "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 8189 typ host\r\n";
        assert_eq!(candidates_in_accepted_section(ok), ok);
    }
}
