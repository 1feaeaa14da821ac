//! Storyboards (seek previews): a video track (fMP4: init, then its segments, read as a stream)
//! decoded with GStreamer (`appsrc ! decodebin ! videoconvert ! videoscale ! appsink`, RGB at
//! the tile width), the first picture at or after every `interval` kept, and the tiles laid out
//! in a grid of [`COLUMNS`] columns encoded as one JPEG sprite (`jpegenc`). Blocking: run it
//! off the async runtime (the server runs it in a `rill storyboard` child).

use bytes::Bytes;
use gstreamer::prelude::*;
use gstreamer_app::{AppSink, AppSrc};
use std::io::Read;
use std::time::Duration;

/// Tiles per row of the sprite.
pub const COLUMNS: u32 = 10;
/// How long decoding may go without a picture coming out.
const STALL: Duration = Duration::from_secs(30);

/// Why no storyboard was made.
#[derive(Debug, thiserror::Error)]
pub enum StoryboardError {
    #[error(transparent)]
    Unavailable(#[from] crate::InitError),
    #[error("the storyboard pipeline failed: {0}")]
    Pipeline(String),
    #[error("{element}: {message}")]
    Element { element: String, message: String },
    #[error("no picture was decoded")]
    NoPicture,
    #[error("reading the media failed: {0}")]
    Read(#[from] std::io::Error),
}

/// A sprite and how its tiles are laid out.
#[derive(Debug, Clone)]
pub struct Storyboard {
    pub jpeg: Bytes,
    pub tile_width: u32,
    pub tile_height: u32,
    pub columns: u32,
    /// Tiles in the sprite: tile `i` shows the first picture at or after `i × interval`.
    pub tiles: u32,
}

/// The storyboard of `media` (an fMP4 stream of one video track): up to `max_tiles` tiles
/// `tile_width` pixels wide, one per `interval` of media time from the first picture.
pub fn storyboard(
    media: impl Read + Send + 'static,
    tile_width: u32,
    interval: Duration,
    max_tiles: u32,
) -> Result<Storyboard, StoryboardError> {
    crate::init()?;
    let description = format!(
        "appsrc name=src format=bytes block=true max-bytes=4000000 ! decodebin ! videoconvert ! videoscale \
         ! video/x-raw,format=RGB,width={tile_width},pixel-aspect-ratio=1/1 \
         ! appsink name=sink max-buffers=4 sync=false"
    );
    let pipeline = launch(&description)?;
    let result = decode_tiles(&pipeline, media, interval, max_tiles.max(1));
    let _ = pipeline.set_state(gstreamer::State::Null);
    let (tiles, width, height) = result?;
    let count = tiles.len() as u32;
    let columns = count.min(COLUMNS);
    let rows = count.div_ceil(columns);
    let (sprite_width, sprite_height) = (columns * width, rows * height);
    let row_bytes = (width * 3) as usize;
    let mut sprite = vec![0u8; (sprite_width * sprite_height * 3) as usize];
    for (i, tile) in tiles.iter().enumerate() {
        let (x, y) = (i as u32 % columns * width, i as u32 / columns * height);
        for line in 0..height {
            let from = &tile[line as usize * row_bytes..(line as usize + 1) * row_bytes];
            let at = (((y + line) * sprite_width + x) * 3) as usize;
            sprite[at..at + row_bytes].copy_from_slice(from);
        }
    }
    let jpeg = encode_jpeg(sprite, sprite_width, sprite_height)?;
    Ok(Storyboard { jpeg, tile_width: width, tile_height: height, columns, tiles: count })
}

fn launch(description: &str) -> Result<gstreamer::Pipeline, StoryboardError> {
    gstreamer::parse::launch(description)
        .map_err(|e| StoryboardError::Pipeline(e.to_string()))?
        .downcast::<gstreamer::Pipeline>()
        .map_err(|_| StoryboardError::Pipeline("not a pipeline".into()))
}

fn elements(pipeline: &gstreamer::Pipeline) -> Result<(AppSrc, AppSink), StoryboardError> {
    let by_name = |name: &str| pipeline.by_name(name).ok_or_else(|| StoryboardError::Pipeline(format!("no {name}")));
    let source = by_name("src")?.downcast::<AppSrc>().map_err(|_| StoryboardError::Pipeline("src".into()))?;
    let sink = by_name("sink")?.downcast::<AppSink>().map_err(|_| StoryboardError::Pipeline("sink".into()))?;
    Ok((source, sink))
}

/// The kept tiles (tightly packed RGB rows) and their size.
fn decode_tiles(
    pipeline: &gstreamer::Pipeline,
    mut media: impl Read + Send + 'static,
    interval: Duration,
    max_tiles: u32,
) -> Result<(Vec<Vec<u8>>, u32, u32), StoryboardError> {
    let (source, sink) = elements(pipeline)?;
    pipeline.set_state(gstreamer::State::Playing).map_err(|e| StoryboardError::Pipeline(e.to_string()))?;
    // Feeds the media in pieces; `block=true` holds it back while the decoder is behind.
    let feeder_source = source.clone();
    let feeder = std::thread::spawn(move || -> std::io::Result<()> {
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = media.read(&mut chunk)?;
            if n == 0 || feeder_source.push_buffer(gstreamer::Buffer::from_slice(chunk[..n].to_vec())).is_err() {
                break;
            }
        }
        let _ = feeder_source.end_of_stream();
        Ok(())
    });
    let bus = pipeline.bus().ok_or_else(|| StoryboardError::Pipeline("no bus".into()))?;
    let mut tiles: Vec<Vec<u8>> = Vec::new();
    let (mut width, mut height) = (0u32, 0u32);
    let mut first_pts = None;
    let mut waited = Duration::ZERO;
    let result = loop {
        if tiles.len() as u32 >= max_tiles {
            break Ok(());
        }
        let step = gstreamer::ClockTime::from_mseconds(100);
        if let Some(sample) = sink.try_pull_sample(step) {
            waited = Duration::ZERO;
            let Some(buffer) = sample.buffer() else { continue };
            let Some(pts) = buffer.pts() else { continue };
            let start = *first_pts.get_or_insert(pts);
            let at = Duration::from_nanos(pts.nseconds().saturating_sub(start.nseconds()));
            if at < interval * tiles.len() as u32 {
                continue;
            }
            if width == 0 {
                let caps = sample.caps().ok_or_else(|| StoryboardError::Pipeline("no caps".into()))?;
                let s = caps.structure(0).ok_or_else(|| StoryboardError::Pipeline("empty caps".into()))?;
                width = s.get::<i32>("width").map_err(|e| StoryboardError::Pipeline(e.to_string()))? as u32;
                height = s.get::<i32>("height").map_err(|e| StoryboardError::Pipeline(e.to_string()))? as u32;
            }
            let map = buffer.map_readable().map_err(|e| StoryboardError::Pipeline(e.to_string()))?;
            let stride = (width as usize * 3).div_ceil(4) * 4;
            let row = width as usize * 3;
            if map.len() < stride * (height as usize - 1) + row {
                break Err(StoryboardError::Pipeline(format!("a {width}x{height} picture of {} bytes", map.len())));
            }
            let mut tile = Vec::with_capacity(row * height as usize);
            for line in 0..height as usize {
                tile.extend_from_slice(&map[line * stride..line * stride + row]);
            }
            // A long gap (a video shorter in pictures than in time) repeats the picture.
            while (tiles.len() as u32) < max_tiles && at >= interval * tiles.len() as u32 {
                tiles.push(tile.clone());
            }
            continue;
        }
        if sink.is_eos() {
            break Ok(());
        }
        if let Some(error) = bus.pop_filtered(&[gstreamer::MessageType::Error]) {
            if let gstreamer::MessageView::Error(error) = error.view() {
                break Err(StoryboardError::Element {
                    element: error.src().map(|s| s.path_string().to_string()).unwrap_or_default(),
                    message: error.error().to_string(),
                });
            }
        }
        waited += Duration::from_millis(100);
        if waited >= STALL {
            break Err(StoryboardError::Pipeline(format!("no picture for {STALL:?}")));
        }
    };
    // Unblocks the feeder if it waits on a full queue.
    let _ = pipeline.set_state(gstreamer::State::Null);
    let fed = feeder.join().map_err(|_| StoryboardError::Pipeline("the feeder panicked".into()))?;
    result?;
    if tiles.is_empty() {
        fed?;
        return Err(StoryboardError::NoPicture);
    }
    Ok((tiles, width, height))
}

/// An RGB picture as a JPEG.
fn encode_jpeg(rgb: Vec<u8>, width: u32, height: u32) -> Result<Bytes, StoryboardError> {
    let pipeline = launch(&format!(
        "appsrc name=src caps=video/x-raw,format=RGB,width={width},height={height},framerate=0/1 \
         ! videoconvert ! jpegenc quality=70 ! appsink name=sink sync=false"
    ))?;
    let (source, sink) = elements(&pipeline)?;
    let result = (|| {
        pipeline.set_state(gstreamer::State::Playing).map_err(|e| StoryboardError::Pipeline(e.to_string()))?;
        // RGB rows in GStreamer buffers are padded to 4 bytes.
        let stride = (width as usize * 3).div_ceil(4) * 4;
        let row = width as usize * 3;
        let mut padded = vec![0u8; stride * height as usize];
        for line in 0..height as usize {
            padded[line * stride..line * stride + row].copy_from_slice(&rgb[line * row..(line + 1) * row]);
        }
        let mut buffer = gstreamer::Buffer::from_mut_slice(padded);
        buffer.get_mut().expect("a new buffer is writable").set_pts(gstreamer::ClockTime::ZERO);
        source.push_buffer(buffer).map_err(|e| StoryboardError::Pipeline(e.to_string()))?;
        let _ = source.end_of_stream();
        let sample = sink.try_pull_sample(gstreamer::ClockTime::from_seconds(10)).ok_or(StoryboardError::NoPicture)?;
        let buffer = sample.buffer().ok_or(StoryboardError::NoPicture)?;
        let map = buffer.map_readable().map_err(|e| StoryboardError::Pipeline(e.to_string()))?;
        Ok(Bytes::copy_from_slice(map.as_slice()))
    })();
    let _ = pipeline.set_state(gstreamer::State::Null);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_without_a_picture_is_an_error_not_a_hang() {
        let started = std::time::Instant::now();
        let noise: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert!(storyboard(std::io::Cursor::new(noise), 160, Duration::from_secs(2), 10).is_err());
        assert!(storyboard(std::io::empty(), 160, Duration::from_secs(2), 10).is_err());
        assert!(started.elapsed() < STALL);
    }
}
