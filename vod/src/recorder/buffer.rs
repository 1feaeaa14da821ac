//! The driver of a recording's [`Spool`]: the reader pushes into it without ever waiting, a
//! spiller task writes its spills to files under `<spool dir>/<video id>/`, and the writer
//! takes entries in order, reading spilled payloads back. The spool directory belongs to the
//! recording and is removed with it.

use super::spool::{Entry, Gap, Location, Lost, SpillJob, Spool, SpoolConfig};
use rill_media::cmaf::SegmenterEvent;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{watch, Notify};

pub(crate) struct Buffer {
    state: Mutex<State>,
    /// Something was queued, or the buffer was closed.
    queued: Notify,
    /// Memory grew: a spill may be due.
    grew: Notify,
    /// The writer gave up: the reader stops.
    stopped: watch::Sender<bool>,
    /// `None`: memory only.
    dir: Option<PathBuf>,
}

struct State {
    spool: Spool,
    /// The reader is done: nothing more comes.
    closed: bool,
}

impl Buffer {
    /// A buffer whose spill files go in `dir` (created at the first spill).
    pub fn new(config: SpoolConfig, dir: Option<PathBuf>) -> Arc<Buffer> {
        Arc::new(Buffer {
            state: Mutex::new(State { spool: Spool::new(config, dir.is_some()), closed: false }),
            queued: Notify::new(),
            grew: Notify::new(),
            stopped: watch::Sender::new(false),
            dir,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reader's side: queues an event at once (or counts it lost).
    pub fn push(&self, event: SegmenterEvent) -> Lost {
        let lost = self.lock().spool.push(event);
        self.queued.notify_one();
        self.grew.notify_one();
        lost
    }

    /// The reader fell behind the Bus and lost frames (measured at the next segment).
    pub fn lost_upstream(&self) {
        self.lock().spool.lost_upstream();
    }

    /// The reader is done; the writer drains what is queued.
    pub fn close(&self) {
        self.lock().closed = true;
        self.queued.notify_one();
        self.grew.notify_one();
    }

    /// The writer failed: the reader should stop.
    pub fn stop(&self) {
        self.stopped.send_replace(true);
    }

    /// Resolves once [`Buffer::stop`] was called.
    pub async fn stopped(&self) {
        let mut stopped = self.stopped.subscribe();
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// The writer's side: the next entry, waiting for one; `None` once closed and drained.
    /// A payload that cannot be read back from its spill file becomes a [`Gap`] (logged).
    pub async fn next(&self) -> Option<Entry> {
        loop {
            let (popped, closed) = {
                let mut state = self.lock();
                (state.spool.pop(), state.closed)
            };
            let popped = match popped {
                Some(popped) => popped,
                None if closed => return None,
                None => {
                    self.queued.notified().await;
                    continue;
                }
            };
            let (Some(at), Some(dir)) = (popped.spilled, &self.dir) else { return Some(popped.entry) };
            let path = spill_path(dir, at.file);
            let read = tokio::task::spawn_blocking(move || read_at(&path, at)).await.map_err(io::Error::other);
            self.lock().spool.release(at);
            self.remove_files().await;
            return Some(match (popped.entry, read) {
                (Entry::Event(SegmenterEvent::Part(mut part)), Ok(Ok(bytes))) => {
                    part.bytes = bytes.into();
                    Entry::Event(SegmenterEvent::Part(part))
                }
                (Entry::Event(SegmenterEvent::Part(part)), Ok(Err(error)) | Err(error)) => {
                    tracing::error!(%error, msn = part.msn, "a spilled part cannot be read back; recorded as a gap");
                    Entry::Gap(Gap { frames: part.samples as u64, duration: part_duration(&part) })
                }
                (entry, _) => entry,
            });
        }
    }

    /// The spiller: writes the spool's spills until the reader is done, reporting the bytes
    /// of each to `on_spilled`. Its failures only stop spilling (memory alone holds what it
    /// can).
    pub async fn spill(self: Arc<Self>, on_spilled: impl Fn(u64) + Send) {
        let Some(dir) = self.dir.clone() else { return };
        loop {
            let (job, closed) = {
                let mut state = self.lock();
                (state.spool.poll_spill(), state.closed)
            };
            let job = match job {
                Some(job) => job,
                None if closed => return,
                None => {
                    self.grew.notified().await;
                    continue;
                }
            };
            let (dir, job) = (dir.clone(), job);
            let (job, written) = tokio::task::spawn_blocking(move || {
                let written = write_job(&dir, &job);
                (job, written)
            })
            .await
            .expect("spill writes do not panic");
            match &written {
                Ok(()) => on_spilled(job.payloads.iter().map(|(_, b)| b.len() as u64).sum()),
                Err(error) => tracing::warn!(%error, "cannot spill the recording buffer to disk; memory only"),
            }
            self.lock().spool.spilled(job, written.is_ok());
            self.remove_files().await;
        }
    }

    /// Deletes the spill files the spool no longer needs.
    async fn remove_files(&self) {
        let Some(dir) = &self.dir else { return };
        let files: Vec<u64> = {
            let mut state = self.lock();
            std::iter::from_fn(|| state.spool.poll_remove()).collect()
        };
        if files.is_empty() {
            return;
        }
        let dir = dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for file in files {
                let _ = std::fs::remove_file(spill_path(&dir, file));
            }
        })
        .await;
    }

    /// Removes the spool directory (when the recording is over).
    pub async fn remove_dir(&self) {
        let Some(dir) = self.dir.clone() else { return };
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    }
}

fn spill_path(dir: &Path, file: u64) -> PathBuf {
    dir.join(format!("{file}.spill"))
}

fn write_job(dir: &Path, job: &SpillJob) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = spill_path(dir, job.file);
    let file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path)?;
    let mut offset = job.offset;
    for (_, bytes) in &job.payloads {
        file.write_all_at(bytes, offset).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        offset += bytes.len() as u64;
    }
    Ok(())
}

fn read_at(path: &Path, at: Location) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0; at.len];
    std::fs::File::open(path)?.read_exact_at(&mut bytes, at.offset)?;
    Ok(bytes)
}

fn part_duration(part: &rill_media::cmaf::Part) -> std::time::Duration {
    std::time::Duration::from_nanos((part.duration as u128 * 1_000_000_000 / part.timescale.max(1) as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rill_media::cmaf::{Part, TrackKind};
    use std::time::SystemTime;

    fn part(index: u32, kib: usize) -> SegmenterEvent {
        SegmenterEvent::Part(Part {
            kind: TrackKind::Video,
            msn: 0,
            index,
            independent: index == 0,
            ends_segment: false,
            samples: 6,
            discontinuity: false,
            decode_time: index as u64 * 18_000,
            duration: 18_000,
            timescale: 90_000,
            wall_clock: SystemTime::UNIX_EPOCH,
            bytes: Bytes::from(vec![index as u8; kib << 10]),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_writer_loses_nothing_the_disk_can_hold() {
        let dir = std::env::temp_dir().join(format!("rill-spool-test-{}", std::process::id()));
        let config = SpoolConfig { memory_bytes: 64 << 10, disk_bytes: 16 << 20, file_bytes: 256 << 10 };
        let buffer = Buffer::new(config, Some(dir.clone()));
        let spiller = tokio::spawn(buffer.clone().spill(|_| {}));
        // The writer is stalled while 4 MiB arrive, 64 times the memory bound.
        for index in 0..256 {
            assert_eq!(buffer.push(part(index, 16)), Lost::default(), "part {index}");
            // A disk faster than the stream: the spill keeps memory under half its bound.
            while buffer.lock().spool.memory_bytes() > 32 << 10 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        assert!(buffer.lock().spool.disk_bytes() > 3 << 20, "most of it went to disk");
        buffer.close();
        let mut index = 0;
        while let Some(entry) = buffer.next().await {
            let Entry::Event(SegmenterEvent::Part(part)) = entry else { panic!("only parts: {entry:?}") };
            assert_eq!((part.index, part.bytes.len()), (index, 16 << 10));
            assert!(part.bytes.iter().all(|&b| b == index as u8), "part {index} read back intact");
            index += 1;
        }
        assert_eq!(index, 256);
        spiller.await.unwrap();
        assert!(std::fs::read_dir(&dir).map_or(true, |d| d.count() == 0), "every spill file deleted");
        buffer.remove_dir().await;
        assert!(!dir.exists());
    }
}
