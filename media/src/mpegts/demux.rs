//! Sans-IO MPEG-TS demuxer: bytes in any chunking → [`TsEvent`]s (tracks, then frames).
//!
//! Reads the PAT and the PMT (single-packet sections, which is what encoders send), takes the
//! first video (H.264, HEVC) and the first audio (AAC in ADTS, Opus) elementary stream, and
//! reassembles PES packets into the Bus's frame format: H.264/HEVC Annex B → 4-byte length
//! prefixed NAL units with the parameter sets moved into the decoder configuration record; AAC
//! ADTS → one raw frame per ADTS frame (payloads are slices of the PES, not copies); Opus access
//! units without their TS control header. Continuity errors drop the PES in progress and are
//! counted; nothing a peer sends can grow memory past one PES of `max_pes_bytes` per stream.

use super::{stream_type, PACKET_SIZE, SYNC_BYTE};
use crate::aac::AdtsHeader;
use crate::avc::{annexb_nalus, nal, DecoderConfigRecord};
use crate::hevc;
use crate::time::Unwrapper33;
use crate::track::{AacConfig, AvcConfig, CodecConfig, Tracks};
use crate::{Frame, MediaTime, Timebase, TrackId};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;

/// What the demuxer produced, in order.
#[derive(Debug, Clone)]
pub enum TsEvent {
    /// The tracks (first once every announced stream is configured, again on any change).
    Tracks(Tracks),
    Frame(Frame),
}

/// Counters a driver reports (metrics, logs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DemuxStats {
    pub packets: u64,
    /// Bytes skipped to find the next sync byte.
    pub sync_losses: u64,
    pub continuity_errors: u64,
    /// Malformed PES headers, oversized PES, bad ADTS/Opus framing, bad parameter sets.
    pub pes_errors: u64,
    /// Frames dropped before their codec configuration was known.
    pub dropped_frames: u64,
}

/// Largest PES a stream may accumulate (a 4K keyframe fits comfortably).
pub const DEFAULT_MAX_PES_BYTES: usize = 8 << 20;
/// Frames held while waiting for every announced stream's configuration.
const MAX_HELD_FRAMES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Avc,
    Hevc,
    Aac,
    Opus { channels: u8 },
}

#[derive(Debug)]
struct Es {
    pid: u16,
    kind: Kind,
    cc: Option<u8>,
    buf: BytesMut,
    /// A PES is being assembled (false after an error until the next unit start).
    open: bool,
    /// Payload bytes the PES header announced (0: unbounded, video).
    expected: usize,
    pts: Option<u64>,
    dts: Option<u64>,
}

/// The demuxer of one incoming transport stream.
pub struct TsDemuxer {
    partial: Vec<u8>,
    pmt_pid: Option<u16>,
    streams: Vec<Es>,
    timeline: Unwrapper33,
    tracks: Tracks,
    /// Tracks were announced (every stream configured, or the hold overflowed).
    announced: bool,
    held: Vec<Frame>,
    param_sets: [Option<Bytes>; 3],
    out: VecDeque<TsEvent>,
    stats: DemuxStats,
    max_pes: usize,
}

impl Default for TsDemuxer {
    fn default() -> Self {
        TsDemuxer::new(DEFAULT_MAX_PES_BYTES)
    }
}

impl TsDemuxer {
    pub fn new(max_pes_bytes: usize) -> Self {
        TsDemuxer {
            partial: Vec::with_capacity(PACKET_SIZE),
            pmt_pid: None,
            streams: Vec::new(),
            timeline: Unwrapper33::default(),
            tracks: Tracks::default(),
            announced: false,
            held: Vec::new(),
            param_sets: [None, None, None],
            out: VecDeque::new(),
            stats: DemuxStats::default(),
            max_pes: max_pes_bytes,
        }
    }

    pub fn stats(&self) -> &DemuxStats {
        &self.stats
    }

    pub fn tracks(&self) -> &Tracks {
        &self.tracks
    }

    /// Feeds bytes (any chunking; SRT delivers seven packets per message).
    pub fn push(&mut self, mut data: &[u8]) {
        if !self.partial.is_empty() {
            let need = PACKET_SIZE - self.partial.len();
            let take = need.min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < PACKET_SIZE {
                return;
            }
            let packet: [u8; PACKET_SIZE] = self.partial[..].try_into().expect("one packet");
            self.partial.clear();
            self.packet(&packet);
        }
        while !data.is_empty() {
            if data[0] != SYNC_BYTE {
                // Resynchronise on a sync byte that the next packet's confirms (when this push
                // holds it): 0x47 is common inside payloads, and a false start would keep the
                // demuxer misaligned, packet after packet.
                let confirmed = |i: usize| data.get(i + PACKET_SIZE).is_none_or(|&b| b == SYNC_BYTE);
                let skip = (1..data.len()).find(|&i| data[i] == SYNC_BYTE && confirmed(i)).unwrap_or(data.len());
                self.stats.sync_losses += skip as u64;
                data = &data[skip..];
                continue;
            }
            if data.len() < PACKET_SIZE {
                self.partial.extend_from_slice(data);
                return;
            }
            let (packet, rest) = data.split_at(PACKET_SIZE);
            self.packet(packet);
            data = rest;
        }
    }

    /// Completes PES packets still open (end of stream).
    pub fn flush(&mut self) {
        for i in 0..self.streams.len() {
            self.finish_pes(i);
        }
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll(&mut self) -> Option<TsEvent> {
        self.out.pop_front()
    }

    fn packet(&mut self, p: &[u8]) {
        self.stats.packets += 1;
        if p[1] & 0x80 != 0 {
            self.stats.pes_errors += 1; // transport_error_indicator
            return;
        }
        let unit_start = p[1] & 0x40 != 0;
        let pid = (((p[1] & 0x1f) as u16) << 8) | p[2] as u16;
        let afc = (p[3] >> 4) & 0x03;
        let cc = p[3] & 0x0f;
        let mut start = 4;
        if afc & 0x02 != 0 {
            start = 5 + p[4] as usize;
        }
        if afc & 0x01 == 0 || start > PACKET_SIZE {
            return;
        }
        let payload = &p[start..];
        if pid == 0 {
            if unit_start {
                self.pat(payload);
            }
        } else if Some(pid) == self.pmt_pid {
            if unit_start {
                self.pmt(payload);
            }
        } else if let Some(i) = self.streams.iter().position(|s| s.pid == pid) {
            self.es_packet(i, unit_start, cc, payload);
        }
    }

    /// The section after the pointer field, bounded by its `section_length` (CRC excluded).
    fn section(payload: &[u8], table_id: u8) -> Option<&[u8]> {
        let pointer = *payload.first()? as usize;
        let s = payload.get(1 + pointer..)?;
        if *s.first()? != table_id || s.len() < 3 {
            return None;
        }
        let len = (((s[1] & 0x0f) as usize) << 8) | s[2] as usize;
        if len < 9 {
            return None;
        }
        let whole = s.get(..3 + len)?;
        if super::crc32(whole) != 0 {
            return None;
        }
        Some(&whole[..3 + len - 4])
    }

    fn pat(&mut self, payload: &[u8]) {
        let Some(s) = Self::section(payload, 0x00) else {
            self.stats.pes_errors += 1;
            return;
        };
        for entry in s[8..].chunks_exact(4) {
            let program = u16::from_be_bytes([entry[0], entry[1]]);
            if program != 0 {
                self.pmt_pid = Some((((entry[2] & 0x1f) as u16) << 8) | entry[3] as u16);
                return;
            }
        }
    }

    fn pmt(&mut self, payload: &[u8]) {
        let Some(s) = Self::section(payload, 0x02) else {
            self.stats.pes_errors += 1;
            return;
        };
        if s.len() < 12 {
            return;
        }
        let info_len = (((s[10] & 0x0f) as usize) << 8) | s[11] as usize;
        let mut rest = s.get(12 + info_len..).unwrap_or_default();
        let (mut video, mut audio) = (None, None);
        while rest.len() >= 5 {
            let st = rest[0];
            let pid = (((rest[1] & 0x1f) as u16) << 8) | rest[2] as u16;
            let es_len = (((rest[3] & 0x0f) as usize) << 8) | rest[4] as usize;
            let descriptors = rest.get(5..5 + es_len).unwrap_or_default();
            rest = rest.get(5 + es_len..).unwrap_or_default();
            match st {
                stream_type::AVC if video.is_none() => video = Some((pid, Kind::Avc)),
                stream_type::HEVC if video.is_none() => video = Some((pid, Kind::Hevc)),
                stream_type::AAC_ADTS if audio.is_none() => audio = Some((pid, Kind::Aac)),
                stream_type::PRIVATE if audio.is_none() => {
                    if let Some(channels) = opus_descriptor(descriptors) {
                        audio = Some((pid, Kind::Opus { channels }));
                    }
                }
                _ => {}
            }
        }
        let wanted: Vec<(u16, Kind)> = video.into_iter().chain(audio).collect();
        let current: Vec<(u16, Kind)> = self.streams.iter().map(|s| (s.pid, s.kind)).collect();
        if wanted == current {
            return;
        }
        self.streams = wanted
            .into_iter()
            .map(|(pid, kind)| Es {
                pid,
                kind,
                cc: None,
                buf: BytesMut::new(),
                open: false,
                expected: 0,
                pts: None,
                dts: None,
            })
            .collect();
    }

    fn es_packet(&mut self, i: usize, unit_start: bool, cc: u8, payload: &[u8]) {
        let es = &mut self.streams[i];
        if let Some(prev) = es.cc {
            if cc == prev {
                return; // a duplicate packet (allowed once by the standard)
            }
            if cc != (prev + 1) & 0x0f {
                self.stats.continuity_errors += 1;
                es.open = false;
                es.buf.clear();
            }
        }
        es.cc = Some(cc);
        if unit_start {
            self.finish_pes(i);
            self.start_pes(i, payload);
        } else if self.streams[i].open {
            let es = &mut self.streams[i];
            if es.buf.len() + payload.len() > self.max_pes {
                self.stats.pes_errors += 1;
                es.open = false;
                es.buf = BytesMut::new();
                return;
            }
            es.buf.extend_from_slice(payload);
            if es.expected != 0 && es.buf.len() >= es.expected {
                self.finish_pes(i);
            }
        }
    }

    fn start_pes(&mut self, i: usize, p: &[u8]) {
        let es = &mut self.streams[i];
        es.buf.clear();
        es.open = false;
        if p.len() < 9 || p[..3] != [0, 0, 1] {
            self.stats.pes_errors += 1;
            return;
        }
        let pes_len = u16::from_be_bytes([p[4], p[5]]) as usize;
        let header_len = 9 + p[8] as usize;
        let flags = p[7] >> 6;
        let ts = |at: usize| -> Option<u64> {
            let b = p.get(at..at + 5)?;
            Some(
                (((b[0] >> 1) & 0x07) as u64) << 30
                    | (b[1] as u64) << 22
                    | ((b[2] >> 1) as u64) << 15
                    | (b[3] as u64) << 7
                    | (b[4] >> 1) as u64,
            )
        };
        let pts = if flags & 0x02 != 0 { ts(9) } else { None };
        let dts = if flags == 0x03 { ts(14) } else { pts };
        if header_len > p.len() || (pes_len != 0 && pes_len + 6 < header_len) {
            self.stats.pes_errors += 1;
            return;
        }
        es.expected = if pes_len == 0 { 0 } else { pes_len + 6 - header_len };
        es.pts = pts;
        es.dts = dts;
        es.open = true;
        es.buf.extend_from_slice(&p[header_len..]);
        if es.expected != 0 && es.buf.len() >= es.expected {
            self.finish_pes(i);
        }
    }

    fn finish_pes(&mut self, i: usize) {
        let es = &mut self.streams[i];
        if !es.open {
            return;
        }
        es.open = false;
        let mut data = es.buf.split().freeze();
        if es.expected != 0 {
            data.truncate(es.expected);
        }
        let (kind, pts, dts) = (es.kind, es.pts, es.dts);
        let (Some(pts), Some(dts)) = (pts, dts) else {
            self.stats.pes_errors += 1; // a PES without a PTS cannot be placed in time
            return;
        };
        let dts = self.timeline.unwrap(dts);
        let pts = self.timeline.unwrap(pts);
        let t = |ticks: i64| MediaTime::new(ticks, Timebase::MPEG);
        match kind {
            Kind::Avc | Kind::Hevc => self.video(kind, data, t(pts), t(dts)),
            Kind::Aac => self.aac(data, pts),
            Kind::Opus { channels } => self.opus(data, pts, channels),
        }
    }

    fn video(&mut self, kind: Kind, data: Bytes, pts: MediaTime, dts: MediaTime) {
        let mut avcc = BytesMut::with_capacity(data.len() + 16);
        let mut keyframe = false;
        let mut sets_changed = false;
        for nalu in annexb_nalus(&data) {
            if nalu.is_empty() {
                continue;
            }
            let slot = match kind {
                Kind::Avc => match nalu[0] & 0x1f {
                    nal::SPS => Some(1),
                    nal::PPS => Some(2),
                    nal::AUD => continue,
                    t => {
                        keyframe |= t == nal::IDR;
                        None
                    }
                },
                _ => match hevc::nal_type(nalu) {
                    Some(hevc::nal::VPS) => Some(0),
                    Some(hevc::nal::SPS) => Some(1),
                    Some(hevc::nal::PPS) => Some(2),
                    Some(hevc::nal::AUD) => continue,
                    Some(t) => {
                        keyframe |= hevc::nal::is_irap(t);
                        None
                    }
                    None => None,
                },
            };
            match slot {
                Some(s) => {
                    if self.param_sets[s].as_deref() != Some(nalu) {
                        self.param_sets[s] = Some(Bytes::copy_from_slice(nalu));
                        sets_changed = true;
                    }
                }
                None => {
                    avcc.put_u32(nalu.len() as u32);
                    avcc.put_slice(nalu);
                }
            }
        }
        if sets_changed {
            let [vps, sps, pps] = &self.param_sets;
            let config = match (kind, vps, sps, pps) {
                (Kind::Avc, _, Some(sps), Some(pps)) => DecoderConfigRecord::build(sps, pps)
                    .ok()
                    .and_then(|r| AvcConfig::from_record(r).ok())
                    .map(CodecConfig::Avc),
                (Kind::Hevc, Some(vps), Some(sps), Some(pps)) => {
                    hevc::build_record(vps, sps, pps).ok().map(|record| CodecConfig::Hevc { record })
                }
                _ => None,
            };
            match config {
                Some(c) => self.set_config(true, c),
                None if sps.is_some() && pps.is_some() => self.stats.pes_errors += 1,
                None => {}
            }
        }
        if avcc.is_empty() {
            return;
        }
        let frame = Frame { track: TrackId::VIDEO, pts, dts, keyframe, payload: avcc.freeze() };
        self.emit(frame);
    }

    fn aac(&mut self, data: Bytes, pts: i64) {
        let mut pos = 0;
        let mut n = 0i64;
        while pos < data.len() {
            let header = match AdtsHeader::parse(&data[pos..]) {
                Ok(h) if pos + h.frame_len <= data.len() => h,
                _ => {
                    self.stats.pes_errors += 1;
                    return;
                }
            };
            let asc = header.audio_specific_config();
            if !matches!(&self.tracks.audio, Some(CodecConfig::Aac(c)) if c.asc[..] == asc[..]) {
                match AacConfig::from_asc(Bytes::copy_from_slice(&asc)) {
                    Ok(c) => self.set_config(false, CodecConfig::Aac(c)),
                    Err(_) => {
                        self.stats.pes_errors += 1;
                        return;
                    }
                }
            }
            let t = MediaTime::new(pts + n * 1024 * 90_000 / header.sample_rate() as i64, Timebase::MPEG);
            let payload = data.slice(pos + header.header_len..pos + header.frame_len);
            pos += header.frame_len;
            n += 1;
            self.emit(Frame { track: TrackId::AUDIO, pts: t, dts: t, keyframe: true, payload });
        }
    }

    fn opus(&mut self, data: Bytes, pts: i64, channels: u8) {
        let config = CodecConfig::Opus { channels, sample_rate: 48_000 };
        if self.tracks.audio.as_ref() != Some(&config) {
            self.set_config(false, config);
        }
        let mut pos = 0;
        let mut at = pts;
        while pos < data.len() {
            let Some((start, size)) = opus_control_header(&data[pos..]) else {
                self.stats.pes_errors += 1;
                return;
            };
            if pos + start + size > data.len() || size == 0 {
                self.stats.pes_errors += 1;
                return;
            }
            let payload = data.slice(pos + start..pos + start + size);
            pos += start + size;
            let t = MediaTime::new(at, Timebase::MPEG);
            at += opus_duration_90k(&payload);
            self.emit(Frame { track: TrackId::AUDIO, pts: t, dts: t, keyframe: true, payload });
        }
    }

    fn set_config(&mut self, video: bool, config: CodecConfig) {
        let slot = if video { &mut self.tracks.video } else { &mut self.tracks.audio };
        *slot = Some(config);
        if self.announced {
            self.out.push_back(TsEvent::Tracks(self.tracks.clone()));
        }
    }

    fn emit(&mut self, frame: Frame) {
        let configured = |video: bool| if video { self.tracks.video.is_some() } else { self.tracks.audio.is_some() };
        if !configured(frame.is_video()) {
            self.stats.dropped_frames += 1;
            return;
        }
        if self.announced {
            self.out.push_back(TsEvent::Frame(frame));
            return;
        }
        self.held.push(frame);
        let all = self.streams.iter().all(|s| configured(matches!(s.kind, Kind::Avc | Kind::Hevc)));
        if all || self.held.len() >= MAX_HELD_FRAMES {
            self.announced = true;
            self.out.push_back(TsEvent::Tracks(self.tracks.clone()));
            // Start at the first video keyframe when there is video; audio before it is kept.
            self.out.extend(self.held.drain(..).map(TsEvent::Frame));
        }
    }
}

/// Channels of an Opus stream from its PMT descriptors: a registration descriptor `Opus` and
/// the DVB extension descriptor 0x80 (channel_config_code; 2 when absent).
fn opus_descriptor(mut d: &[u8]) -> Option<u8> {
    let (mut opus, mut channels) = (false, 2);
    while d.len() >= 2 {
        let (tag, len) = (d[0], d[1] as usize);
        let body = d.get(2..2 + len)?;
        match tag {
            0x05 if body == b"Opus" => opus = true,
            0x7f if body.len() >= 2 && body[0] == 0x80 && (1..=8).contains(&body[1]) => channels = body[1],
            _ => {}
        }
        d = &d[2 + len..];
    }
    opus.then_some(channels)
}

/// The opus_control_header (ETSI TS 102 366 Annex…, "Opus in MPEG-TS"): its length and the
/// access unit size it announces.
fn opus_control_header(d: &[u8]) -> Option<(usize, usize)> {
    if d.len() < 2 || d[0] != 0x7f || d[1] & 0xe0 != 0xe0 {
        return None;
    }
    let flags = d[1];
    let mut pos = 2;
    let mut size = 0usize;
    loop {
        let b = *d.get(pos)?;
        pos += 1;
        size += b as usize;
        if b != 0xff {
            break;
        }
    }
    if flags & 0x10 != 0 {
        pos += 2; // start_trim
    }
    if flags & 0x08 != 0 {
        pos += 2; // end_trim
    }
    if flags & 0x04 != 0 {
        pos += 1 + *d.get(pos)? as usize;
    }
    Some((pos, size))
}

/// Duration of an Opus packet from its TOC byte (RFC 6716 §3.1), in 90 kHz ticks.
fn opus_duration_90k(packet: &[u8]) -> i64 {
    let Some(&toc) = packet.first() else { return 0 };
    let config = toc >> 3;
    // Frame length in units of 1/400 s (2.5 ms).
    let units: i64 = match config {
        0..=11 => [4, 8, 16, 24][(config % 4) as usize],
        12..=15 => [4, 8][(config % 2) as usize],
        _ => [1, 2, 4, 8][(config % 4) as usize],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(1, |b| (b & 0x3f) as i64),
    };
    units * frames * 225
}

#[cfg(test)]
mod tests {
    use super::super::mux::TsMuxer;
    use super::*;
    use crate::testing::avc_aac_tracks;

    fn frames(n: usize) -> Vec<Frame> {
        let mut v = Vec::new();
        for i in 0..n as i64 {
            let t = MediaTime::from_millis(i * 40);
            let key = i % 25 == 0;
            let nal_type = if key { 0x65 } else { 0x41 };
            let payload = Bytes::from(vec![0, 0, 0, 5, nal_type, 1, 2, 3, i as u8 | 0x80]);
            v.push(Frame {
                track: TrackId::VIDEO,
                pts: t + MediaTime::from_millis(80),
                dts: t,
                keyframe: key,
                payload,
            });
            let a = MediaTime::new(i * 3840, Timebase::MPEG);
            v.push(Frame {
                track: TrackId::AUDIO,
                pts: a,
                dts: a,
                keyframe: true,
                payload: Bytes::from(vec![0x21; 50]),
            });
        }
        v
    }

    fn mux(frames: &[Frame]) -> Vec<u8> {
        let tracks = avc_aac_tracks(true);
        let mut m = TsMuxer::default();
        m.set_tracks(&tracks).unwrap();
        let mut out = BytesMut::new();
        for f in frames {
            m.push(f, &mut out).unwrap();
        }
        out.to_vec()
    }

    fn demux_all(d: &mut TsDemuxer) -> (Vec<Tracks>, Vec<Frame>) {
        let (mut tracks, mut frames) = (Vec::new(), Vec::new());
        while let Some(e) = d.poll() {
            match e {
                TsEvent::Tracks(t) => tracks.push(t),
                TsEvent::Frame(f) => frames.push(f),
            }
        }
        (tracks, frames)
    }

    #[test]
    fn round_trip_through_the_muxer() {
        let input = frames(50);
        let ts = mux(&input);
        assert_eq!(ts.len() % PACKET_SIZE, 0);
        let mut d = TsDemuxer::default();
        // Odd chunk sizes: packets straddle pushes.
        for chunk in ts.chunks(1000) {
            d.push(chunk);
        }
        d.flush();
        let (tracks, out) = demux_all(&mut d);
        assert_eq!(tracks.len(), 1);
        let expected = avc_aac_tracks(true);
        assert_eq!(tracks[0].video, expected.video);
        assert_eq!(tracks[0].audio, expected.audio);
        assert_eq!(out.len(), input.len());
        let first = out.iter().find(|f| f.is_video()).unwrap();
        assert!(first.keyframe);
        assert_eq!(&first.payload[..], &input[0].payload[..]);
        let offset = first.dts - input[0].dts;
        let videos: Vec<&Frame> = out.iter().filter(|f| f.is_video()).collect();
        let inputs: Vec<&Frame> = input.iter().filter(|f| f.is_video()).collect();
        for (a, b) in videos.iter().zip(&inputs) {
            assert_eq!((a.dts - offset).as_millis(), b.dts.as_millis());
            assert_eq!((a.pts - a.dts).as_millis(), 80);
            assert_eq!(a.payload, b.payload);
            assert_eq!(a.keyframe, b.keyframe);
        }
        let audio: Vec<&Frame> = out.iter().filter(|f| !f.is_video()).collect();
        assert_eq!(audio.len(), 50);
        assert_eq!(&audio[3].payload[..], &[0x21; 50][..]);
        assert_eq!(d.stats().continuity_errors, 0);
    }

    #[test]
    fn continuity_errors_are_counted_and_survived() {
        let ts = mux(&frames(50));
        let mut d = TsDemuxer::default();
        // Drop one video packet in the middle of the stream.
        let middle = (ts.len() / PACKET_SIZE / 2..)
            .map(|i| i * PACKET_SIZE)
            .find(|&at| ts[at + 1] & 0x1f == 0x01 && ts[at + 2] == 0x00)
            .unwrap();
        d.push(&ts[..middle]);
        d.push(&ts[middle + PACKET_SIZE..]);
        d.flush();
        let (_, out) = demux_all(&mut d);
        assert_eq!(d.stats().continuity_errors, 1);
        assert!(out.len() >= 98, "only the damaged frame is lost: {}", out.len());
    }

    #[test]
    fn garbage_and_bad_sync_resynchronise() {
        let ts = mux(&frames(30));
        let mut d = TsDemuxer::default();
        d.push(&[0x12, 0x47, 0x00, 0x99]);
        d.push(&[0xff; 500]);
        d.push(&ts);
        d.flush();
        let (_, out) = demux_all(&mut d);
        assert!(d.stats().sync_losses > 0);
        assert!(out.len() >= 50, "{}", out.len());
    }

    #[test]
    fn resync_skips_a_false_sync_byte_inside_a_broken_packet() {
        let ts = mux(&frames(30));
        let clean = {
            let mut d = TsDemuxer::default();
            d.push(&ts);
            d.flush();
            demux_all(&mut d).1.len()
        };
        // A broken packet (no sync byte) with 0x47 in its payload, not followed by a packet: a
        // resync there would stay misaligned. Only the broken packet is skipped.
        let mut broken = [0x00u8; PACKET_SIZE];
        broken[20] = SYNC_BYTE;
        let mut d = TsDemuxer::default();
        let at = 3 * PACKET_SIZE;
        d.push(&[&ts[..at], &broken[..], &ts[at..]].concat());
        d.flush();
        let (_, out) = demux_all(&mut d);
        assert_eq!(d.stats().sync_losses, PACKET_SIZE as u64);
        assert_eq!(out.len(), clean);
    }

    #[test]
    fn absurd_pes_length_is_bounded() {
        let ts = mux(&frames(10));
        let mut d = TsDemuxer::new(4096);
        d.push(&ts);
        // A PES on the video PID that never ends: 100 000 packets of payload.
        let mut packet = [0xffu8; PACKET_SIZE];
        packet[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10]);
        packet[4..13].copy_from_slice(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5]);
        packet[13..18].copy_from_slice(&[0x21, 0, 1, 0, 1]);
        d.push(&packet);
        for i in 0..100_000u32 {
            packet[1] = 0x01;
            packet[3] = 0x10 | ((i + 1) & 0x0f) as u8;
            d.push(&packet);
        }
        assert!(d.stats().pes_errors >= 1);
        assert!(d.streams.iter().all(|s| s.buf.capacity() <= 1 << 20));
    }

    #[test]
    fn adts_frames_are_split() {
        let mut pes = Vec::new();
        let asc = crate::aac::AudioSpecificConfig { object_type: 2, sample_rate: 48000, channels: 2 };
        for _ in 0..3 {
            pes.extend_from_slice(&AdtsHeader::write(&asc, 10).unwrap());
            pes.extend_from_slice(&[7; 10]);
        }
        let mut d = TsDemuxer::default();
        d.streams.push(Es {
            pid: 0x101,
            kind: Kind::Aac,
            cc: None,
            buf: BytesMut::from(&pes[..]),
            open: true,
            expected: 0,
            pts: Some(9000),
            dts: Some(9000),
        });
        d.finish_pes(0);
        let (tracks, out) = demux_all(&mut d);
        assert_eq!(tracks[0].audio.as_ref().unwrap().name(), "aac");
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].pts.ticks(), 9000 + 1920);
        assert_eq!(&out[2].payload[..], &[7; 10]);
    }

    #[test]
    fn opus_control_headers() {
        assert_eq!(opus_control_header(&[0x7f, 0xe0, 0xff, 0x10]), Some((4, 0x10f)));
        assert_eq!(opus_control_header(&[0x7f, 0xf0, 3, 0, 0]), Some((5, 3)));
        assert_eq!(opus_control_header(&[0x7f, 0x00]), None);
        assert_eq!(opus_duration_90k(&[0xfc]), 1800, "CELT 20 ms");
        assert_eq!(opus_descriptor(&[0x05, 4, b'O', b'p', b'u', b's', 0x7f, 2, 0x80, 1]), Some(1));
        assert_eq!(opus_descriptor(&[0x05, 4, b'A', b'C', b'-', b'3']), None);
    }

    /// Real ffmpeg 5.1 output (`testdata/`, made with `-f mpegts`): H.264 + AAC, HEVC, Opus.
    fn demux_file(bytes: &[u8]) -> (TsDemuxer, Vec<Tracks>, Vec<Frame>) {
        let mut d = TsDemuxer::default();
        for chunk in bytes.chunks(1316) {
            d.push(chunk);
        }
        d.flush();
        let (tracks, frames) = demux_all(&mut d);
        (d, tracks, frames)
    }

    #[test]
    fn ffmpeg_h264_aac() {
        let (d, tracks, frames) = demux_file(include_bytes!("testdata/ffmpeg_h264_aac.ts"));
        assert_eq!(tracks.len(), 1);
        assert_eq!(tracks[0].resolution(), Some((160, 120)));
        assert_eq!(tracks[0].audio.as_ref().map(|a| a.name()), Some("aac"));
        let video = frames.iter().filter(|f| f.is_video()).count();
        assert_eq!(video, 15, "1 s at 15 fps");
        assert!(frames.iter().filter(|f| !f.is_video()).count() >= 46, "1 s of 48 kHz AAC");
        assert!(frames.iter().find(|f| f.is_video()).unwrap().keyframe);
        assert_eq!(*d.stats(), DemuxStats { packets: d.stats().packets, ..Default::default() });
    }

    #[test]
    fn ffmpeg_hevc() {
        let (_, tracks, frames) = demux_file(include_bytes!("testdata/ffmpeg_hevc.ts"));
        let Some(CodecConfig::Hevc { record }) = &tracks[0].video else { panic!("{tracks:?}") };
        assert_eq!(hevc::record_nalus(record).unwrap().1.len(), 3);
        assert!(frames[0].keyframe);
        assert!(frames.len() >= 7, "{}", frames.len());
        // Round trip through the muxer.
        let mut m = super::super::TsMuxer::default();
        m.set_tracks(&tracks[0]).unwrap();
        let mut out = BytesMut::new();
        for f in &frames {
            m.push(f, &mut out).unwrap();
        }
        let (_, again, frames_again) = demux_file(&out);
        assert_eq!(again[0].video, tracks[0].video);
        assert_eq!(frames_again.len(), frames.len());
    }

    #[test]
    fn ffmpeg_opus() {
        let (_, tracks, frames) = demux_file(include_bytes!("testdata/ffmpeg_opus.ts"));
        assert_eq!(tracks[0].audio, Some(CodecConfig::Opus { channels: 1, sample_rate: 48_000 }));
        assert!(frames.len() >= 24, "0.5 s of 20 ms packets: {}", frames.len());
        assert_eq!((frames[1].pts - frames[0].pts).ticks(), 1800);
    }
}
