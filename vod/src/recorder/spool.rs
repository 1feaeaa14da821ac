//! The recorder's queue between its reader (Bus → segmenter events) and its writer (storage
//! and catalog), as a sans-IO state machine. Events stay in order. Part payloads are held in
//! memory up to [`SpoolConfig::memory_bytes`]; past half of that the driver spills the newest
//! ones to files ([`Spool::poll_spill`]), up to [`SpoolConfig::disk_bytes`]. When neither has
//! room, parts are dropped up to the start of the next segment, and the loss takes their place
//! in the queue as a [`Gap`], which the writer records: a loss is never silent. Frames lost
//! upstream (the reader fell behind the Bus) are measured here too, from the leader track's
//! timeline ([`Spool::lost_upstream`]).

use bytes::Bytes;
use rill_media::cmaf::{Part, SegmenterEvent, TrackKind};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How much a recording may hold while its writer waits.
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// Part payload bytes held in memory at most (past it, and with no room on disk, parts
    /// are dropped). Spilling keeps memory under half of it while the disk keeps up.
    pub memory_bytes: usize,
    /// Bytes of spill files at most.
    pub disk_bytes: u64,
    /// A spill file grows to about this size before the next one is started; a file is
    /// deleted once every payload in it was read back.
    pub file_bytes: u64,
}

impl Default for SpoolConfig {
    /// 64 MiB of memory (85 s of a 6 Mbit/s stream without any disk) and 2 GiB of spill
    /// files (45 minutes of it).
    fn default() -> Self {
        SpoolConfig { memory_bytes: 64 << 20, disk_bytes: 2 << 30, file_bytes: 16 << 20 }
    }
}

/// Media lost from a recording: the leader track's frames and time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gap {
    pub frames: u64,
    pub duration: Duration,
}

impl Gap {
    fn add(&mut self, other: Gap) {
        self.frames += other.frames;
        self.duration += other.duration;
    }
}

/// What the writer receives, in order.
#[derive(Debug)]
pub enum Entry {
    Event(SegmenterEvent),
    /// Media was lost here: the segments open before it end, the next ones are discontinuities.
    Gap(Gap),
}

/// Where a spilled payload lies: `len` bytes at `offset` of spill file `file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: u64,
    pub offset: u64,
    pub len: usize,
}

/// An entry handed to the writer. With `spilled`, the part's payload is on disk: read it back,
/// then call [`Spool::release`].
#[derive(Debug)]
pub struct Popped {
    pub entry: Entry,
    pub spilled: Option<Location>,
}

/// Payloads for the driver to write back to back at `offset` of spill file `file`, then to
/// report with [`Spool::spilled`].
#[derive(Debug)]
pub struct SpillJob {
    pub file: u64,
    pub offset: u64,
    /// (entry id, payload), in file order.
    pub payloads: Vec<(u64, Bytes)>,
}

/// What a push lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lost {
    pub gap: Gap,
    /// This loss begins a new gap (frames got through since the last one).
    pub new_gap: bool,
}

struct Slot {
    entry: Entry,
    spilled: Option<Location>,
}

#[derive(Default)]
struct SpillFile {
    len: u64,
    /// Payloads in it not yet read back.
    live: usize,
}

/// Leader-track timeline, to measure what was lost upstream.
#[derive(Default)]
struct Timeline {
    /// End (decode time + duration) of the last leader part, in its timescale.
    end: Option<u64>,
    /// Ticks per frame of the last leader part.
    frame_ticks: u64,
    /// Frames were lost upstream: measure at the next leader segment start.
    measure: bool,
}

/// The queue of one recording. See the module doc.
pub struct Spool {
    config: SpoolConfig,
    slots: VecDeque<Slot>,
    /// Id of `slots[0]`.
    first_id: u64,
    /// Payload bytes of parts held in memory.
    memory: usize,
    /// Bytes of spill files not yet deleted.
    disk: u64,
    files: BTreeMap<u64, SpillFile>,
    /// The file spills append to.
    current_file: u64,
    spill_in_flight: bool,
    spill_enabled: bool,
    /// Files to delete (every payload read back).
    removable: Vec<u64>,
    /// While dropping: parts of segments before this one are dropped too.
    resume_msn: Option<u64>,
    leader: Option<TrackKind>,
    timeline: Timeline,
}

impl Spool {
    /// A spool; `spill` false keeps everything in memory (no spill directory).
    pub fn new(config: SpoolConfig, spill: bool) -> Spool {
        Spool {
            config,
            slots: VecDeque::new(),
            first_id: 0,
            memory: 0,
            disk: 0,
            files: BTreeMap::new(),
            current_file: 0,
            spill_in_flight: false,
            spill_enabled: spill,
            removable: Vec::new(),
            resume_msn: None,
            leader: None,
            timeline: Timeline::default(),
        }
    }

    /// Part payload bytes in memory.
    pub fn memory_bytes(&self) -> usize {
        self.memory
    }

    /// Bytes of spill files.
    pub fn disk_bytes(&self) -> u64 {
        self.disk
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Queues an event, or drops it (a part, when memory is full) and queues the loss.
    pub fn push(&mut self, event: SegmenterEvent) -> Lost {
        let mut lost = Lost::default();
        let part = match event {
            SegmenterEvent::Part(part) => part,
            SegmenterEvent::Tracks(tracks) => {
                self.leader = tracks.first().map(|t| t.kind);
                self.timeline = Timeline { measure: self.timeline.measure, ..Timeline::default() };
                self.enqueue(Entry::Event(SegmenterEvent::Tracks(tracks)));
                return lost;
            }
            other => {
                self.enqueue(Entry::Event(other));
                return lost;
            }
        };
        let is_leader = self.leader == Some(part.kind);
        if is_leader {
            if let Some(upstream) = self.measure_upstream(&part) {
                lost = Lost { gap: upstream, new_gap: true };
                self.enqueue_gap(upstream);
            }
        }
        let dropping = self.resume_msn.is_some_and(|resume| part.msn < resume);
        if dropping || self.memory + part.bytes.len() > self.config.memory_bytes {
            let gap = if is_leader {
                Gap { frames: part.samples as u64, duration: ticks_duration(part.duration, part.timescale) }
            } else {
                Gap::default()
            };
            lost.new_gap |= self.resume_msn.is_none();
            lost.gap.add(gap);
            self.resume_msn = Some(self.resume_msn.unwrap_or(0).max(part.msn + 1));
            self.enqueue_gap(gap);
            return lost;
        }
        self.resume_msn = None;
        self.memory += part.bytes.len();
        self.enqueue(Entry::Event(SegmenterEvent::Part(part)));
        lost
    }

    /// The reader lost frames upstream (it fell behind the Bus and resubscribed): the loss is
    /// measured at the next leader segment, from the gap in its timeline.
    pub fn lost_upstream(&mut self) {
        self.timeline.measure = true;
    }

    /// The next entry for the writer.
    pub fn pop(&mut self) -> Option<Popped> {
        let slot = self.slots.pop_front()?;
        self.first_id += 1;
        if let (Entry::Event(SegmenterEvent::Part(part)), None) = (&slot.entry, slot.spilled) {
            self.memory -= part.bytes.len();
        }
        Some(Popped { entry: slot.entry, spilled: slot.spilled })
    }

    /// A popped payload was read back (or could not be): its file may go.
    pub fn release(&mut self, at: Location) {
        if let Some(file) = self.files.get_mut(&at.file) {
            file.live = file.live.saturating_sub(1);
        }
        self.collect(at.file);
    }

    /// Payloads to spill now, if memory is over half its bound and the disk has room.
    pub fn poll_spill(&mut self) -> Option<SpillJob> {
        if !self.spill_enabled || self.spill_in_flight || self.memory <= self.config.memory_bytes / 2 {
            return None;
        }
        if self.files.get(&self.current_file).is_some_and(|f| f.len >= self.config.file_bytes) {
            self.current_file += 1;
        }
        let offset = self.files.get(&self.current_file).map_or(0, |f| f.len);
        let mut excess = self.memory - self.config.memory_bytes / 2;
        let mut room = self.config.disk_bytes.saturating_sub(self.disk);
        let mut payloads = Vec::new();
        // The newest first: the writer reads the oldest from memory when it resumes.
        for (index, slot) in self.slots.iter().enumerate().rev() {
            if excess == 0 {
                break;
            }
            let (Entry::Event(SegmenterEvent::Part(part)), None) = (&slot.entry, slot.spilled) else { continue };
            let len = part.bytes.len();
            if len as u64 > room {
                break;
            }
            room -= len as u64;
            excess = excess.saturating_sub(len);
            payloads.push((self.first_id + index as u64, part.bytes.clone()));
        }
        if payloads.is_empty() {
            return None;
        }
        self.spill_in_flight = true;
        self.files.entry(self.current_file).or_default();
        Some(SpillJob { file: self.current_file, offset, payloads })
    }

    /// The outcome of a [`SpillJob`]. On failure spilling stops for good (memory only).
    pub fn spilled(&mut self, job: SpillJob, written: bool) {
        self.spill_in_flight = false;
        let total: u64 = job.payloads.iter().map(|(_, b)| b.len() as u64).sum();
        if !written {
            self.spill_enabled = false;
            // What was written of it is garbage: count the whole job against the disk.
        }
        let file = self.files.entry(job.file).or_default();
        file.len = job.offset + total;
        self.disk += total;
        if written {
            let mut offset = job.offset;
            for (id, bytes) in job.payloads {
                let at = Location { file: job.file, offset, len: bytes.len() };
                offset += bytes.len() as u64;
                // An entry the writer took meanwhile left with its payload in memory.
                let Some(slot) = id.checked_sub(self.first_id).and_then(|i| self.slots.get_mut(i as usize)) else {
                    continue;
                };
                if let Entry::Event(SegmenterEvent::Part(part)) = &mut slot.entry {
                    self.memory -= part.bytes.len();
                    part.bytes = Bytes::new();
                    slot.spilled = Some(at);
                    file.live += 1;
                }
            }
        }
        self.collect(job.file);
    }

    /// Spill files to delete now.
    pub fn poll_remove(&mut self) -> Option<u64> {
        self.removable.pop()
    }

    /// Deletes `file` once nothing in it is still to be read, unless a spill is writing to it.
    fn collect(&mut self, file: u64) {
        let Some(state) = self.files.get(&file) else { return };
        if state.live > 0 || (self.spill_in_flight && file == self.current_file) {
            return;
        }
        self.disk -= state.len;
        self.files.remove(&file);
        self.removable.push(file);
        if file == self.current_file {
            self.current_file += 1;
        }
    }

    fn enqueue(&mut self, entry: Entry) {
        self.slots.push_back(Slot { entry, spilled: None });
    }

    /// Queues a loss, merged into the previous entry if that is a loss too.
    fn enqueue_gap(&mut self, gap: Gap) {
        match self.slots.back_mut() {
            Some(Slot { entry: Entry::Gap(previous), .. }) => previous.add(gap),
            _ => self.enqueue(Entry::Gap(gap)),
        }
    }

    /// Follows the leader's timeline; after [`Spool::lost_upstream`], the loss at the next
    /// segment start (a discontinuity the segmenter cut after the gap).
    fn measure_upstream(&mut self, part: &Part) -> Option<Gap> {
        let timeline = &mut self.timeline;
        let mut lost = None;
        if timeline.measure && part.index == 0 && part.discontinuity {
            timeline.measure = false;
            if let Some(end) = timeline.end.filter(|&end| part.decode_time > end) {
                let ticks = part.decode_time - end;
                let frames = if timeline.frame_ticks > 0 { ticks.div_ceil(timeline.frame_ticks) } else { 0 };
                lost = Some(Gap { frames, duration: ticks_duration(ticks, part.timescale) });
            }
        }
        timeline.end = Some(part.decode_time + part.duration);
        if part.samples > 0 {
            timeline.frame_ticks = part.duration / part.samples as u64;
        }
        lost
    }
}

fn ticks_duration(ticks: u64, timescale: u32) -> Duration {
    Duration::from_nanos((ticks as u128 * 1_000_000_000 / timescale.max(1) as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rill_media::cmaf::CmafTrack;
    use rill_media::track::CodecConfig;
    use std::sync::Arc;
    use std::time::SystemTime;

    const KIB: usize = 1024;

    fn tracks() -> SegmenterEvent {
        let track = |kind, track_id| {
            Arc::new(CmafTrack {
                kind,
                track_id,
                codec: CodecConfig::Opus { channels: 2, sample_rate: 48_000 },
                timescale: 90_000,
                init: Bytes::new(),
            })
        };
        SegmenterEvent::Tracks(vec![track(TrackKind::Video, 1), track(TrackKind::Audio, 2)])
    }

    /// Part `index` of segment `msn` of `kind`: 6 frames (200 ms at 30 fps) of `kib` KiB;
    /// segments of 10 parts, so segment `msn` starts at `msn` × 2 s.
    fn part(kind: TrackKind, msn: u64, index: u32, kib: usize) -> SegmenterEvent {
        SegmenterEvent::Part(Part {
            kind,
            msn,
            index,
            independent: index == 0,
            ends_segment: index == 9,
            samples: 6,
            discontinuity: false,
            decode_time: (msn * 10 + index as u64) * 18_000,
            duration: 18_000,
            timescale: 90_000,
            wall_clock: SystemTime::UNIX_EPOCH,
            bytes: Bytes::from(vec![msn as u8; kib * KIB]),
        })
    }

    fn video(msn: u64, index: u32, kib: usize) -> SegmenterEvent {
        part(TrackKind::Video, msn, index, kib)
    }

    /// What the writer would see: parts as (kind, msn, index), gaps as (frames, ms).
    #[derive(Debug, PartialEq)]
    enum Seen {
        Part(TrackKind, u64, u32),
        Gap(u64, u128),
        Tracks,
    }

    fn drain(spool: &mut Spool) -> Vec<Seen> {
        let mut seen = Vec::new();
        while let Some(popped) = spool.pop() {
            seen.push(match popped.entry {
                Entry::Event(SegmenterEvent::Part(p)) => Seen::Part(p.kind, p.msn, p.index),
                Entry::Event(_) => Seen::Tracks,
                Entry::Gap(gap) => Seen::Gap(gap.frames, gap.duration.as_millis()),
            });
            if let Some(at) = popped.spilled {
                spool.release(at);
            }
        }
        seen
    }

    fn config(memory_kib: usize, disk_kib: u64) -> SpoolConfig {
        SpoolConfig { memory_bytes: memory_kib * KIB, disk_bytes: disk_kib * KIB as u64, file_bytes: 64 * KIB as u64 }
    }

    #[test]
    fn events_come_out_in_order_and_memory_is_given_back() {
        let mut spool = Spool::new(config(1024, 0), false);
        assert_eq!(spool.push(tracks()), Lost::default());
        for index in 0..3 {
            assert_eq!(spool.push(video(0, index, 10)), Lost::default());
            assert_eq!(spool.push(part(TrackKind::Audio, 0, index, 1)), Lost::default());
        }
        assert_eq!(spool.memory_bytes(), 33 * KIB);
        let seen = drain(&mut spool);
        assert_eq!(seen.len(), 7);
        assert_eq!(seen[0], Seen::Tracks);
        assert_eq!(seen[5], Seen::Part(TrackKind::Video, 0, 2));
        assert_eq!(spool.memory_bytes(), 0);
        assert!(spool.is_empty());
    }

    #[test]
    fn without_room_the_rest_of_the_segment_is_dropped_and_counted_in_its_place() {
        // Room for 5 parts of 10 KiB, no disk.
        let mut spool = Spool::new(config(50, 0), false);
        spool.push(tracks());
        for index in 0..5 {
            spool.push(video(0, index, 10));
        }
        let lost = spool.push(video(0, 5, 10));
        assert_eq!(lost, Lost { gap: Gap { frames: 6, duration: Duration::from_millis(200) }, new_gap: true });
        // The writer frees room, but the rest of segment 0 still goes: a segment never has a hole.
        assert_eq!(spool.pop().map(|p| p.spilled), Some(None));
        assert_eq!(spool.pop().map(|p| p.spilled), Some(None));
        let lost = spool.push(part(TrackKind::Audio, 0, 5, 1));
        assert_eq!(lost, Lost::default(), "audio is not the leader: no frames counted, same gap");
        for index in 6..10 {
            assert!(!spool.push(video(0, index, 10)).new_gap);
        }
        // Segment 1 starts on a keyframe and fits.
        assert_eq!(spool.push(video(1, 0, 10)), Lost::default());
        let seen = drain(&mut spool);
        let expected_tail = [
            Seen::Part(TrackKind::Video, 0, 2),
            Seen::Part(TrackKind::Video, 0, 3),
            Seen::Part(TrackKind::Video, 0, 4),
            Seen::Gap(30, 1000),
            Seen::Part(TrackKind::Video, 1, 0),
        ];
        assert_eq!(seen[1..], expected_tail, "five parts of segment 0 lost, as one gap");
    }

    #[test]
    fn payloads_spill_to_disk_and_come_back_in_order() {
        // 40 KiB of memory (spilling above 20), 1 MiB of disk, 64 KiB files.
        let mut spool = Spool::new(config(40, 1024), true);
        spool.push(tracks());
        let mut jobs = Vec::new();
        for n in 0..30u32 {
            assert_eq!(spool.push(video(n as u64 / 10, n % 10, 10)), Lost::default(), "part {n} kept");
            if let Some(job) = spool.poll_spill() {
                assert!(spool.poll_spill().is_none(), "one spill at a time");
                jobs.push((job.file, job.offset, job.payloads.len()));
                spool.spilled(job, true);
            }
            assert!(spool.memory_bytes() <= 20 * KIB, "memory kept at half its bound");
        }
        assert_eq!(spool.disk_bytes(), 280 * KIB as u64, "28 of 30 parts on disk");
        assert!(jobs.iter().all(|&(_, offset, _)| offset < 64 * KIB as u64), "a file takes spills below 64 KiB");
        assert!(jobs.iter().map(|j| j.0).max() >= Some(3), "files rotate at 64 KiB: {jobs:?}");
        let mut order = Vec::new();
        let mut removed = Vec::new();
        while let Some(popped) = spool.pop() {
            if let Entry::Event(SegmenterEvent::Part(p)) = popped.entry {
                order.push(p.msn * 10 + p.index as u64);
                assert_eq!(p.bytes.is_empty(), popped.spilled.is_some(), "a spilled payload is read back from disk");
            }
            if let Some(at) = popped.spilled {
                spool.release(at);
            }
            removed.extend(std::iter::from_fn(|| spool.poll_remove()));
        }
        assert_eq!(order, (0..30).collect::<Vec<_>>());
        removed.sort_unstable();
        assert_eq!(removed, (0..removed.len() as u64).collect::<Vec<_>>(), "every file deleted once");
        assert_eq!(spool.disk_bytes(), 0);
    }

    #[test]
    fn a_part_taken_while_its_spill_is_written_stays_in_memory() {
        let mut spool = Spool::new(config(24, 1024), true);
        spool.push(video(0, 0, 8));
        spool.push(video(0, 1, 8));
        let job = spool.poll_spill().expect("16 KiB is over half of 24");
        assert_eq!(job.payloads.len(), 1, "the newest part is enough");
        assert_eq!(spool.push(video(0, 2, 8)), Lost::default());
        assert!(spool.poll_spill().is_none(), "one job in flight");
        for _ in 0..2 {
            assert!(spool.pop().unwrap().spilled.is_none(), "taken from memory");
        }
        spool.spilled(job, true);
        assert_eq!(spool.poll_remove(), Some(0), "the file holds nothing still queued");
        assert_eq!((spool.memory_bytes(), spool.disk_bytes()), (8 * KIB, 0));
    }

    #[test]
    fn a_failed_spill_falls_back_to_memory() {
        let mut spool = Spool::new(config(20, 1024), true);
        spool.push(video(0, 0, 8));
        spool.push(video(0, 1, 8));
        let job = spool.poll_spill().unwrap();
        spool.spilled(job, false);
        assert_eq!(spool.poll_remove(), Some(0), "the torn file goes");
        assert!(spool.poll_spill().is_none(), "no more spilling");
        assert_eq!(spool.memory_bytes(), 16 * KIB);
        assert!(spool.push(video(0, 2, 8)).new_gap, "memory full");
    }

    #[test]
    fn a_full_disk_means_a_gap() {
        let mut spool = Spool::new(config(20, 16), true);
        spool.push(tracks());
        let mut lost = Gap::default();
        for n in 0..10u32 {
            lost.add(spool.push(video(0, n, 8)).gap);
            if let Some(job) = spool.poll_spill() {
                spool.spilled(job, true);
            }
        }
        assert_eq!(spool.disk_bytes(), 16 * KIB as u64);
        assert_eq!(lost.frames, 6 * 6, "two on disk, two in memory, six parts dropped");
    }

    #[test]
    fn frames_lost_upstream_are_measured_from_the_timeline() {
        let mut spool = Spool::new(config(1024, 0), false);
        spool.push(tracks());
        spool.push(video(0, 0, 1));
        spool.push(video(0, 1, 1)); // ends at 400 ms
        spool.lost_upstream();
        // The segmenter resumes at the next keyframe, 3 s later, as a discontinuity.
        let SegmenterEvent::Part(mut resumed) = video(1, 0, 1) else { unreachable!() };
        resumed.decode_time = 3400 * 90;
        resumed.discontinuity = true;
        let lost = spool.push(SegmenterEvent::Part(resumed));
        assert_eq!(lost, Lost { gap: Gap { frames: 90, duration: Duration::from_secs(3) }, new_gap: true });
        let seen = drain(&mut spool);
        assert_eq!(seen[3..], [Seen::Gap(90, 3000), Seen::Part(TrackKind::Video, 1, 0)]);
    }
}
