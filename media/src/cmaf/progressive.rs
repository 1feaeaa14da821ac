//! A progressive MP4 (`ftyp`, `moov` first, one `mdat`) from CMAF tracks, without re-encoding
//! and sans-IO: each track's init segment and the `moof` boxes of its fragments are read
//! ([`walk_segment`] asks for byte ranges, [`parse_moof`] reads `tfhd`/`tfdt`/`trun` with
//! bounds checks), and [`Progressive::build`] writes the sample tables (`stts`, `ctts`, `stss`,
//! `stsz`, `stsc`, `stco` or `co64`, an edit list keeping the tracks in sync) for a file whose
//! `mdat` is the fragments' sample bytes copied in order: one chunk per fragment, chunks of all
//! tracks interleaved by time. The caller streams [`Progressive::header`] then each
//! [`Piece`]'s bytes from its source; any byte range of the whole is cheap to produce
//! ([`Progressive::pieces_in`]).

use bytes::Bytes;
use mp4_atom::{
    Co64, Ctts, CttsEntry, Decode, Edts, Elst, ElstEntry, Encode, FixedPoint, Ftyp, Moov, Mvhd, Stco, Stsc, StscEntry,
    Stss, Stsz, StszSamples, Stts, SttsEntry,
};
use std::ops::Range;

/// Why a progressive file cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum RemuxError {
    #[error("reading the media failed: {0}")]
    Read(#[from] std::io::Error),
    #[error("the init segment cannot be read: {0}")]
    Init(String),
    #[error("a fragment at byte {offset} is malformed: {reason}")]
    Fragment { offset: u64, reason: &'static str },
    #[error("no samples to write")]
    Empty,
    #[error("the movie box cannot be written: {0}")]
    Encode(String),
}

/// One parsed fragment: where its sample bytes are in its source, and its samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Which source (object) holds the bytes (the caller's numbering).
    pub source: usize,
    /// The samples' bytes in the source, back to back.
    pub data: Range<u64>,
    /// `tfdt`: decode time of the first sample (track ticks).
    pub base_decode_time: u64,
    pub samples: Vec<SampleInfo>,
}

/// A sample as a `trun` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleInfo {
    pub duration: u32,
    pub size: u32,
    pub composition_offset: i32,
    pub sync: bool,
}

/// `trex` defaults of a track (used when neither `tfhd` nor `trun` gives a value).
#[derive(Clone, Copy, Debug, Default)]
pub struct Defaults {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

/// One track: its init segment and its fragments in decode order.
#[derive(Clone, Debug)]
pub struct TrackInput {
    pub init: Bytes,
    pub fragments: Vec<Fragment>,
}

/// Bytes of the output that come from a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub source: usize,
    pub range: Range<u64>,
}

/// The layout of a progressive MP4.
#[derive(Clone, Debug)]
pub struct Progressive {
    /// `ftyp` + `moov` + the `mdat` header.
    pub header: Bytes,
    /// The `mdat` payload, in order.
    pub pieces: Vec<Piece>,
    /// The whole file's length.
    pub len: u64,
    /// Presentation length in seconds (the longest track, with its edits).
    pub duration_secs: f64,
}

/// Where part of the output comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Bytes of [`Progressive::header`].
    Header(Range<usize>),
    Source(Piece),
}

/// Largest `moof` read (a fragment of ~100 000 samples); larger ones are refused.
const MAX_MOOF: u64 = 4 * 1024 * 1024;

/// The fragments of one CMAF segment file of `size` bytes (`styp`/`prft`/`sidx`/… boxes
/// skipped), reading only box headers and `moof`s through `read`.
pub fn walk_segment(
    source: usize,
    size: u64,
    defaults: Defaults,
    mut read: impl FnMut(Range<u64>) -> std::io::Result<Bytes>,
) -> Result<Vec<Fragment>, RemuxError> {
    let mut fragments = Vec::new();
    let mut offset = 0u64;
    let mut moof: Option<(u64, Bytes)> = None;
    while offset < size {
        let malformed = |reason| RemuxError::Fragment { offset, reason };
        let header = read(offset..(offset + 16).min(size))?;
        if header.len() < 8 {
            return Err(malformed("a torn box header"));
        }
        let size32 = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes"));
        let kind: [u8; 4] = header[4..8].try_into().expect("4 bytes");
        let (header_len, box_len) = match size32 {
            0 => (8, size - offset),
            1 if header.len() >= 16 => (16, u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"))),
            1 => return Err(malformed("a torn box header")),
            n => (8, n as u64),
        };
        if box_len < header_len || box_len > size - offset {
            return Err(malformed("a box larger than the file"));
        }
        match &kind {
            b"moof" => {
                if box_len > MAX_MOOF {
                    return Err(malformed("a moof too large"));
                }
                moof = Some((offset, read(offset..offset + box_len)?));
            }
            b"mdat" => {
                let Some((moof_offset, moof)) = moof.take() else { return Err(malformed("an mdat without a moof")) };
                let payload = offset + header_len..offset + box_len;
                fragments.push(parse_moof(&moof, moof_offset, source, payload, defaults)?);
            }
            _ => {}
        }
        offset += box_len;
    }
    Ok(fragments)
}

/// A one-track `moof` (the whole box, starting at `moof_offset` in its source) whose samples
/// must lie within `mdat` (the following `mdat`'s payload).
pub fn parse_moof(
    moof: &[u8],
    moof_offset: u64,
    source: usize,
    mdat: Range<u64>,
    defaults: Defaults,
) -> Result<Fragment, RemuxError> {
    let malformed = |reason| RemuxError::Fragment { offset: moof_offset, reason };
    let mut boxes = Boxes::new(moof).ok_or_else(|| malformed("not a moof"))?;
    let (kind, body) = boxes.next().ok_or_else(|| malformed("not a moof"))?;
    if &kind != b"moof" {
        return Err(malformed("not a moof"));
    }
    let traf = Boxes::new(body)
        .ok_or_else(|| malformed("a torn moof"))?
        .find(|(kind, _)| kind == b"traf")
        .map(|(_, body)| body)
        .ok_or_else(|| malformed("a moof without a traf"))?;
    let mut base_offset = moof_offset;
    let mut track = defaults;
    let mut decode_time = None;
    let mut samples = Vec::new();
    let mut data: Option<Range<u64>> = None;
    for (kind, child) in Boxes::new(traf).ok_or_else(|| malformed("a torn traf"))? {
        let mut r = Reader(child);
        let version_flags = r.u32().ok_or_else(|| malformed("a torn full box"))?;
        let (version, flags) = (version_flags >> 24, version_flags & 0x00ff_ffff);
        let torn = || malformed("a torn tfhd, tfdt or trun");
        match &kind {
            b"tfhd" => {
                r.take(4).ok_or_else(torn)?; // track id
                if flags & 0x1 != 0 {
                    base_offset = r.u64().ok_or_else(torn)?;
                }
                if flags & 0x2 != 0 {
                    r.take(4).ok_or_else(torn)?;
                }
                if flags & 0x8 != 0 {
                    track.duration = r.u32().ok_or_else(torn)?;
                }
                if flags & 0x10 != 0 {
                    track.size = r.u32().ok_or_else(torn)?;
                }
                if flags & 0x20 != 0 {
                    track.flags = r.u32().ok_or_else(torn)?;
                }
            }
            b"tfdt" => {
                decode_time = Some(if version == 1 { r.u64() } else { r.u32().map(u64::from) }.ok_or_else(torn)?);
            }
            b"trun" => {
                let count = r.u32().ok_or_else(torn)? as usize;
                let start = match flags & 0x1 {
                    0 => data.as_ref().map_or(base_offset, |d| d.end),
                    _ => base_offset.checked_add_signed(r.u32().ok_or_else(torn)? as i32 as i64).ok_or_else(torn)?,
                };
                let first_flags = if flags & 0x4 != 0 { Some(r.u32().ok_or_else(torn)?) } else { None };
                let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|&&f| flags & f != 0).count();
                // The count is only trusted as far as the box holds its fields.
                if count > 0 && per_sample > 0 && r.0.len() / (per_sample * 4) < count {
                    return Err(torn());
                }
                if per_sample == 0 && count > 1_000_000 {
                    return Err(malformed("a trun with too many samples"));
                }
                let mut end = start;
                for i in 0..count {
                    let duration = if flags & 0x100 != 0 { r.u32().ok_or_else(torn)? } else { track.duration };
                    let size = if flags & 0x200 != 0 { r.u32().ok_or_else(torn)? } else { track.size };
                    let sample_flags = if flags & 0x400 != 0 {
                        r.u32().ok_or_else(torn)?
                    } else {
                        first_flags.filter(|_| i == 0).unwrap_or(track.flags)
                    };
                    let composition_offset = if flags & 0x800 != 0 {
                        let raw = r.u32().ok_or_else(torn)?;
                        if version == 0 {
                            i32::try_from(raw).map_err(|_| torn())?
                        } else {
                            raw as i32
                        }
                    } else {
                        0
                    };
                    end = end.checked_add(size as u64).ok_or_else(torn)?;
                    samples.push(SampleInfo {
                        duration,
                        size,
                        composition_offset,
                        sync: sample_flags & 0x0001_0000 == 0,
                    });
                }
                match &mut data {
                    Some(d) if d.end == start => d.end = end,
                    Some(_) => return Err(malformed("truns whose data is not back to back")),
                    None => data = Some(start..end),
                }
            }
            _ => {}
        }
    }
    let base_decode_time = decode_time.ok_or_else(|| malformed("a traf without a tfdt"))?;
    let data = data.ok_or_else(|| malformed("a traf without a trun"))?;
    if samples.is_empty() {
        return Err(malformed("a fragment without samples"));
    }
    if data.start < mdat.start || data.end > mdat.end {
        return Err(malformed("samples outside their mdat"));
    }
    Ok(Fragment { source, data, base_decode_time, samples })
}

/// The `trex` defaults of an init segment.
pub fn init_defaults(init: &[u8]) -> Result<Defaults, RemuxError> {
    let (_, moov) = decode_init(init)?;
    let trex = moov.mvex.and_then(|m| m.trex.into_iter().next()).unwrap_or_default();
    Ok(Defaults {
        duration: trex.default_sample_duration,
        size: trex.default_sample_size,
        flags: trex.default_sample_flags,
    })
}

fn decode_init(init: &[u8]) -> Result<(Ftyp, Moov), RemuxError> {
    let mut rest = init;
    let ftyp = Ftyp::decode(&mut rest).map_err(|e| RemuxError::Init(e.to_string()))?;
    let moov = Moov::decode(&mut rest).map_err(|e| RemuxError::Init(e.to_string()))?;
    if moov.trak.len() != 1 {
        return Err(RemuxError::Init(format!("{} tracks in one init segment", moov.trak.len())));
    }
    Ok((ftyp, moov))
}

/// Movie timescale of the output (`mvhd`, edit lists).
const MOVIE_TIMESCALE: u64 = 1000;

/// A track's samples flattened, with its timing.
struct Flat {
    moov: Moov,
    timescale: u64,
    /// Per sample: decode delta (to the next sample's decode time), size, composition offset, sync.
    deltas: Vec<u32>,
    sizes: Vec<u32>,
    offsets: Vec<i32>,
    sync: Vec<bool>,
    /// First decode time and earliest presentation time, in track ticks.
    first_dts: u64,
    min_pts: i128,
    /// Chunks: (start seconds, fragment index).
    chunks: Vec<(f64, usize)>,
}

impl Progressive {
    /// The layout of a progressive MP4 holding `tracks` (e.g. video, then audio).
    pub fn build(tracks: &[TrackInput]) -> Result<Progressive, RemuxError> {
        let mut flats = Vec::with_capacity(tracks.len());
        for track in tracks {
            flats.push(flatten(track)?);
        }
        if flats.iter().all(|f| f.sizes.is_empty()) {
            return Err(RemuxError::Empty);
        }
        // Chunks of every track, interleaved by time.
        let mut order: Vec<(f64, usize, usize)> = flats
            .iter()
            .enumerate()
            .flat_map(|(t, f)| f.chunks.iter().map(move |&(at, fragment)| (at, t, fragment)))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let payload: u64 = order.iter().map(|&(_, t, i)| range_len(&tracks[t].fragments[i].data)).sum();
        let mdat_header_len = if payload + 8 > u32::MAX as u64 { 16 } else { 8 };
        let origin = flats.iter().filter(|f| !f.sizes.is_empty()).map(|f| f.min_pts as f64 / f.timescale as f64);
        let origin = origin.fold(f64::INFINITY, f64::min);
        let ftyp = Ftyp {
            major_brand: b"isom".into(),
            minor_version: 512,
            compatible_brands: vec![b"isom".into(), b"iso2".into(), b"avc1".into(), b"mp41".into()],
        };
        let ftyp = encode(&ftyp)?;
        // Pass 1 with offsets relative to the payload; pass 2 with the real ones (the same size:
        // entries are fixed-width, and co64 is chosen up front when the file may pass 4 GiB).
        let wide = payload + 1024 * 1024 * 64 > u32::MAX as u64;
        let (moov, duration_secs) = movie(&flats, &order, tracks, origin, 0, wide)?;
        let start = (ftyp.len() + moov.len() + mdat_header_len) as u64;
        let (moov, _) = movie(&flats, &order, tracks, origin, start, wide)?;
        let mut header = Vec::with_capacity(start as usize);
        header.extend_from_slice(&ftyp);
        header.extend_from_slice(&moov);
        if mdat_header_len == 16 {
            header.extend_from_slice(&1u32.to_be_bytes());
            header.extend_from_slice(b"mdat");
            header.extend_from_slice(&(payload + 16).to_be_bytes());
        } else {
            header.extend_from_slice(&((payload + 8) as u32).to_be_bytes());
            header.extend_from_slice(b"mdat");
        }
        debug_assert_eq!(header.len() as u64, start);
        let pieces = order
            .iter()
            .map(|&(_, t, i)| {
                let fragment = &tracks[t].fragments[i];
                Piece { source: fragment.source, range: fragment.data.clone() }
            })
            .collect();
        Ok(Progressive { header: header.into(), pieces, len: start + payload, duration_secs })
    }

    /// What bytes `range` of the file are made of, in order.
    pub fn pieces_in(&self, range: Range<u64>) -> Vec<Part> {
        let mut parts = Vec::new();
        let header_len = self.header.len() as u64;
        if range.start < header_len {
            parts.push(Part::Header(range.start as usize..range.end.min(header_len) as usize));
        }
        let mut at = header_len;
        for piece in &self.pieces {
            let len = range_len(&piece.range);
            let (from, to) = (range.start.max(at), range.end.min(at + len));
            if from < to {
                let start = piece.range.start + (from - at);
                parts.push(Part::Source(Piece { source: piece.source, range: start..start + (to - from) }));
            }
            at += len;
            if at >= range.end {
                break;
            }
        }
        parts
    }
}

fn range_len(range: &Range<u64>) -> u64 {
    range.end.saturating_sub(range.start)
}

fn flatten(track: &TrackInput) -> Result<Flat, RemuxError> {
    let (_, moov) = decode_init(&track.init)?;
    let timescale = moov.trak[0].mdia.mdhd.timescale as u64;
    if timescale == 0 {
        return Err(RemuxError::Init("a track with timescale 0".into()));
    }
    let count: usize = track.fragments.iter().map(|f| f.samples.len()).sum();
    let mut flat = Flat {
        moov,
        timescale,
        deltas: Vec::with_capacity(count),
        sizes: Vec::with_capacity(count),
        offsets: Vec::with_capacity(count),
        sync: Vec::with_capacity(count),
        first_dts: track.fragments.first().map_or(0, |f| f.base_decode_time),
        min_pts: i128::MAX,
        chunks: Vec::with_capacity(track.fragments.len()),
    };
    for (i, fragment) in track.fragments.iter().enumerate() {
        flat.chunks.push((fragment.base_decode_time as f64 / timescale as f64, i));
        let mut dts = fragment.base_decode_time;
        let next_base = track.fragments.get(i + 1).map(|f| f.base_decode_time);
        for (j, sample) in fragment.samples.iter().enumerate() {
            flat.min_pts = flat.min_pts.min(dts as i128 + sample.composition_offset as i128);
            let mut delta = sample.duration;
            // The last sample of a fragment lasts up to the next fragment (a gap in the
            // timeline is kept: the tracks stay in sync), unless the timeline goes back.
            if j + 1 == fragment.samples.len() {
                if let Some(next) = next_base {
                    if let Some(gap) = next.checked_sub(dts).filter(|&d| d > 0 && d <= u32::MAX as u64) {
                        delta = gap as u32;
                    }
                }
            }
            flat.deltas.push(delta);
            flat.sizes.push(sample.size);
            flat.offsets.push(sample.composition_offset);
            flat.sync.push(sample.sync);
            dts = dts.saturating_add(sample.duration as u64);
        }
    }
    Ok(flat)
}

/// The `moov` with chunk offsets from `start` (the first payload byte); and the duration.
fn movie(
    flats: &[Flat],
    order: &[(f64, usize, usize)],
    tracks: &[TrackInput],
    origin: f64,
    start: u64,
    wide: bool,
) -> Result<(Vec<u8>, f64), RemuxError> {
    // Chunk offsets per track, in the interleaved order.
    let mut offsets: Vec<Vec<u64>> = vec![Vec::new(); flats.len()];
    let mut chunk_samples: Vec<Vec<u32>> = vec![Vec::new(); flats.len()];
    let mut at = start;
    for &(_, t, i) in order {
        let fragment = &tracks[t].fragments[i];
        offsets[t].push(at);
        chunk_samples[t].push(fragment.samples.len() as u32);
        at += range_len(&fragment.data);
    }
    let mut moov = flats.iter().find(|f| !f.sizes.is_empty()).map(|f| f.moov.clone()).ok_or(RemuxError::Empty)?;
    moov.mvex = None;
    moov.trak.clear();
    let mut movie_duration = 0u64;
    for (t, flat) in flats.iter().enumerate() {
        if flat.sizes.is_empty() {
            continue;
        }
        let mut trak = flat.moov.trak[0].clone();
        let media_duration: u64 = flat.deltas.iter().map(|&d| d as u64).sum();
        let media_time = (flat.min_pts - flat.first_dts as i128).clamp(0, media_duration as i128) as u64;
        let delay = ((flat.min_pts as f64 / flat.timescale as f64 - origin) * MOVIE_TIMESCALE as f64).round() as u64;
        let shown = (media_duration - media_time) * MOVIE_TIMESCALE / flat.timescale;
        let track_duration = delay + shown;
        movie_duration = movie_duration.max(track_duration);
        trak.edts = (delay > 0 || media_time > 0).then(|| {
            let mut entries = Vec::new();
            if delay > 0 {
                entries.push(ElstEntry {
                    segment_duration: delay,
                    media_time: None,
                    media_rate: FixedPoint::new(1, 0),
                });
            }
            entries.push(ElstEntry {
                segment_duration: shown,
                media_time: Some(media_time),
                media_rate: FixedPoint::new(1, 0),
            });
            Edts { elst: Some(Elst { entries }) }
        });
        trak.tkhd.track_id = t as u32 + 1;
        trak.tkhd.duration = track_duration;
        trak.mdia.mdhd.duration = media_duration;
        let stbl = &mut trak.mdia.minf.stbl;
        stbl.stts = Stts {
            entries: runs(&flat.deltas)
                .map(|(count, delta)| SttsEntry { sample_count: count, sample_delta: delta })
                .collect(),
        };
        stbl.ctts = flat.offsets.iter().any(|&o| o != 0).then(|| Ctts {
            entries: runs(&flat.offsets)
                .map(|(count, offset)| CttsEntry { sample_count: count, sample_offset: offset as i64 })
                .collect(),
        });
        stbl.stss = flat.sync.iter().any(|s| !s).then(|| Stss {
            entries: flat.sync.iter().enumerate().filter(|(_, &s)| s).map(|(i, _)| i as u32 + 1).collect(),
        });
        stbl.stsz = Stsz { samples: StszSamples::Different { sizes: flat.sizes.clone() } };
        let mut stsc = Vec::new();
        for (chunk, &samples) in chunk_samples[t].iter().enumerate() {
            if stsc.last().is_none_or(|e: &StscEntry| e.samples_per_chunk != samples) {
                stsc.push(StscEntry {
                    first_chunk: chunk as u32 + 1,
                    samples_per_chunk: samples,
                    sample_description_index: 1,
                });
            }
        }
        stbl.stsc = Stsc { entries: stsc };
        if wide {
            stbl.stco = None;
            stbl.co64 = Some(Co64 { entries: offsets[t].clone() });
        } else {
            stbl.co64 = None;
            let narrow: Result<Vec<u32>, _> = offsets[t].iter().map(|&o| u32::try_from(o)).collect();
            stbl.stco = Some(Stco { entries: narrow.map_err(|_| RemuxError::Encode("offset past 4 GiB".into()))? });
        }
        stbl.sbgp.clear();
        stbl.sgpd.clear();
        stbl.subs.clear();
        stbl.saiz.clear();
        stbl.saio.clear();
        stbl.cslg = None;
        moov.trak.push(trak);
    }
    moov.mvhd = Mvhd {
        timescale: MOVIE_TIMESCALE as u32,
        duration: movie_duration,
        next_track_id: moov.trak.len() as u32 + 1,
        ..moov.mvhd
    };
    Ok((encode(&moov)?, movie_duration as f64 / MOVIE_TIMESCALE as f64))
}

/// Runs of equal values: (count, value).
fn runs<T: Copy + PartialEq>(values: &[T]) -> impl Iterator<Item = (u32, T)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let first = *values.get(i)?;
        let count = values[i..].iter().take_while(|&&v| v == first).count();
        i += count;
        Some((count as u32, first))
    })
}

fn encode<T: Encode>(atom: &T) -> Result<Vec<u8>, RemuxError> {
    let mut out = Vec::new();
    atom.encode(&mut out).map_err(|e| RemuxError::Encode(e.to_string()))?;
    Ok(out)
}

/// Boxes of a buffer, in order; stops at the first torn one.
struct Boxes<'a>(&'a [u8]);

impl<'a> Boxes<'a> {
    fn new(bytes: &'a [u8]) -> Option<Boxes<'a>> {
        Some(Boxes(bytes))
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = ([u8; 4], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let mut r = Reader(self.0);
        let size = r.u32()? as u64;
        let kind: [u8; 4] = r.take(4)?.try_into().ok()?;
        let (header, size) = match size {
            1 => (16, r.u64()?),
            0 => (8, self.0.len() as u64),
            size => (8, size),
        };
        let body_len = usize::try_from(size.checked_sub(header)?).ok()?;
        let body = r.take(body_len)?;
        self.0 = r.0;
        Some((kind, body))
    }
}

/// Big-endian reads that fail instead of running past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
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

    /// The segment files (styp + parts) of each track of `ms` of a synthetic stream, and the
    /// init segments, as the recorder writes them.
    fn recorded(ms: i64) -> Vec<(Bytes, Vec<Vec<u8>>)> {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut segmenter = Segmenter::new(SegmenterConfig::default());
        let tracks = avc_aac_tracks(true);
        segmenter.set_tracks(&tracks);
        let stream = SyntheticStream { gop_ms: 2_000, cts_ms: 66, audio: true, video_bytes: 50 };
        for frame in stream.frames(0, ms) {
            segmenter.push(&frame, start + Duration::from_millis(frame.dts.as_millis() as u64));
        }
        segmenter.finish();
        let mut out: Vec<(Bytes, Vec<Vec<u8>>)> = Vec::new();
        let inits = [
            fmp4::init_segment(1, tracks.video.as_ref().unwrap()).unwrap(),
            fmp4::init_segment(2, tracks.audio.as_ref().unwrap()).unwrap(),
        ];
        for init in inits {
            out.push((init, Vec::new()));
        }
        for event in segmenter.drain() {
            if let SegmenterEvent::Part(part) = event {
                let segments = &mut out[if part.kind == TrackKind::Video { 0 } else { 1 }].1;
                if part.index == 0 {
                    segments.push(fmp4::segment_type().to_vec());
                }
                segments.last_mut().unwrap().extend_from_slice(&part.bytes);
            }
        }
        out
    }

    fn inputs(recorded: &[(Bytes, Vec<Vec<u8>>)]) -> (Vec<TrackInput>, Vec<Vec<u8>>) {
        let mut sources = Vec::new();
        let mut tracks = Vec::new();
        for (init, segments) in recorded {
            let defaults = init_defaults(init).unwrap();
            let mut fragments = Vec::new();
            for segment in segments {
                let source = sources.len();
                sources.push(segment.clone());
                let read = |r: Range<u64>| Ok(Bytes::copy_from_slice(&segment[r.start as usize..r.end as usize]));
                fragments.extend(walk_segment(source, segment.len() as u64, defaults, read).unwrap());
            }
            tracks.push(TrackInput { init: init.clone(), fragments });
        }
        (tracks, sources)
    }

    fn assemble(progressive: &Progressive, sources: &[Vec<u8>], range: Range<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for part in progressive.pieces_in(range) {
            match part {
                Part::Header(r) => out.extend_from_slice(&progressive.header[r]),
                Part::Source(p) => {
                    out.extend_from_slice(&sources[p.source][p.range.start as usize..p.range.end as usize])
                }
            }
        }
        out
    }

    #[test]
    fn recorded_fragments_become_one_progressive_file() {
        let recorded = recorded(6_500);
        let (tracks, sources) = inputs(&recorded);
        assert!(tracks[0].fragments.len() > 3 && tracks[1].fragments.len() > 3);
        let progressive = Progressive::build(&tracks).unwrap();
        let file = assemble(&progressive, &sources, 0..progressive.len);
        assert_eq!(file.len() as u64, progressive.len);
        let mut rest = &file[..];
        Ftyp::decode(&mut rest).unwrap();
        let moov = Moov::decode(&mut rest).unwrap();
        assert_eq!(&rest[4..8], b"mdat");
        assert!(moov.mvex.is_none());
        assert_eq!(moov.trak.len(), 2);
        for (trak, track) in moov.trak.iter().zip(&tracks) {
            let stbl = &trak.mdia.minf.stbl;
            let samples: usize = track.fragments.iter().map(|f| f.samples.len()).sum();
            let StszSamples::Different { sizes } = &stbl.stsz.samples else { panic!("sizes") };
            assert_eq!(sizes.len(), samples);
            let stts: u32 = stbl.stts.entries.iter().map(|e| e.sample_count).sum();
            assert_eq!(stts as usize, samples);
            // Every chunk's bytes are the fragment's samples.
            let offsets = &stbl.stco.as_ref().unwrap().entries;
            assert_eq!(offsets.len(), track.fragments.len());
            for (offset, fragment) in offsets.iter().zip(&track.fragments) {
                let len = (fragment.data.end - fragment.data.start) as usize;
                let source = &sources[fragment.source][fragment.data.start as usize..fragment.data.end as usize];
                assert_eq!(&file[*offset as usize..*offset as usize + len], source);
            }
        }
        let video = &moov.trak[0].mdia.minf.stbl;
        assert!(video.stss.as_ref().unwrap().entries.len() >= 3, "keyframes every 2 s");
        assert!(video.ctts.is_some(), "composition offsets kept");
        assert!((progressive.duration_secs - 6.5).abs() < 0.2, "{}", progressive.duration_secs);
        // Any range is the same bytes as the whole file's.
        for range in [0..10, 5..progressive.header.len() as u64 + 100, progressive.len - 50..progressive.len] {
            assert_eq!(assemble(&progressive, &sources, range.clone()), file[range.start as usize..range.end as usize]);
        }
    }

    #[test]
    fn hostile_fragments_are_refused() {
        let recorded = recorded(2_500);
        let (init, segments) = &recorded[0];
        let defaults = init_defaults(init).unwrap();
        let segment = &segments[0];
        // Cut anywhere: an error or fewer fragments, never a panic or a sample outside the file.
        for cut in (0..segment.len()).step_by(7) {
            let bytes = &segment[..cut];
            let read = |r: Range<u64>| Ok(Bytes::copy_from_slice(&bytes[r.start as usize..r.end as usize]));
            if let Ok(fragments) = walk_segment(0, cut as u64, defaults, read) {
                assert!(fragments.iter().all(|f| f.data.end <= cut as u64));
            }
        }
        assert!(init_defaults(b"not an init").is_err());
        assert!(matches!(Progressive::build(&[]), Err(RemuxError::Empty)));
    }
}
