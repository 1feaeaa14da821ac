//! A processed upload's renditions as CMAF in the recordings storage, laid out like a
//! recording (`<video-id>/<track>/init-0.mp4`, `<video-id>/<track>/<sequence>.m4s` = `styp` +
//! its fragments) and indexed the same way, so `/vod/<id>/…` serves it with the recordings'
//! code. Tracks are named `video` (the top rendition), `video-<rung>` (the others) and
//! `audio`. One `Segmenter` per track: renditions share their keyframe times, so their
//! segments line up. Blocking (it runs in the processing child).

use crate::catalog::SegmentRow;
use crate::storage::Storage;
use crate::VideoId;
use rill_media::cmaf::{fmp4, CmafTrack, Segmenter, SegmenterConfig, SegmenterEvent, TrackKind};
use rill_media::manifest::TrackDescription;
use rill_media::{Frame, Tracks};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The init version every packaged track has.
pub const INIT_VERSION: i64 = 0;

/// Storage key of a named track's init segment.
pub fn track_init_key(id: VideoId, track: &str, version: i64) -> String {
    format!("{id}/{track}/init-{version}.mp4")
}

/// Storage key of a named track's segment.
pub fn track_segment_key(id: VideoId, track: &str, sequence: u64) -> String {
    format!("{id}/{track}/{sequence}.m4s")
}

/// The track name of a rendition: `video` for the top one (index 0), `video-<rung>` for the
/// others (`rung` is a configured ladder name: letters, digits, `-`, `_`).
pub fn rendition_track(index: usize, rung: &str) -> String {
    if index == 0 {
        "video".into()
    } else {
        format!("video-{rung}")
    }
}

/// Whether `name` is a track name this module makes (or a recording has): what the HTTP layer
/// may look up.
pub fn is_track_name(name: &str) -> bool {
    name == "video"
        || name == "audio"
        || name.strip_prefix("video-").is_some_and(|rung| {
            (1..=32).contains(&rung.len()) && rung.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// One packaged track, as the catalog indexes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackagedTrack {
    pub name: String,
    /// [`TrackDescription`] as JSON (the catalog's `video_inits.info`).
    pub info: String,
    pub segments: Vec<SegmentRow>,
}

/// A processed upload's index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PackagedVideo {
    pub tracks: Vec<PackagedTrack>,
}

impl PackagedVideo {
    /// Media duration of the top video track (the video's length).
    pub fn duration(&self) -> Duration {
        let Some(track) = self.tracks.iter().find(|t| t.name == "video") else { return Duration::ZERO };
        let secs: f64 = track.segments.iter().map(|s| s.duration_ticks as f64 / s.timescale.max(1) as f64).sum();
        Duration::from_secs_f64(secs)
    }

    pub fn size_bytes(&self) -> i64 {
        self.tracks.iter().flat_map(|t| &t.segments).map(|s| s.size_bytes).sum()
    }
}

/// One track being packaged.
struct Lane {
    name: String,
    segmenter: Segmenter,
    track: Option<Arc<CmafTrack>>,
    /// The segment being written: its key and row.
    open: Option<(String, SegmentRow)>,
    done: PackagedTrack,
}

/// Writes tracks' frames as CMAF segments into `storage`.
pub struct Packager {
    id: VideoId,
    storage: Arc<dyn Storage>,
    config: SegmenterConfig,
    lanes: Vec<Lane>,
    /// The wall clock written into `prft` boxes and the index: the processing start.
    start: SystemTime,
}

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("writing the video failed: {0}")]
    Storage(#[from] std::io::Error),
    #[error("track {0}: {1}")]
    Unsupported(String, String),
    #[error("frames for track {0} before its codec")]
    NoTracks(String),
}

impl Packager {
    /// Segments of about `segment` (cut at the next keyframe after 90% of it).
    pub fn new(id: VideoId, storage: Arc<dyn Storage>, segment: Duration) -> Packager {
        let config = SegmenterConfig { segment_target: segment, part_target: segment * 2 };
        Packager { id, storage, config, lanes: Vec::new(), start: SystemTime::now() }
    }

    fn lane(&mut self, name: &str) -> usize {
        if let Some(index) = self.lanes.iter().position(|l| l.name == name) {
            return index;
        }
        self.lanes.push(Lane {
            name: name.to_owned(),
            segmenter: Segmenter::new(self.config),
            track: None,
            open: None,
            done: PackagedTrack { name: name.to_owned(), info: String::new(), segments: Vec::new() },
        });
        self.lanes.len() - 1
    }

    /// Sets the codec of track `name` (once; the file's codecs do not change).
    pub fn set_tracks(&mut self, name: &str, tracks: &Tracks) -> Result<(), PackageError> {
        let index = self.lane(name);
        self.lanes[index].segmenter.set_tracks(tracks);
        self.drain(index)
    }

    pub fn push(&mut self, name: &str, frame: &Frame) -> Result<(), PackageError> {
        let index = self.lane(name);
        if self.lanes[index].track.is_none() && self.lanes[index].done.info.is_empty() {
            return Err(PackageError::NoTracks(name.to_owned()));
        }
        let at = self.start + Duration::from_secs_f64(frame.dts.as_secs_f64().max(0.0));
        self.lanes[index].segmenter.push(frame, at);
        self.drain(index)
    }

    /// Writes what is left and returns the index of every track.
    pub fn finish(mut self) -> Result<PackagedVideo, PackageError> {
        for index in 0..self.lanes.len() {
            self.lanes[index].segmenter.finish();
            self.drain(index)?;
            if let Some((key, row)) = self.lanes[index].open.take() {
                self.close_segment(index, key, row)?;
            }
        }
        Ok(PackagedVideo { tracks: self.lanes.into_iter().map(|l| l.done).collect() })
    }

    fn drain(&mut self, index: usize) -> Result<(), PackageError> {
        let events: Vec<SegmenterEvent> = self.lanes[index].segmenter.drain().collect();
        for event in events {
            match event {
                SegmenterEvent::Tracks(tracks) => {
                    let Some(track) = tracks.into_iter().next() else { continue };
                    let lane = &mut self.lanes[index];
                    let key = track_init_key(self.id, &lane.name, INIT_VERSION);
                    self.storage.put(&key, &track.init)?;
                    let description = TrackDescription::new(track.kind, &track.codec, track.timescale);
                    lane.done.info = serde_json::to_string(&description).expect("descriptions serialize");
                    lane.track = Some(track);
                }
                SegmenterEvent::Unsupported { kind, reason } => {
                    return Err(PackageError::Unsupported(kind.as_str().to_owned(), reason))
                }
                SegmenterEvent::Part(part) => self.write_part(index, part)?,
            }
        }
        Ok(())
    }

    fn write_part(&mut self, index: usize, part: rill_media::cmaf::Part) -> Result<(), PackageError> {
        let lane = &mut self.lanes[index];
        if part.index == 0 {
            if let Some((key, row)) = lane.open.take() {
                self.close_segment(index, key, row)?;
            }
            let lane = &mut self.lanes[index];
            let key = track_segment_key(self.id, &lane.name, part.msn);
            let row = SegmentRow {
                track: lane.name.clone(),
                sequence: part.msn as i64,
                init_version: INIT_VERSION,
                discontinuity: false,
                start_ticks: part.decode_time as i64,
                duration_ticks: 0,
                timescale: part.timescale as i64,
                size_bytes: 0,
                wall_clock_ms: crate::recorder::unix_ms(part.wall_clock),
            };
            self.storage.put(&key, &[])?;
            self.storage.append(&key, &[&fmp4::segment_type()])?;
            lane.open = Some((key, SegmentRow { size_bytes: fmp4::segment_type().len() as i64, ..row }));
        }
        let lane = &mut self.lanes[index];
        let Some((key, row)) = lane.open.as_mut() else { return Ok(()) };
        self.storage.append(key, &[&part.bytes])?;
        row.duration_ticks += part.duration as i64;
        row.size_bytes += part.bytes.len() as i64;
        if part.ends_segment {
            if let Some((key, row)) = lane.open.take() {
                self.close_segment(index, key, row)?;
            }
        }
        Ok(())
    }

    fn close_segment(&mut self, index: usize, key: String, row: SegmentRow) -> Result<(), PackageError> {
        self.storage.sync(&key)?;
        self.lanes[index].done.segments.push(row);
        Ok(())
    }
}

/// The kind of a packaged track from its name.
pub fn track_kind(name: &str) -> TrackKind {
    if name == "audio" {
        TrackKind::Audio
    } else {
        TrackKind::Video
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_names() {
        assert_eq!(rendition_track(0, "1080p"), "video");
        assert_eq!(rendition_track(2, "480p"), "video-480p");
        for good in ["video", "audio", "video-720p", "video-hd_2"] {
            assert!(is_track_name(good), "{good}");
        }
        for bad in ["", "video-", "video-../x", "video-a/b", "subs", "video-%2e"] {
            assert!(!is_track_name(bad), "{bad}");
        }
    }
}
