//! Sans-IO mapping from what an RTSP camera offers to the Bus: which SDP streams to set up,
//! decoder configurations from the depacketizer's parameters, and frames with their
//! timestamps. The RTSP client (retina) delivers H.264/H.265 as 4-byte length-prefixed NAL
//! units with an `avcC`/`hvcC` record, and AAC as raw access units with its
//! AudioSpecificConfig: the forms the Bus carries, so payloads pass through unchanged.

use bytes::Bytes;
use rill_media::{AacConfig, AvcConfig, CodecConfig, Frame, MediaTime, Timebase, TrackId, Tracks};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MapError {
    #[error("bad H.264 parameters from the camera: {0}")]
    Avc(#[from] rill_media::avc::AvcError),
    #[error("bad AAC parameters from the camera: {0}")]
    Aac(#[from] rill_media::aac::AacError),
    #[error("the camera's {0} stream has no decoder parameters")]
    NoParameters(&'static str),
    #[error("clock rate 0 on the {0} stream")]
    ClockRate(&'static str),
}

/// The video codecs Rill takes from cameras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

/// What to do with one stream of the camera's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Video(VideoCodec),
    Aac,
    /// Not set up; the reason is logged once per connection.
    Ignore(String),
}

/// Decides from an SDP stream's media type and RTP encoding name (as retina lower-cases them).
pub fn choose(media: &str, encoding: &str) -> Choice {
    match (media, encoding) {
        ("video", "h264") => Choice::Video(VideoCodec::H264),
        ("video", "h265") => Choice::Video(VideoCodec::H265),
        ("audio", "mpeg4-generic") => Choice::Aac,
        ("audio", "pcmu" | "pcma") => Choice::Ignore(format!(
            "G.711 audio ({encoding}) is not carried: HLS/DASH/FLV players cannot play it (transcoding to AAC is not built yet)"
        )),
        ("audio", "opus") => Choice::Ignore("Opus audio is not supported by the RTSP client (retina) yet".into()),
        (media, encoding) => Choice::Ignore(format!("{media}/{encoding} is not supported")),
    }
}

/// Decoder configuration of a video stream from its `extra_data` (`avcC` or `hvcC`).
pub fn video_config(codec: VideoCodec, extra_data: &[u8]) -> Result<CodecConfig, MapError> {
    if extra_data.is_empty() {
        return Err(MapError::NoParameters("video"));
    }
    let record = Bytes::copy_from_slice(extra_data);
    Ok(match codec {
        VideoCodec::H264 => CodecConfig::Avc(AvcConfig::from_record(record)?),
        VideoCodec::H265 => CodecConfig::Hevc { record },
    })
}

/// Decoder configuration of an AAC stream from its AudioSpecificConfig.
pub fn aac_config(asc: &[u8]) -> Result<CodecConfig, MapError> {
    if asc.is_empty() {
        return Err(MapError::NoParameters("audio"));
    }
    Ok(CodecConfig::Aac(AacConfig::from_asc(Bytes::copy_from_slice(asc))?))
}

/// Turns one connection's frames into Bus frames: video waits for its configuration and
/// first keyframe; audio waits for its configuration and, when there is video, for the first
/// video keyframe (so every stream starts on a picture).
#[derive(Debug)]
pub struct FrameMapper {
    tracks: Tracks,
    has_video: bool,
    started: bool,
    tracks_changed: bool,
}

impl FrameMapper {
    /// `has_video`: a video stream was set up.
    pub fn new(has_video: bool) -> FrameMapper {
        FrameMapper { tracks: Tracks::default(), has_video, started: false, tracks_changed: false }
    }

    pub fn set_video(&mut self, config: CodecConfig) {
        if self.tracks.video.as_ref() != Some(&config) {
            self.tracks.video = Some(config);
            self.tracks_changed = true;
        }
    }

    pub fn set_audio(&mut self, config: CodecConfig) {
        if self.tracks.audio.as_ref() != Some(&config) {
            self.tracks.audio = Some(config);
            self.tracks_changed = true;
        }
    }

    pub fn has_video_config(&self) -> bool {
        self.tracks.video.is_some()
    }

    pub fn has_audio_config(&self) -> bool {
        self.tracks.audio.is_some()
    }

    /// The tracks, once, after they changed: the driver publishes them before the next frame.
    pub fn take_changed_tracks(&mut self) -> Option<Tracks> {
        std::mem::take(&mut self.tracks_changed).then(|| self.tracks.clone())
    }

    /// A video access unit at `ticks` of a `clock_hz` clock since the stream's start
    /// (RTP gives presentation times only: decode time = presentation time, so cameras
    /// sending B-frames are not supported).
    pub fn video(
        &mut self,
        ticks: i64,
        clock_hz: u32,
        keyframe: bool,
        payload: Bytes,
    ) -> Result<Option<Frame>, MapError> {
        let timebase = Timebase::new(clock_hz).ok_or(MapError::ClockRate("video"))?;
        if self.tracks.video.is_none() || !(self.started || keyframe) {
            return Ok(None);
        }
        self.started = true;
        let t = MediaTime::new(ticks, timebase);
        Ok(Some(Frame { track: TrackId::VIDEO, pts: t, dts: t, keyframe, payload }))
    }

    /// An audio access unit at `ticks` of its `clock_hz` (the sample rate) clock.
    pub fn audio(&mut self, ticks: i64, clock_hz: u32, payload: Bytes) -> Result<Option<Frame>, MapError> {
        let timebase = Timebase::new(clock_hz).ok_or(MapError::ClockRate("audio"))?;
        if self.tracks.audio.is_none() || (self.has_video && !self.started) {
            return Ok(None);
        }
        self.started = true;
        let t = MediaTime::new(ticks, timebase);
        Ok(Some(Frame { track: TrackId::AUDIO, pts: t, dts: t, keyframe: true, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc() -> Vec<u8> {
        use rill_media::testing::{PPS, SPS_720P_HIGH};
        rill_media::avc::DecoderConfigRecord::build(&SPS_720P_HIGH, &PPS).unwrap().to_vec()
    }

    #[test]
    fn chooses_what_the_bus_can_carry() {
        assert_eq!(choose("video", "h264"), Choice::Video(VideoCodec::H264));
        assert_eq!(choose("video", "h265"), Choice::Video(VideoCodec::H265));
        assert_eq!(choose("audio", "mpeg4-generic"), Choice::Aac);
        assert!(matches!(choose("audio", "pcmu"), Choice::Ignore(r) if r.contains("G.711")));
        assert!(matches!(choose("application", "vnd.onvif.metadata"), Choice::Ignore(_)));
    }

    #[test]
    fn configs_from_parameters() {
        let CodecConfig::Avc(avc) = video_config(VideoCodec::H264, &avcc()).unwrap() else { panic!() };
        assert_eq!((avc.sps.width, avc.sps.height), (1280, 720));
        assert!(matches!(video_config(VideoCodec::H264, &[]), Err(MapError::NoParameters("video"))));
        assert!(video_config(VideoCodec::H264, &[1, 2, 3]).is_err());
        let CodecConfig::Aac(aac) = aac_config(&[0x11, 0x90]).unwrap() else { panic!() };
        assert_eq!((aac.info.sample_rate, aac.info.channels), (48_000, 2));
    }

    #[test]
    fn starts_on_a_keyframe_with_audio_after_video() {
        let mut m = FrameMapper::new(true);
        assert!(m.video(0, 90_000, true, Bytes::new()).unwrap().is_none(), "no config yet");
        m.set_audio(aac_config(&[0x11, 0x90]).unwrap());
        m.set_video(video_config(VideoCodec::H264, &avcc()).unwrap());
        assert!(m.take_changed_tracks().is_some_and(|t| t.video.is_some() && t.audio.is_some()));
        assert!(m.take_changed_tracks().is_none(), "reported once");
        assert!(m.audio(0, 48_000, Bytes::new()).unwrap().is_none(), "audio waits for the first picture");
        assert!(m.video(3000, 90_000, false, Bytes::new()).unwrap().is_none(), "waits for a keyframe");
        let key = m.video(6000, 90_000, true, Bytes::from_static(b"idr")).unwrap().unwrap();
        assert_eq!((key.pts.as_millis(), key.keyframe, key.track), (66, true, TrackId::VIDEO));
        assert!(m.video(9000, 90_000, false, Bytes::new()).unwrap().is_some());
        let audio = m.audio(4800, 48_000, Bytes::new()).unwrap().unwrap();
        assert_eq!((audio.dts.as_millis(), audio.track), (100, TrackId::AUDIO));
        m.set_video(video_config(VideoCodec::H264, &avcc()).unwrap());
        assert!(m.take_changed_tracks().is_none(), "same parameters are no change");
        assert!(matches!(m.video(0, 0, true, Bytes::new()), Err(MapError::ClockRate("video"))));
    }

    #[test]
    fn audio_only_cameras_start_at_once() {
        let mut m = FrameMapper::new(false);
        m.set_audio(aac_config(&[0x11, 0x90]).unwrap());
        assert!(m.audio(0, 48_000, Bytes::new()).unwrap().is_some());
    }
}
