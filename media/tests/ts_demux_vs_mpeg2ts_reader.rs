//! Rill's MPEG-TS demuxer (`rill_media::mpegts::TsDemuxer`) against `mpeg2ts-reader` 0.18.2, the
//! crate issue #4 asked for unless shown unfit, on the same ffmpeg-made inputs (H.264 and AAC,
//! HEVC and AAC, a 33-bit PTS wrap, continuity errors, a duplicated packet, bad sync bytes,
//! chunks not aligned to 188 bytes, absurd PES lengths): frames out, PTS unwrapping, error
//! reporting, emission latency, allocations and throughput side by side.
//!
//! The mpeg2ts-reader side is what Rill would have to build on it: a `DemuxContext` with a
//! `packet_filter_switch!` of PAT/PMT/PES/null filters and an `ElementaryStreamConsumer` that
//! reassembles PES payloads (bounded), converts Annex B like ours does, counts ADTS frames and
//! unwraps DTS through our `Unwrapper33` (the crate hands out raw 33-bit values).
//!
//! The assertions pin down each behaviour found, so a new mpeg2ts-reader release that changes
//! one shows up here. Numbers (table on stderr):
//! `cargo test --release -p rill-media --test ts_demux_vs_mpeg2ts_reader -- --nocapture --test-threads=1`

use mpeg2ts_reader::demultiplex::{self, DemuxContext, FilterChangeset, FilterRequest};
use mpeg2ts_reader::{packet_filter_switch, pes, psi, StreamType};
use rill_media::avc::{annexb_nalus, annexb_to_avcc};
use rill_media::mpegts::{TsDemuxer, TsEvent, PACKET_SIZE};
use rill_media::time::Unwrapper33;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ---- allocation counting (per thread) ----

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static ALLOCATED_BYTES: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    let _ = ALLOCATED_BYTES.try_with(|c| c.set(c.get() + bytes as u64));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> (u64, u64) {
    (ALLOCATIONS.with(Cell::get), ALLOCATED_BYTES.with(Cell::get))
}

// ---- inputs ----

/// Largest PES either side keeps (ours: `TsDemuxer::new`'s bound).
const MAX_PES: usize = 8 << 20;
/// What SRT delivers per message.
const SRT_MESSAGE: usize = 7 * PACKET_SIZE;

struct Input {
    ts: Vec<u8>,
    /// ffprobe's packet counts: (video, audio).
    probe: (usize, usize),
    seconds: f64,
}

fn workdir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rill-ts-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
    .clone()
}

fn ffmpeg_ts(name: &str, seconds: u32, video: &[&str], extra: &[&str]) -> Input {
    let file = workdir().join(name);
    if !file.exists() {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-t", &seconds.to_string()])
            .args(video)
            .args(["-c:a", "aac", "-b:a", "128k"])
            .args(extra)
            .args(["-f", "mpegts"])
            .arg(&file)
            .status()
            .expect("ffmpeg is installed (scripts/test.sh installs it)");
        assert!(status.success(), "ffmpeg failed for {name}");
    }
    let ts = std::fs::read(&file).unwrap();
    Input { probe: probe(&file), ts, seconds: seconds as f64 }
}

/// Packets per stream as ffprobe counts them (stream 0 video, 1 audio).
fn probe(file: &Path) -> (usize, usize) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=stream_index", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    // (Lines look like "0", "0," or are empty, side data included.)
    let n = |s: &str| text.lines().filter(|l| l.split(',').next().map(str::trim) == Some(s)).count();
    (n("0"), n("1"))
}

const H264: &[&str] = &["-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-bf", "2", "-b:v", "3M"];
const HEVC: &[&str] = &["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-g", "60"];

fn h264() -> &'static Input {
    static I: OnceLock<Input> = OnceLock::new();
    I.get_or_init(|| ffmpeg_ts("h264_aac.ts", 10, H264, &[]))
}

fn hevc() -> &'static Input {
    static I: OnceLock<Input> = OnceLock::new();
    I.get_or_init(|| ffmpeg_ts("hevc_aac.ts", 5, HEVC, &[]))
}

/// Starts 3.7 s before the 33-bit wrap (2³³ / 90 kHz ≈ 95443.7 s).
fn wrapping() -> &'static Input {
    static I: OnceLock<Input> = OnceLock::new();
    I.get_or_init(|| ffmpeg_ts("wrap.ts", 10, H264, &["-output_ts_offset", "95440"]))
}

fn pid(p: &[u8]) -> u16 {
    (((p[1] & 0x1f) as u16) << 8) | p[2] as u16
}

/// Elementary stream packets (not PAT/PMT/null).
fn is_es(p: &[u8]) -> bool {
    let pid = pid(p);
    pid >= 0x100 && pid != 0x1fff && pid != 0x1000
}

// ---- the two demuxers ----

#[derive(Debug, Default, Clone)]
pub struct Outcome {
    video: usize,
    audio: usize,
    keyframes: usize,
    /// Video DTS, unwrapped (90 kHz).
    video_dts: Vec<i64>,
    /// Steps back of more than 2³² in the raw 33-bit video DTS the caller was handed.
    raw_wraps: usize,
    continuity_errors: u64,
    /// Errors the caller is told about besides continuity (ours: `pes_errors` + sync losses).
    other_errors: u64,
    /// Frames out after each push (for emission latency).
    audio_after_push: Vec<usize>,
}

impl Outcome {
    fn dts_monotonic(&self) -> bool {
        self.video_dts.windows(2).all(|w| w[0] <= w[1])
    }
    fn dts_span_s(&self) -> f64 {
        match (self.video_dts.first(), self.video_dts.last()) {
            (Some(a), Some(b)) => (b - a) as f64 / 90_000.0,
            _ => 0.0,
        }
    }
}

fn ours(data: &[u8], chunk: usize) -> Outcome {
    let mut demux = TsDemuxer::new(MAX_PES);
    let mut out = Outcome::default();
    let drain = |demux: &mut TsDemuxer, out: &mut Outcome| {
        while let Some(event) = demux.poll() {
            if let TsEvent::Frame(f) = event {
                if f.is_video() {
                    out.video += 1;
                    out.keyframes += f.keyframe as usize;
                    out.video_dts.push(f.dts.ticks());
                } else {
                    out.audio += 1;
                }
            }
        }
    };
    for c in data.chunks(chunk) {
        demux.push(c);
        drain(&mut demux, &mut out);
        out.audio_after_push.push(out.audio);
    }
    demux.flush();
    drain(&mut demux, &mut out);
    let s = demux.stats();
    out.continuity_errors = s.continuity_errors;
    out.other_errors = s.pes_errors + s.sync_losses;
    out
}

packet_filter_switch! {
    ReaderFilter<ReaderCtx> {
        Pat: demultiplex::PatPacketFilter<ReaderCtx>,
        Pmt: demultiplex::PmtPacketFilter<ReaderCtx>,
        Es: pes::PesPacketFilter<ReaderCtx, Collector>,
        Null: demultiplex::NullPacketFilter<ReaderCtx>,
    }
}

/// The context mpeg2ts-reader threads through every callback: where results have to go, since
/// its consumers are callbacks and not a queue the caller polls.
pub struct ReaderCtx {
    changeset: FilterChangeset<ReaderFilter>,
    out: Outcome,
    timeline: Unwrapper33,
    last_raw_dts: Option<u64>,
}

impl DemuxContext for ReaderCtx {
    type F = ReaderFilter;

    fn filter_changeset(&mut self) -> &mut FilterChangeset<ReaderFilter> {
        &mut self.changeset
    }

    fn construct(&mut self, req: FilterRequest<'_, '_>) -> ReaderFilter {
        match req {
            FilterRequest::ByPid(psi::pat::PAT_PID) => ReaderFilter::Pat(demultiplex::PatPacketFilter::default()),
            FilterRequest::Pmt { pid, program_number } => {
                ReaderFilter::Pmt(demultiplex::PmtPacketFilter::new(pid, program_number))
            }
            FilterRequest::ByStream { stream_type: StreamType::H264, .. } => Collector::filter(Es::Avc),
            FilterRequest::ByStream { stream_type: StreamType::H265, .. } => Collector::filter(Es::Hevc),
            FilterRequest::ByStream { stream_type: StreamType::ADTS, .. } => Collector::filter(Es::Aac),
            _ => ReaderFilter::Null(demultiplex::NullPacketFilter::default()),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Es {
    Avc,
    Hevc,
    Aac,
}

/// Reassembles one elementary stream's PES payloads (bounded like ours) and does the same
/// per-frame work as `TsDemuxer` (Annex B → length-prefixed, key frame detection, ADTS framing).
pub struct Collector {
    es: Es,
    buf: Vec<u8>,
    dts: Option<u64>,
    open: bool,
}

impl Collector {
    fn filter(es: Es) -> ReaderFilter {
        ReaderFilter::Es(pes::PesPacketFilter::new(Collector { es, buf: Vec::new(), dts: None, open: false }))
    }

    fn append(&mut self, ctx: &mut ReaderCtx, data: &[u8]) {
        if self.buf.len() + data.len() > MAX_PES {
            ctx.out.other_errors += 1;
            self.open = false;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(data);
        }
    }
}

impl pes::ElementaryStreamConsumer<ReaderCtx> for Collector {
    fn start_stream(&mut self, _ctx: &mut ReaderCtx) {}

    fn begin_packet(&mut self, ctx: &mut ReaderCtx, header: pes::PesHeader<'_>) {
        self.buf.clear();
        self.open = false;
        let pes::PesContents::Parsed(Some(parsed)) = header.contents() else {
            ctx.out.other_errors += 1;
            return;
        };
        let dts = match parsed.pts_dts() {
            Ok(pes::PtsDts::PtsOnly(Ok(pts))) => pts.value(),
            Ok(pes::PtsDts::Both { dts: Ok(dts), .. }) => dts.value(),
            _ => {
                ctx.out.other_errors += 1;
                return;
            }
        };
        self.dts = Some(dts);
        self.open = true;
        self.append(ctx, parsed.payload());
    }

    fn continue_packet(&mut self, ctx: &mut ReaderCtx, data: &[u8]) {
        if self.open {
            self.append(ctx, data);
        }
    }

    fn end_packet(&mut self, ctx: &mut ReaderCtx) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let raw = self.dts.expect("set with open");
        match self.es {
            Es::Avc | Es::Hevc => {
                if ctx.last_raw_dts.is_some_and(|last| last > raw && last - raw > 1 << 32) {
                    ctx.out.raw_wraps += 1;
                }
                ctx.last_raw_dts = Some(raw);
                let dts = ctx.timeline.unwrap(raw);
                let keyframe = annexb_nalus(&self.buf).iter().any(|n| match self.es {
                    Es::Avc => n.first().is_some_and(|b| b & 0x1f == 5),
                    _ => n.first().is_some_and(|b| (16..=23).contains(&((b >> 1) & 0x3f))),
                });
                let avcc = annexb_to_avcc(&self.buf);
                std::hint::black_box(avcc);
                ctx.out.video += 1;
                ctx.out.keyframes += keyframe as usize;
                ctx.out.video_dts.push(dts);
            }
            Es::Aac => {
                ctx.timeline.unwrap(raw);
                let mut rest = &self.buf[..];
                while rest.len() >= 7 && rest[0] == 0xff && rest[1] & 0xf0 == 0xf0 {
                    let len = (((rest[3] & 0x03) as usize) << 11) | ((rest[4] as usize) << 3) | (rest[5] as usize >> 5);
                    if len < 7 || len > rest.len() {
                        ctx.out.other_errors += 1;
                        break;
                    }
                    ctx.out.audio += 1;
                    rest = &rest[len..];
                }
            }
        }
    }

    fn continuity_error(&mut self, ctx: &mut ReaderCtx) {
        ctx.out.continuity_errors += 1;
        self.open = false;
        self.buf.clear();
    }
}

/// mpeg2ts-reader fed like our demuxer (`chunk` bytes per push). It has no end-of-stream call:
/// the last PES of each stream is never ended.
fn reader(data: &[u8], chunk: usize) -> Outcome {
    let mut ctx = ReaderCtx {
        changeset: FilterChangeset::default(),
        out: Outcome::default(),
        timeline: Unwrapper33::default(),
        last_raw_dts: None,
    };
    let mut demux = demultiplex::Demultiplex::new(&mut ctx);
    for c in data.chunks(chunk) {
        demux.push(&mut ctx, c);
        ctx.out.audio_after_push.push(ctx.out.audio);
    }
    ctx.out
}

fn row(case: &str, who: &str, o: &Outcome, probe: (usize, usize)) {
    eprintln!(
        "| {case:<28} | {who:<14} | {:>5}/{:<5} | {:>5}/{:<5} | {:>4} | {:>7} | {:>5} | {:>9.2} | {:>5} | {:>6} |",
        o.video,
        probe.0,
        o.audio,
        probe.1,
        o.keyframes,
        o.dts_monotonic(),
        o.raw_wraps,
        o.dts_span_s(),
        o.continuity_errors,
        o.other_errors
    );
}

fn header() {
    eprintln!(
        "| case                         | demuxer        | video/probe | audio/probe | keys | DTS mono | wraps | DTS span s | CC err | other err |"
    );
}

fn both(case: &str, input: &Input, data: &[u8], chunk: usize) -> (Outcome, Outcome) {
    let (a, b) = (ours(data, chunk), reader(data, chunk));
    header();
    row(case, "rill TsDemuxer", &a, input.probe);
    row(case, "mpeg2ts-reader", &b, input.probe);
    (a, b)
}

// ---- the cases ----

#[test]
#[ignore = "e2e tier: runs ffmpeg"]
fn clean_h264_aac_and_hevc_aac() {
    for (case, input) in [("H.264 + AAC, 10 s", h264()), ("HEVC + AAC, 5 s", hevc())] {
        let (ours, reader) = both(case, input, &input.ts, SRT_MESSAGE);
        // Ours: every packet ffprobe sees, flushed at the end.
        assert_eq!((ours.video, ours.audio), input.probe, "{case}");
        assert!(ours.dts_monotonic() && ours.continuity_errors == 0 && ours.other_errors == 0, "{case}");
        // mpeg2ts-reader: all but the last PES of each stream (no end-of-stream call); the last
        // audio PES carries several ADTS frames.
        assert_eq!(reader.video, input.probe.0 - 1, "{case}");
        assert!(reader.audio < input.probe.1 && reader.audio + 10 >= input.probe.1, "{case}");
        assert!(reader.dts_monotonic() && reader.continuity_errors == 0, "{case}");
        assert_eq!(ours.keyframes, reader.keyframes, "{case}");
        assert!((ours.dts_span_s() - (input.seconds - 1.0 / 30.0)).abs() < 0.1, "{case}: {}", ours.dts_span_s());
    }
}

#[test]
#[ignore = "e2e tier: runs ffmpeg"]
fn pts_wrap_is_unwrapped_once_by_timeline() {
    let input = wrapping();
    let (ours, reader) = both("33-bit wrap at 95443.7 s", input, &input.ts, SRT_MESSAGE);
    assert_eq!((ours.video, ours.audio), input.probe);
    assert!(ours.dts_monotonic() && (ours.dts_span_s() - 10.0).abs() < 0.1, "{}", ours.dts_span_s());
    // mpeg2ts-reader hands out the raw 33-bit value, which steps back by 2³³ once: unwrapping
    // stays with the caller (our Unwrapper33 makes the same continuous line out of it).
    assert_eq!(reader.raw_wraps, 1);
    assert!(reader.dts_monotonic() && (reader.dts_span_s() - 10.0).abs() < 0.1);
}

#[test]
#[ignore = "e2e tier: runs ffmpeg"]
fn continuity_errors_are_reported_by_both() {
    let input = h264();
    let mut broken = input.ts.clone();
    let mut n = 0;
    for p in broken.chunks_mut(PACKET_SIZE).filter(|p| is_es(p)) {
        n += 1;
        if n % 401 == 0 {
            p[3] = (p[3] & 0xf0) | ((p[3] + 5) & 0x0f);
        }
    }
    let (ours, reader) = both("CC jump every 401st ES packet", input, &broken, SRT_MESSAGE);
    // ElementaryStreamConsumer::continuity_error reaches the caller: CC errors are exposed.
    assert!(ours.continuity_errors > 0 && reader.continuity_errors > 0);
    assert!(ours.video > input.probe.0 / 2 && reader.video > input.probe.0 / 2);
}

#[test]
#[ignore = "e2e tier: runs ffmpeg"]
fn a_duplicate_packet_is_not_an_error() {
    // ISO/IEC 13818-1 §2.4.3.3: a packet may be sent twice in a row (same CC, same bytes) and
    // the duplicate is to be discarded. Duplicate the 2nd packet of the 20th video PES.
    let input = h264();
    let mut out = Vec::with_capacity(input.ts.len() + PACKET_SIZE);
    let video_pid = input.ts.chunks(PACKET_SIZE).find(|p| is_es(p) && p[1] & 0x40 != 0).map(pid).unwrap();
    let (mut starts, mut done) = (0, false);
    for p in input.ts.chunks(PACKET_SIZE) {
        out.extend_from_slice(p);
        if pid(p) == video_pid && !done {
            if p[1] & 0x40 != 0 {
                starts += 1;
            } else if starts == 20 {
                out.extend_from_slice(p);
                done = true;
            }
        }
    }
    let (ours, reader) = both("one duplicated video packet", input, &out, SRT_MESSAGE);
    assert_eq!((ours.video, ours.continuity_errors), (input.probe.0, 0));
    // mpeg2ts-reader calls a duplicate a continuity error and drops the PES it belongs to.
    assert_eq!(reader.continuity_errors, 1);
    assert_eq!(reader.video, input.probe.0 - 2, "the duplicate's PES and the last one are lost");
}

#[test]
#[ignore = "e2e tier: runs ffmpeg"]
fn bad_sync_bytes() {
    let input = h264();
    let mut broken = input.ts.clone();
    for p in broken.chunks_mut(PACKET_SIZE).step_by(997).skip(1) {
        p[0] = 0x48;
    }
    let bad = broken.chunks(PACKET_SIZE).filter(|p| p[0] != 0x47).count();
    let (mine, theirs) = both("bad sync every 997th packet", input, &broken, SRT_MESSAGE);
    // Ours skips to the next sync byte (counted); mpeg2ts-reader's `Demultiplex::push` stops at
    // the first packet without a sync byte and silently drops the rest of that push.
    assert!(mine.other_errors >= bad as u64);
    assert_eq!(theirs.other_errors, 0, "nothing tells the caller");
    assert!(theirs.video < mine.video, "{} vs {}", theirs.video, mine.video);
    // One push of the whole input: it stops at the first bad packet (the 998th).
    let whole = reader(&broken, broken.len());
    let whole_ours = ours(&broken, broken.len());
    header();
    row("same, pushed in one buffer", "rill TsDemuxer", &whole_ours, input.probe);
    row("same, pushed in one buffer", "mpeg2ts-reader", &whole, input.probe);
    assert!(whole.video < 30, "{} frames", whole.video);
    assert_eq!(whole_ours.video, mine.video);
}

#[test]
#[ignore = "e2e tier: runs ffmpeg"]
fn chunks_not_aligned_to_packets() {
    // A byte stream cut anywhere (UDP/TCP reads, files): ours keeps the partial packet for the
    // next push; mpeg2ts-reader uses `chunks_exact(188)` and drops each push's remainder.
    let input = h264();
    let (ours, reader) = both("1000-byte pushes", input, &input.ts, 1000);
    assert_eq!((ours.video, ours.audio), input.probe);
    assert_eq!((reader.video, reader.audio), (0, 0), "nothing survives");
    assert!(reader.continuity_errors > 0);
}

#[test]
#[ignore = "e2e tier: runs ffmpeg"]
fn absurd_pes_lengths() {
    let input = h264();
    let mut broken = input.ts.clone();
    for p in broken.chunks_mut(PACKET_SIZE).filter(|p| is_es(p) && p[1] & 0x40 != 0) {
        let start = if p[3] & 0x20 != 0 { 5 + p[4] as usize } else { 4 };
        if start + 6 <= PACKET_SIZE && p[start..start + 3] == [0, 0, 1] {
            p[start + 4] = 0xff;
            p[start + 5] = 0xff;
        }
    }
    let (ours, reader) = both("every PES claims 65535 bytes", input, &broken, SRT_MESSAGE);
    // Neither trusts the length beyond the next unit start; memory stays bounded by the
    // consumer (mpeg2ts-reader does not bound a PES at all: `Collector` does, like ours).
    assert_eq!(ours.video, input.probe.0);
    assert_eq!(reader.video, input.probe.0 - 1);
}

#[test]
#[ignore = "e2e tier: runs ffmpeg"]
fn emission_latency_of_bounded_pes() {
    // Packet by packet: when does each audio frame come out? Ours finishes a PES whose length
    // is known as soon as it is complete; mpeg2ts-reader only at the stream's next unit start.
    let input = h264();
    let (a, b) = (ours(&input.ts, PACKET_SIZE), reader(&input.ts, PACKET_SIZE));
    let first_at = |o: &Outcome, k: usize| o.audio_after_push.iter().position(|&n| n >= k);
    let packets = input.ts.len() / PACKET_SIZE;
    let ms_per_packet = input.seconds * 1000.0 / packets as f64;
    let delays: Vec<f64> = (1..=b.audio)
        .filter_map(|k| Some((first_at(&b, k)? as f64 - first_at(&a, k)? as f64) * ms_per_packet))
        .collect();
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    let max = delays.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "audio frames out later with mpeg2ts-reader: mean {mean:.1} ms, max {max:.1} ms ({} frames)",
        delays.len()
    );
    assert!(delays.iter().all(|&d| d >= 0.0));
    assert!(mean > 1.0, "{mean}");
}

#[test]
#[ignore = "e2e tier: runs ffmpeg"]
fn throughput_and_allocations() {
    let input = h264();
    let rounds = if cfg!(debug_assertions) { 1 } else { 10 };
    let mb = (input.ts.len() * rounds) as f64 / 1e6;
    eprintln!(
        "| demuxer        | MB/s (SRT messages, {mb:.0} MB) | allocations per MB | allocated bytes per input byte |"
    );
    let measure = |who: &str, run: &dyn Fn(&[u8]) -> Outcome| {
        let (a0, b0) = allocations();
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(run(&input.ts));
        }
        let took = start.elapsed().max(Duration::from_nanos(1));
        let (a1, b1) = allocations();
        eprintln!(
            "| {who:<14} | {:>8.0} | {:>8.0} | {:>6.2} |",
            mb / took.as_secs_f64(),
            (a1 - a0) as f64 / mb,
            (b1 - b0) as f64 / (mb * 1e6)
        );
    };
    measure("rill TsDemuxer", &|d| ours(d, SRT_MESSAGE));
    measure("mpeg2ts-reader", &|d| reader(d, SRT_MESSAGE));
}
