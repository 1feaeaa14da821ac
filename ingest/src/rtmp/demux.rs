//! Turns a publisher's RTMP audio/video message bodies (FLV tag bodies) into the Bus's
//! [`Tracks`] and [`Frame`]s. This is the one place RTMP's 32-bit timestamps are unwrapped.

use bytes::Bytes;
use rill_media::flv::{self, AudioTag, AvcPacket, FlvError, VideoTag};
use rill_media::{AacConfig, AvcConfig, CodecConfig, Frame, MediaTime, TrackId, Tracks};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DemuxError {
    #[error(transparent)]
    Flv(#[from] FlvError),
    #[error("bad AVC sequence header: {0}")]
    AvcConfig(#[from] rill_media::avc::AvcError),
    #[error("bad AAC sequence header: {0}")]
    AacConfig(#[from] rill_media::aac::AacError),
}

/// Something a publisher sent that Rill drops, reported once per kind so logs stay readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupported {
    VideoCodec(String),
    AudioFormat(u8),
    FrameBeforeSequenceHeader(&'static str),
}

/// Unwraps 32-bit millisecond timestamps into a monotonic-ish 64-bit timeline. Small backward
/// steps (B-frame-less encoders do jitter) are kept as such; a wrap past 2³² continues forward.
#[derive(Debug, Default)]
pub struct TimestampUnwrapper {
    last: Option<(u32, i64)>,
}

impl TimestampUnwrapper {
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let value = match self.last {
            None => ts as i64,
            Some((raw, value)) => value + ts.wrapping_sub(raw) as i32 as i64,
        };
        self.last = Some((ts, value));
        value
    }
}

/// What [`MediaDemuxer`] produced from one message.
#[derive(Debug)]
pub enum Demuxed {
    Frame(Frame),
    /// Configuration only (sequence header, metadata): nothing to push yet.
    Config,
    Dropped(Unsupported),
}

/// Sans-IO FLV demuxer for one publishing session.
#[derive(Default)]
pub struct MediaDemuxer {
    tracks: Tracks,
    clock: TimestampUnwrapper,
    reported: Vec<Unsupported>,
}

impl MediaDemuxer {
    pub fn tracks(&self) -> &Tracks {
        &self.tracks
    }

    pub fn set_encoder(&mut self, encoder: Option<String>) {
        self.tracks.encoder = encoder;
    }

    pub fn video(&mut self, timestamp: u32, body: &Bytes) -> Result<Demuxed, DemuxError> {
        let dts = self.clock.unwrap(timestamp);
        match flv::parse_video(body)? {
            VideoTag::Avc { packet: AvcPacket::SequenceHeader(record), .. } => {
                self.tracks.video = Some(CodecConfig::Avc(AvcConfig::from_record(record)?));
                Ok(Demuxed::Config)
            }
            VideoTag::Avc { keyframe, packet: AvcPacket::Nalus { composition_time_ms, data } } => {
                if !matches!(self.tracks.video, Some(CodecConfig::Avc(_))) {
                    return Ok(self.drop(Unsupported::FrameBeforeSequenceHeader("video")));
                }
                Ok(Demuxed::Frame(Frame {
                    track: TrackId::VIDEO,
                    pts: MediaTime::from_millis(dts + composition_time_ms as i64),
                    dts: MediaTime::from_millis(dts),
                    keyframe,
                    payload: data,
                }))
            }
            VideoTag::Avc { packet: AvcPacket::EndOfSequence, .. } | VideoTag::Command => Ok(Demuxed::Config),
            VideoTag::Enhanced { fourcc, .. } => {
                Ok(self.drop(Unsupported::VideoCodec(String::from_utf8_lossy(&fourcc).into_owned())))
            }
            VideoTag::Unsupported { codec_id } => {
                Ok(self.drop(Unsupported::VideoCodec(format!("FLV codec id {codec_id}"))))
            }
        }
    }

    pub fn audio(&mut self, timestamp: u32, body: &Bytes) -> Result<Demuxed, DemuxError> {
        let dts = self.clock.unwrap(timestamp);
        match flv::parse_audio(body)? {
            AudioTag::AacSequenceHeader(asc) => {
                self.tracks.audio = Some(CodecConfig::Aac(AacConfig::from_asc(asc)?));
                Ok(Demuxed::Config)
            }
            AudioTag::AacRaw(data) => {
                if !matches!(self.tracks.audio, Some(CodecConfig::Aac(_))) {
                    return Ok(self.drop(Unsupported::FrameBeforeSequenceHeader("audio")));
                }
                let time = MediaTime::from_millis(dts);
                Ok(Demuxed::Frame(Frame { track: TrackId::AUDIO, pts: time, dts: time, keyframe: true, payload: data }))
            }
            AudioTag::Unsupported { sound_format } => Ok(self.drop(Unsupported::AudioFormat(sound_format))),
        }
    }

    /// Returns `Dropped` and remembers the kind; the caller logs only first occurrences
    /// (see [`Self::first_time`]).
    fn drop(&mut self, what: Unsupported) -> Demuxed {
        Demuxed::Dropped(what)
    }

    /// True the first time `what` is seen in this session (for at most 8 kinds: a hostile
    /// publisher cycling through made-up codecs gets neither memory nor log lines from it).
    pub fn first_time(&mut self, what: &Unsupported) -> bool {
        if self.reported.len() >= 8 || self.reported.contains(what) {
            return false;
        }
        self.reported.push(what.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_32_bit_wrap_and_jitter() {
        let mut c = TimestampUnwrapper::default();
        assert_eq!(c.unwrap(u32::MAX - 10), u32::MAX as i64 - 10);
        assert_eq!(c.unwrap(5), u32::MAX as i64 + 6);
        assert_eq!(c.unwrap(3), u32::MAX as i64 + 4);
    }

    #[test]
    fn frames_need_a_sequence_header_first() {
        let mut d = MediaDemuxer::default();
        let nalu = Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]);
        assert!(matches!(
            d.video(0, &nalu).unwrap(),
            Demuxed::Dropped(Unsupported::FrameBeforeSequenceHeader("video"))
        ));
        let asc = Bytes::from_static(&[0xaf, 0, 0x12, 0x10]);
        assert!(matches!(d.audio(0, &asc).unwrap(), Demuxed::Config));
        let raw = Bytes::from_static(&[0xaf, 1, 0x21]);
        match d.audio(23, &raw).unwrap() {
            Demuxed::Frame(f) => {
                assert_eq!(f.dts.as_millis(), 23);
                assert_eq!(f.payload.as_ptr(), raw[2..].as_ptr());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn enhanced_rtmp_is_reported_once() {
        let mut d = MediaDemuxer::default();
        let tag = Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1', 0]);
        let Demuxed::Dropped(what) = d.video(0, &tag).unwrap() else { panic!() };
        assert_eq!(what, Unsupported::VideoCodec("hvc1".into()));
        assert!(d.first_time(&what));
        assert!(!d.first_time(&what));
        let made_up = (0..1000).filter(|i| d.first_time(&Unsupported::VideoCodec(format!("x{i}")))).count();
        assert_eq!(made_up, 7, "reports stop after 8 kinds");
    }
}
