//! An FLV file (as `ffmpeg -f flv` writes it) read into what an RTMP publisher puts on the Bus:
//! [`Tracks`] from the sequence headers and [`Frame`]s in file order with millisecond times.
//! For tests, examples and benchmarks; live ingest parses tags in `rill-ingest`.

use crate::TranscodeError;
use bytes::Bytes;
use rill_media::flv::{parse_audio, parse_video, AudioTag, AvcPacket, VideoTag};
use rill_media::{AacConfig, AvcConfig, CodecConfig, Frame, MediaTime, TrackId, Tracks};

/// The tracks and frames of an FLV file holding H.264 and/or AAC.
pub fn read(data: Bytes) -> Result<(Tracks, Vec<Frame>), TranscodeError> {
    let bad = |m: &str| TranscodeError::Flv(m.to_string());
    if data.len() < 13 || &data[..3] != b"FLV" {
        return Err(bad("no FLV header"));
    }
    let header_len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    let mut at = header_len + 4;
    let mut tracks = Tracks::default();
    let mut frames = Vec::new();
    while at + 11 <= data.len() {
        let tag_type = data[at];
        let size = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let ts = u32::from_be_bytes([data[at + 7], data[at + 4], data[at + 5], data[at + 6]]) as i64;
        let body_at = at + 11;
        if body_at + size > data.len() {
            break; // a truncated last tag
        }
        let body = data.slice(body_at..body_at + size);
        at = body_at + size + 4;
        match tag_type {
            9 => match parse_video(&body).map_err(|e| TranscodeError::Flv(e.to_string()))? {
                VideoTag::Avc { packet: AvcPacket::SequenceHeader(record), .. } => {
                    let config = AvcConfig::from_record(record).map_err(|e| TranscodeError::Flv(e.to_string()))?;
                    tracks.video = Some(CodecConfig::Avc(config));
                }
                VideoTag::Avc { keyframe, packet: AvcPacket::Nalus { composition_time_ms, data } } => {
                    frames.push(Frame {
                        track: TrackId::VIDEO,
                        pts: MediaTime::from_millis(ts + composition_time_ms as i64),
                        dts: MediaTime::from_millis(ts),
                        keyframe,
                        payload: data,
                    });
                }
                _ => {}
            },
            8 => match parse_audio(&body).map_err(|e| TranscodeError::Flv(e.to_string()))? {
                AudioTag::AacSequenceHeader(asc) => {
                    let config = AacConfig::from_asc(asc).map_err(|e| TranscodeError::Flv(e.to_string()))?;
                    tracks.audio = Some(CodecConfig::Aac(config));
                }
                AudioTag::AacRaw(payload) => {
                    let t = MediaTime::from_millis(ts);
                    frames.push(Frame { track: TrackId::AUDIO, pts: t, dts: t, keyframe: true, payload });
                }
                AudioTag::Unsupported { .. } => {}
            },
            _ => {}
        }
    }
    if tracks.video.is_none() && tracks.audio.is_none() {
        return Err(bad("no H.264 or AAC sequence header"));
    }
    Ok((tracks, frames))
}
