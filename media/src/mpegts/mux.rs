//! Sans-IO MPEG-TS muxer: Bus [`Frame`]s → 188-byte packets. One program (PMT PID 0x1000),
//! video on PID 0x100 (H.264 or HEVC, Annex B with an AUD and the parameter sets before every
//! keyframe, PCR on its PES), audio on PID 0x101 (AAC as ADTS, or Opus with its TS control
//! header). PAT/PMT precede every keyframe (every 40 audio frames in audio-only streams).

use super::{crc32, stream_type, PACKET_SIZE, SYNC_BYTE};
use crate::aac::{AacError, AdtsHeader};
use crate::avc::{avcc_nalus, AvcError, DecoderConfigRecord};
use crate::hevc::{self, HevcError};
use crate::track::{CodecConfig, Tracks};
use crate::{Frame, Timebase, TrackId};
use bytes::{BufMut, BytesMut};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MuxError {
    #[error("MPEG-TS cannot carry {0} here")]
    Unsupported(&'static str),
    #[error("frame before tracks")]
    NoTracks,
    #[error(transparent)]
    Avc(#[from] AvcError),
    #[error(transparent)]
    Hevc(#[from] HevcError),
    #[error(transparent)]
    Aac(#[from] AacError),
}

const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;
/// Timestamps are shifted by one second so a stream starting at 0 keeps PCR ≤ DTS.
const TS_OFFSET: i64 = 90_000;
/// PCR runs this far behind DTS (the decoder's buffering allowance).
const PCR_DELAY: i64 = 45_000;

/// Muxes one stream. Call [`TsMuxer::set_tracks`] first and again when the tracks change.
#[derive(Default)]
pub struct TsMuxer {
    tracks: Option<Tracks>,
    /// Annex B parameter sets (AUD first) written before each keyframe.
    video_prefix: Vec<u8>,
    video_length_size: u8,
    cc: [u8; 4],
    psi_due: bool,
    audio_since_psi: u32,
    pes: Vec<u8>,
}

impl TsMuxer {
    pub fn set_tracks(&mut self, tracks: &Tracks) -> Result<(), MuxError> {
        self.video_prefix.clear();
        match &tracks.video {
            None => {}
            Some(CodecConfig::Avc(c)) => {
                let record = DecoderConfigRecord::parse(&c.record)?;
                self.video_prefix.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]);
                for set in record.sps.iter().chain(&record.pps) {
                    self.video_prefix.extend_from_slice(&[0, 0, 0, 1]);
                    self.video_prefix.extend_from_slice(set);
                }
                self.video_length_size = record.nalu_length_size;
            }
            Some(CodecConfig::Hevc { record }) => {
                let (length_size, sets) = hevc::record_nalus(record)?;
                self.video_prefix.extend_from_slice(&[0, 0, 0, 1, hevc::nal::AUD << 1, 0x01, 0x50]);
                for set in sets {
                    self.video_prefix.extend_from_slice(&[0, 0, 0, 1]);
                    self.video_prefix.extend_from_slice(set);
                }
                self.video_length_size = length_size;
            }
            Some(other) => return Err(MuxError::Unsupported(other.name())),
        }
        match &tracks.audio {
            None | Some(CodecConfig::Aac(_)) | Some(CodecConfig::Opus { .. }) => {}
            Some(other) => return Err(MuxError::Unsupported(other.name())),
        }
        self.tracks = Some(tracks.clone());
        self.psi_due = true;
        Ok(())
    }

    /// Appends the packets of `frame` (and PAT/PMT when due) to `out`.
    pub fn push(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), MuxError> {
        let tracks = self.tracks.as_ref().ok_or(MuxError::NoTracks)?;
        let video = frame.track == TrackId::VIDEO;
        let codec = if video { &tracks.video } else { &tracks.audio };
        let Some(codec) = codec.clone() else { return Ok(()) };
        let has_video = tracks.video.is_some();
        if (video && frame.keyframe) || (!has_video && self.audio_since_psi >= 40) || self.psi_due {
            self.write_psi(out);
        }
        let dts = frame.dts.rescale(Timebase::MPEG).ticks() + TS_OFFSET;
        let pts = frame.pts.rescale(Timebase::MPEG).ticks().max(dts - TS_OFFSET) + TS_OFFSET;
        self.pes.clear();
        let stream_id = match codec {
            CodecConfig::Avc(_) | CodecConfig::Hevc { .. } => 0xe0,
            CodecConfig::Aac(_) => 0xc0,
            _ => 0xbd,
        };
        let with_dts = video && pts != dts;
        self.pes.extend_from_slice(&[0, 0, 1, stream_id, 0, 0, 0x80, if with_dts { 0xc0 } else { 0x80 }]);
        self.pes.push(if with_dts { 10 } else { 5 });
        put_ts(&mut self.pes, if with_dts { 0x3 } else { 0x2 }, pts);
        if with_dts {
            put_ts(&mut self.pes, 0x1, dts);
        }
        match &codec {
            CodecConfig::Avc(_) | CodecConfig::Hevc { .. } => {
                if frame.keyframe {
                    self.pes.extend_from_slice(&self.video_prefix);
                } else if matches!(codec, CodecConfig::Avc(_)) {
                    self.pes.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]);
                } else {
                    self.pes.extend_from_slice(&[0, 0, 0, 1, hevc::nal::AUD << 1, 0x01, 0x50]);
                }
                for nalu in avcc_nalus(&frame.payload, self.video_length_size) {
                    self.pes.extend_from_slice(&[0, 0, 0, 1]);
                    self.pes.extend_from_slice(nalu?);
                }
            }
            CodecConfig::Aac(c) => {
                self.pes.extend_from_slice(&AdtsHeader::write(&c.info, frame.payload.len())?);
                self.pes.extend_from_slice(&frame.payload);
            }
            _ => {
                self.pes.extend_from_slice(&[0x7f, 0xe0]);
                let mut n = frame.payload.len();
                while n >= 255 {
                    self.pes.push(0xff);
                    n -= 255;
                }
                self.pes.push(n as u8);
                self.pes.extend_from_slice(&frame.payload);
            }
        }
        let len = self.pes.len() - 6;
        if len <= 0xffff {
            self.pes[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        }
        if !video {
            self.audio_since_psi += 1;
        }
        let pcr = (video || !has_video).then_some(dts - PCR_DELAY);
        let pid = if video { VIDEO_PID } else { AUDIO_PID };
        let cc = &mut self.cc[if video { 2 } else { 3 }];
        packetize(out, pid, cc, &self.pes, pcr, frame.keyframe && video);
        Ok(())
    }

    fn write_psi(&mut self, out: &mut BytesMut) {
        self.psi_due = false;
        self.audio_since_psi = 0;
        let Some(tracks) = &self.tracks else { return };
        let mut pat = vec![0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01];
        pat.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
        section(out, 0, &mut self.cc[0], pat);
        let pcr_pid = if tracks.video.is_some() { VIDEO_PID } else { AUDIO_PID };
        let mut pmt = vec![0x02, 0xb0, 0x00, 0x00, 0x01, 0xc1, 0x00, 0x00];
        pmt.extend_from_slice(&(0xe000 | pcr_pid).to_be_bytes());
        pmt.extend_from_slice(&[0xf0, 0x00]);
        let mut es = |st: u8, pid: u16, descriptors: &[u8]| {
            pmt.push(st);
            pmt.extend_from_slice(&(0xe000 | pid).to_be_bytes());
            pmt.extend_from_slice(&(0xf000 | descriptors.len() as u16).to_be_bytes());
            pmt.extend_from_slice(descriptors);
        };
        match &tracks.video {
            Some(CodecConfig::Avc(_)) => es(stream_type::AVC, VIDEO_PID, &[]),
            Some(CodecConfig::Hevc { .. }) => es(stream_type::HEVC, VIDEO_PID, &[]),
            _ => {}
        }
        match &tracks.audio {
            Some(CodecConfig::Aac(_)) => es(stream_type::AAC_ADTS, AUDIO_PID, &[]),
            Some(CodecConfig::Opus { channels, .. }) => es(
                stream_type::PRIVATE,
                AUDIO_PID,
                &[0x05, 4, b'O', b'p', b'u', b's', 0x7f, 2, 0x80, (*channels).clamp(1, 8)],
            ),
            _ => {}
        }
        let len = pmt.len() - 3 + 4;
        pmt[1] = 0xb0 | (len >> 8) as u8;
        pmt[2] = len as u8;
        section(out, PMT_PID, &mut self.cc[1], pmt);
    }
}

/// A PTS/DTS field: 4-bit prefix, 33 bits with marker bits.
fn put_ts(out: &mut Vec<u8>, prefix: u8, ts: i64) {
    let ts = ts as u64 & ((1 << 33) - 1);
    out.extend_from_slice(&[
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8 & 0x7f) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8 & 0x7f) << 1) | 1,
    ]);
}

/// One PSI section (CRC appended) in one packet.
fn section(out: &mut BytesMut, pid: u16, cc: &mut u8, mut body: Vec<u8>) {
    let crc = crc32(&body);
    body.extend_from_slice(&crc.to_be_bytes());
    out.put_slice(&[SYNC_BYTE, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | *cc, 0x00]);
    *cc = (*cc + 1) & 0x0f;
    out.put_slice(&body);
    out.put_bytes(0xff, PACKET_SIZE - 5 - body.len());
}

/// Splits a PES into packets; the first carries the PCR and the random access flag.
fn packetize(out: &mut BytesMut, pid: u16, cc: &mut u8, pes: &[u8], pcr: Option<i64>, random_access: bool) {
    let mut rest = pes;
    let mut first = true;
    out.reserve((pes.len() / 184 + 1) * PACKET_SIZE);
    while !rest.is_empty() {
        let mut af = [0u8; 184];
        let mut af_len: Option<usize> = None; // bytes after the length byte
        if first && (pcr.is_some() || random_access) {
            af[0] = if random_access { 0x40 } else { 0 };
            af_len = Some(1);
            if let Some(pcr) = pcr {
                let base = pcr.max(0) as u64 & ((1 << 33) - 1);
                af[0] |= 0x10;
                af[1..7].copy_from_slice(&[
                    (base >> 25) as u8,
                    (base >> 17) as u8,
                    (base >> 9) as u8,
                    (base >> 1) as u8,
                    ((base as u8 & 1) << 7) | 0x7e,
                    0,
                ]);
                af_len = Some(7);
            }
        }
        let room = 184 - af_len.map_or(0, |l| l + 1);
        if rest.len() < room {
            let stuffing = room - rest.len();
            af_len = Some(match af_len {
                Some(l) => {
                    af[l..l + stuffing].fill(0xff);
                    l + stuffing
                }
                None if stuffing == 1 => 0,
                None => {
                    af[0] = 0;
                    af[1..stuffing - 1].fill(0xff);
                    stuffing - 1
                }
            });
        }
        let n = 184 - af_len.map_or(0, |l| l + 1);
        let afc = if af_len.is_some() { 0x30 } else { 0x10 };
        out.put_slice(&[SYNC_BYTE, if first { 0x40 } else { 0 } | (pid >> 8) as u8, pid as u8, afc | *cc]);
        *cc = (*cc + 1) & 0x0f;
        if let Some(l) = af_len {
            out.put_u8(l as u8);
            out.put_slice(&af[..l]);
        }
        out.put_slice(&rest[..n]);
        rest = &rest[n..];
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::avc_aac_tracks;
    use crate::MediaTime;
    use bytes::Bytes;

    #[test]
    fn packets_are_whole_and_start_with_psi() {
        let mut m = TsMuxer::default();
        m.set_tracks(&avc_aac_tracks(true)).unwrap();
        let mut out = BytesMut::new();
        for size in [1usize, 170, 171, 176, 177, 183, 184, 185, 5000] {
            let frame = Frame {
                track: TrackId::VIDEO,
                pts: MediaTime::from_millis(0),
                dts: MediaTime::from_millis(0),
                keyframe: true,
                payload: {
                    let mut p = (size as u32).to_be_bytes().to_vec();
                    p.push(0x65);
                    p.extend(std::iter::repeat_n(0xaa, size - 1));
                    Bytes::from(p)
                },
            };
            out.clear();
            m.push(&frame, &mut out).unwrap();
            assert_eq!(out.len() % PACKET_SIZE, 0, "size {size}");
            assert!(out.chunks(PACKET_SIZE).all(|p| p[0] == SYNC_BYTE));
            assert_eq!(&out[1..3], &[0x40, 0x00], "PAT first");
        }
        let mut m = TsMuxer::default();
        let mut tracks = avc_aac_tracks(false);
        tracks.video = Some(CodecConfig::Av1 { record: Bytes::new() });
        assert!(matches!(m.set_tracks(&tracks), Err(MuxError::Unsupported("av1"))));
    }
}
