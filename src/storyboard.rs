//! Storyboards (seek previews) in a child process: `rill storyboard` reads a video track
//! (init, then its segments) on stdin and writes a JSON line (the layout) then the JPEG sprite
//! on stdout (GStreamer, [`rill_transcode::storyboard`]); the server's [`Storyboarder`] feeds it
//! from storage and stores `<id>/storyboard.jpg` and `<id>/storyboard.vtt` (a WebVTT thumbnails
//! track: one cue per tile, `storyboard.jpg#xywh=x,y,w,h`), served under `/vod/<id>/`. Made
//! when an upload is processed and when a recording becomes ready, from the smallest rendition
//! (cheapest to decode), under `nice -n 19`.

use anyhow::{Context, Result};
use rill_vod::captions::vtt_time;
use rill_vod::catalog::SegmentRow;
use rill_vod::storage::Storage;
use rill_vod::upload::package::{track_init_key, track_segment_key};
use rill_vod::VideoId;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Width of a storyboard tile in pixels.
pub const TILE_WIDTH: u32 = 160;
/// Most tiles in a sprite: a long video gets a longer interval.
pub const MAX_TILES: u32 = 200;
/// Shortest interval between tiles.
const MIN_INTERVAL_S: u64 = 2;

/// Storage keys of a video's storyboard.
pub fn sprite_key(id: VideoId) -> String {
    format!("{id}/storyboard.jpg")
}

pub fn vtt_key(id: VideoId) -> String {
    format!("{id}/storyboard.vtt")
}

/// The layout line the child prints before the sprite.
#[derive(Debug, Serialize, Deserialize)]
struct Layout {
    tile_width: u32,
    tile_height: u32,
    columns: u32,
    tiles: u32,
    jpeg_bytes: usize,
}

/// `rill storyboard`: stdin (fMP4) → stdout (a JSON layout line, then the JPEG).
pub fn run_child(interval_s: f64, max_tiles: u32, width: u32) -> Result<()> {
    let interval = Duration::from_secs_f64(interval_s.max(0.1));
    let board = rill_transcode::storyboard::storyboard(std::io::stdin(), width, interval, max_tiles)?;
    let layout = Layout {
        tile_width: board.tile_width,
        tile_height: board.tile_height,
        columns: board.columns,
        tiles: board.tiles,
        jpeg_bytes: board.jpeg.len(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&layout)?)?;
    out.write_all(&board.jpeg)?;
    out.flush().context("writing the storyboard to stdout")
}

/// What a storyboard is made from: one video track's segments (of one init version).
pub struct StoryboardSource {
    pub video: VideoId,
    pub track: String,
    pub segments: Vec<SegmentRow>,
}

impl StoryboardSource {
    /// The smallest video rendition of a video's index, with the segments of its first init
    /// version.
    pub fn from_index(index: &rill_vod::manifest::VideoIndex) -> Option<StoryboardSource> {
        let video = VideoId::parse(&index.video.id)?;
        let track = index
            .tracks
            .iter()
            .filter(|t| t.kind == rill_media::cmaf::TrackKind::Video && !t.segments.is_empty())
            .min_by_key(|t| t.description().and_then(|d| d.height).unwrap_or(u32::MAX))?;
        let version = track.segments[0].init_version;
        let segments = track.segments.iter().take_while(|s| s.init_version == version).cloned().collect();
        Some(StoryboardSource { video, track: track.name.clone(), segments })
    }

    fn duration_s(&self) -> f64 {
        self.segments.iter().map(|s| s.duration_ticks as f64 / s.timescale.max(1) as f64).sum()
    }
}

/// The interval between tiles for a video of `duration_s`: at least 2 s, whole seconds, at
/// most [`MAX_TILES`] tiles.
pub fn interval_for(duration_s: f64) -> u64 {
    ((duration_s / MAX_TILES as f64).ceil() as u64).max(MIN_INTERVAL_S)
}

/// The WebVTT thumbnails track of a sprite.
fn thumbnails_vtt(layout: &Layout, interval_s: u64, duration_s: f64) -> String {
    let mut out = String::from("WEBVTT\n");
    let end_ms = (duration_s * 1000.0).round() as u64;
    for i in 0..layout.tiles {
        let start = i as u64 * interval_s * 1000;
        if start >= end_ms && i > 0 {
            break;
        }
        let end = ((i as u64 + 1) * interval_s * 1000).min(end_ms).max(start + 1);
        let (x, y) = (i % layout.columns * layout.tile_width, i / layout.columns * layout.tile_height);
        out.push_str(&format!(
            "\n{} --> {}\nstoryboard.jpg#xywh={x},{y},{},{}\n",
            vtt_time(start),
            vtt_time(end),
            layout.tile_width,
            layout.tile_height
        ));
    }
    out
}

/// Makes storyboards with `rill storyboard` children, one at a time (clones share the turn):
/// many recordings ending together queue instead of decoding all at once.
#[derive(Clone)]
pub struct Storyboarder {
    pub exe: PathBuf,
    pub storage: Arc<dyn Storage>,
    turn: Arc<tokio::sync::Semaphore>,
}

impl Storyboarder {
    pub fn new(storage: Arc<dyn Storage>) -> Option<Storyboarder> {
        let turn = Arc::new(tokio::sync::Semaphore::new(1));
        Some(Storyboarder { exe: std::env::current_exe().ok()?, storage, turn })
    }

    /// Makes and stores the storyboard of `source`; best effort (logged, never fatal).
    pub async fn make(&self, source: StoryboardSource) {
        let id = source.video;
        let Ok(_turn) = self.turn.acquire().await else { return };
        let this = self.clone();
        let made = tokio::task::spawn_blocking(move || this.make_blocking(&source)).await;
        match made {
            Ok(Ok(tiles)) => tracing::info!(video = %id, tiles, "storyboard made"),
            Ok(Err(error)) => tracing::warn!(video = %id, error = %format!("{error:#}"), "no storyboard"),
            Err(error) => tracing::warn!(video = %id, %error, "storyboard task failed"),
        }
    }

    fn make_blocking(&self, source: &StoryboardSource) -> Result<u32> {
        let first = source.segments.first().context("the track has no segments")?;
        let interval = interval_for(source.duration_s());
        let mut command = if Path::new("/usr/bin/nice").exists() {
            let mut nice = std::process::Command::new("/usr/bin/nice");
            nice.args(["-n", "19"]).arg(&self.exe);
            nice
        } else {
            std::process::Command::new(&self.exe)
        };
        let mut child = command
            .args(["storyboard", "--interval", &interval.to_string(), "--max-tiles", &MAX_TILES.to_string()])
            .args(["--width", &TILE_WIDTH.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("starting rill storyboard")?;
        let mut stdin = child.stdin.take().context("no stdin")?;
        let keys: Vec<String> = std::iter::once(track_init_key(source.video, &source.track, first.init_version))
            .chain(source.segments.iter().map(|s| track_segment_key(source.video, &source.track, s.sequence as u64)))
            .collect();
        let storage = self.storage.clone();
        // The child stops reading once it has every tile: a broken pipe then ends the feed.
        let feeder = std::thread::spawn(move || -> std::io::Result<()> {
            for key in keys {
                let size = storage.size(&key)?;
                let mut at = 0;
                while at < size {
                    let end = (at + 4 * 1024 * 1024).min(size);
                    stdin.write_all(&storage.read(&key, at..end)?)?;
                    at = end;
                }
            }
            Ok(())
        });
        let output = child.wait_with_output().context("running rill storyboard")?;
        let _ = feeder.join();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            anyhow::bail!("rill storyboard failed: {}", stderr.trim().trim_start_matches("rill: "));
        }
        let split = output.stdout.iter().position(|&b| b == b'\n').context("no layout line")?;
        let layout: Layout = serde_json::from_slice(&output.stdout[..split]).context("the layout line")?;
        let jpeg = &output.stdout[split + 1..];
        anyhow::ensure!(jpeg.len() == layout.jpeg_bytes, "{} of {} sprite bytes", jpeg.len(), layout.jpeg_bytes);
        let vtt = thumbnails_vtt(&layout, interval, source.duration_s());
        self.storage.put(&sprite_key(source.video), jpeg)?;
        self.storage.put(&vtt_key(source.video), vtt.as_bytes())?;
        Ok(layout.tiles)
    }
}

/// Makes the storyboard of video `id` from its index (a recording that became ready).
pub async fn for_video(storyboarder: &Storyboarder, library: &rill_vod::library::Library, id: VideoId) {
    match library.index(id).await {
        Ok(Some(index)) => {
            if let Some(source) = StoryboardSource::from_index(&index) {
                storyboarder.make(source).await;
            }
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(video = %id, %error, "no storyboard: the catalog is unavailable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_the_thumbnails_track() {
        assert_eq!(interval_for(8.0), 2);
        assert_eq!(interval_for(400.0), 2);
        assert_eq!(interval_for(401.0), 3);
        assert_eq!(interval_for(3600.0), 18);
        let layout = Layout { tile_width: 160, tile_height: 90, columns: 10, tiles: 12, jpeg_bytes: 1 };
        let vtt = thumbnails_vtt(&layout, 2, 23.5);
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n"), "{vtt}");
        assert!(vtt.contains("00:00:20.000 --> 00:00:22.000\nstoryboard.jpg#xywh=0,90,160,90\n"), "{vtt}");
        assert!(vtt.ends_with("00:00:22.000 --> 00:00:23.500\nstoryboard.jpg#xywh=160,90,160,90\n"), "{vtt}");
    }
}
