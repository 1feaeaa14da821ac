//! Reads back a CMAF segment as the recorder wrote it (`styp`, then `prft` + `moof` + `mdat`
//! per fragment) to find its complete fragments: what survives a crash mid-write. Stops at the
//! first torn or malformed box, so everything after the last complete fragment can be cut off.

use super::fmp4::ntp_to_system_time;
use mp4_atom::{Atom, Decode, FourCC, Header, Moof, Prft};
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
pub fn scan_fragments(segment: &[u8]) -> Vec<FragmentSummary> {
    let mut fragments = Vec::new();
    let mut offset = 0;
    let mut wall_clock = None;
    let mut moof: Option<(u64, u64, u32)> = None;
    while let Some((kind, body)) = next_box(segment, &mut offset) {
        match kind {
            k if k == FourCC::new(b"styp") => {}
            k if k == Prft::KIND => {
                let Ok(prft) = Prft::decode_body(&mut &body[..]) else { break };
                wall_clock = Some(ntp_to_system_time(prft.ntp_timestamp));
            }
            k if k == Moof::KIND => {
                let Ok(decoded) = Moof::decode_body(&mut &body[..]) else { break };
                let Some(summary) = summarize(&decoded) else { break };
                moof = Some(summary);
            }
            k if k == FourCC::new(b"mdat") => {
                let Some((decode_time, duration, samples)) = moof.take() else { break };
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

/// The next whole box at `offset` (advancing it), or `None` at the end or at a torn box.
fn next_box<'a>(bytes: &'a [u8], offset: &mut usize) -> Option<(FourCC, &'a [u8])> {
    let mut rest = bytes.get(*offset..)?;
    let available = rest.len();
    let header = Header::decode(&mut rest).ok()?;
    let header_len = available - rest.len();
    let size = header.size?;
    let body = rest.get(..size)?;
    *offset += header_len + size;
    Some((header.kind, body))
}

/// Decode time, duration and sample count of a one-track `moof`.
fn summarize(moof: &Moof) -> Option<(u64, u64, u32)> {
    let traf = moof.traf.first()?;
    let decode_time = traf.tfdt.as_ref()?.base_media_decode_time;
    let default_duration = traf.tfhd.default_sample_duration.unwrap_or(0) as u64;
    let mut duration = 0u64;
    let mut samples = 0u32;
    for entry in traf.trun.iter().flat_map(|t| &t.entries) {
        duration = duration.checked_add(entry.duration.map_or(default_duration, u64::from))?;
        samples = samples.checked_add(1)?;
    }
    (samples > 0).then_some((decode_time, duration, samples))
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
}
