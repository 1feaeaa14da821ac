//! Reads back a CMAF segment as the recorder wrote it (`styp`, then `prft` + `moof` + `mdat`
//! per fragment) to find its complete fragments: what survives a crash mid-write. Stops at the
//! first torn or malformed box, so everything after the last complete fragment can be cut off.

use super::fmp4::ntp_to_system_time;
use std::time::SystemTime;

/// A complete fragment of a segment.
#[derive(Clone, Debug, PartialEq)]
pub struct FragmentSummary {
    /// Offset just past the fragment's `mdat`.
    pub end: usize,
    /// Decode time of the first sample and the summed sample durations, in track ticks.
    pub decode_time: u64,
    pub duration: u64,
    pub samples: u32,
    /// From the fragment's `prft`, when it has one.
    pub wall_clock: Option<SystemTime>,
}

/// The complete fragments at the start of `segment`, in order.
///
/// The boxes are read here, field by field with bounds checks, rather than with a general MP4
/// decoder: this reads whatever a crash (or anything else) left on disk, and must stop at the
/// first thing it does not understand instead of trusting it.
pub fn scan_fragments(segment: &[u8]) -> Vec<FragmentSummary> {
    let mut fragments = Vec::new();
    let mut offset = 0;
    let mut wall_clock = None;
    let mut moof: Option<Moof> = None;
    while let Some((kind, body)) = next_box(segment, &mut offset) {
        match &kind {
            b"styp" => {}
            b"prft" => {
                // version/flags, reference track id, then the 64-bit NTP time.
                let Some(ntp) = Reader(body).skip(8).and_then(|mut r| r.u64()) else { break };
                wall_clock = Some(ntp_to_system_time(ntp));
            }
            b"moof" => {
                let Some(parsed) = parse_moof(body) else { break };
                moof = Some(parsed);
            }
            b"mdat" => {
                let Some(Moof { decode_time, duration, samples }) = moof.take() else { break };
                fragments.push(FragmentSummary {
                    end: offset,
                    decode_time,
                    duration,
                    samples,
                    wall_clock: wall_clock.take(),
                });
            }
            _ => break,
        }
    }
    fragments
}

/// What a one-track `moof` says about its samples.
struct Moof {
    decode_time: u64,
    duration: u64,
    samples: u32,
}

/// The next whole box at `offset` (advancing it): its type and body. `None` at the end, at a
/// torn box, or at a box whose size runs to the end of the file (a writer never leaves one).
fn next_box<'a>(bytes: &'a [u8], offset: &mut usize) -> Option<([u8; 4], &'a [u8])> {
    let mut reader = Reader(bytes.get(*offset..)?);
    let size = reader.u32()? as u64;
    let kind: [u8; 4] = reader.take(4)?.try_into().ok()?;
    let (header, size) = match size {
        1 => (16, reader.u64()?),
        0 => return None,
        size => (8, size),
    };
    let body_len = usize::try_from(size.checked_sub(header)?).ok()?;
    let body = reader.take(body_len)?;
    *offset += header as usize + body_len;
    Some((kind, body))
}

/// The first `traf` of a `moof`: `tfdt` decode time, `trun` durations (or the `tfhd` default).
fn parse_moof(body: &[u8]) -> Option<Moof> {
    let mut offset = 0;
    while let Some((kind, traf)) = next_box(body, &mut offset) {
        if &kind != b"traf" {
            continue;
        }
        let (mut decode_time, mut default_duration) = (None, 0u64);
        let (mut duration, mut samples) = (0u64, 0u32);
        let mut inner = 0;
        while let Some((kind, child)) = next_box(traf, &mut inner) {
            let mut r = Reader(child);
            let version_flags = r.u32()?;
            let (version, flags) = (version_flags >> 24, version_flags & 0x00ff_ffff);
            match &kind {
                b"tfhd" => {
                    r = r.skip(4)?; // track id
                    if flags & 0x1 != 0 {
                        r = r.skip(8)?; // base data offset
                    }
                    if flags & 0x2 != 0 {
                        r = r.skip(4)?; // sample description index
                    }
                    if flags & 0x8 != 0 {
                        default_duration = r.u32()? as u64;
                    }
                }
                b"tfdt" => decode_time = Some(if version == 1 { r.u64()? } else { r.u32()? as u64 }),
                b"trun" => {
                    let count = r.u32()?;
                    if flags & 0x1 != 0 {
                        r = r.skip(4)?; // data offset
                    }
                    if flags & 0x4 != 0 {
                        r = r.skip(4)?; // first sample flags
                    }
                    let fields = [0x100, 0x200, 0x400, 0x800].iter().filter(|&&f| flags & f != 0).count();
                    samples = samples.checked_add(count)?;
                    if flags & 0x100 == 0 {
                        // No per-sample durations: the count alone is not trusted to loop over.
                        r.take((count as usize).checked_mul(fields * 4)?)?;
                        duration = duration.checked_add(default_duration.checked_mul(count as u64)?)?;
                        continue;
                    }
                    for _ in 0..count {
                        duration = duration.checked_add(r.u32()? as u64)?;
                        r = r.skip(4 * (fields - 1))?;
                    }
                }
                _ => {}
            }
        }
        return (samples > 0).then_some(Moof { decode_time: decode_time?, duration, samples });
    }
    None
}

/// Big-endian reads that fail instead of running past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn skip(mut self, n: usize) -> Option<Reader<'a>> {
        self.take(n)?;
        Some(self)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::{fmp4, Segmenter, SegmenterConfig, SegmenterEvent, TrackKind};
    use crate::testing::{avc_aac_tracks, SyntheticStream};
    use std::time::{Duration, UNIX_EPOCH};

    /// A written segment's bytes and its parts' (decode time, duration).
    type WrittenSegment = (Vec<u8>, Vec<(u64, u64)>);

    /// The video segments (styp + parts) of `ms` of synthetic stream.
    fn video_segments(ms: i64) -> Vec<WrittenSegment> {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut segmenter = Segmenter::new(SegmenterConfig::default());
        segmenter.set_tracks(&avc_aac_tracks(true));
        let stream = SyntheticStream { gop_ms: 2_000, cts_ms: 66, audio: true, video_bytes: 50 };
        for frame in stream.frames(0, ms) {
            segmenter.push(&frame, start + Duration::from_millis(frame.dts.as_millis() as u64));
        }
        segmenter.finish();
        let mut segments: Vec<WrittenSegment> = Vec::new();
        for event in segmenter.drain() {
            if let SegmenterEvent::Part(part) = event {
                if part.kind != TrackKind::Video {
                    continue;
                }
                if part.index == 0 {
                    segments.push((fmp4::segment_type().to_vec(), Vec::new()));
                }
                let (bytes, parts) = segments.last_mut().unwrap();
                bytes.extend_from_slice(&part.bytes);
                parts.push((part.decode_time, part.duration));
            }
        }
        segments
    }

    #[test]
    fn every_written_fragment_is_found_with_its_times() {
        let segments = video_segments(6_000);
        assert!(segments.len() >= 2);
        for (bytes, parts) in &segments {
            let found = scan_fragments(bytes);
            let times: Vec<(u64, u64)> = found.iter().map(|f| (f.decode_time, f.duration)).collect();
            assert_eq!(&times, parts);
            assert_eq!(found.last().unwrap().end, bytes.len());
            assert!(found.iter().all(|f| f.wall_clock.is_some() && f.samples > 0));
        }
    }

    #[test]
    fn a_torn_fragment_is_left_out() {
        let (bytes, parts) = &video_segments(2_500)[0];
        let whole = scan_fragments(bytes);
        for cut in [bytes.len() - 1, bytes.len() - 100, whole[whole.len() - 2].end + 20] {
            let found = scan_fragments(&bytes[..cut]);
            assert_eq!(found.len(), parts.len() - 1, "cut at {cut}");
            assert_eq!(found.last().unwrap().end, whole[whole.len() - 2].end);
        }
        assert!(scan_fragments(&bytes[..10]).is_empty());
        assert!(scan_fragments(b"").is_empty());
    }

    #[test]
    fn hostile_boxes_are_refused_not_trusted() {
        // Found by the fmp4_scan fuzz target: mp4-atom's decoder panicked on it (an `iref` with
        // an underflowing size inside a `moof`).
        assert!(scan_fragments(include_bytes!("testdata/scan-iref-underflow.bin")).is_empty());
        // A trun claiming 4 billion samples without per-sample fields.
        let mut trun = vec![0, 0, 0, 0]; // version 0, no flags
        trun.extend_from_slice(&u32::MAX.to_be_bytes());
        let tfdt = [0u8; 8];
        let traf = [boxed(b"tfdt", &tfdt), boxed(b"trun", &trun)].concat();
        let moof = boxed(b"moof", &boxed(b"traf", &traf));
        let segment = [moof, boxed(b"mdat", b"x")].concat();
        let found = scan_fragments(&segment);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].samples, found[0].duration), (u32::MAX, 0));
        // Sizes smaller than a header, or running to the end of the file.
        assert!(scan_fragments(&[0, 0, 0, 4, b'm', b'o', b'o', b'f']).is_empty());
        assert!(scan_fragments(&[0, 0, 0, 0, b'm', b'd', b'a', b't', 1, 2]).is_empty());
        assert!(scan_fragments(&[0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 3]).is_empty());
    }

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&(body.len() as u32 + 8).to_be_bytes()[..], kind, body].concat()
    }
}
