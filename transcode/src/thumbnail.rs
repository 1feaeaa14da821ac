//! Thumbnails: the first picture (or the first at a given time) of a fragmented MP4 (an init segment followed by a segment that
//! starts with a keyframe, as the recorder writes them) decoded and scaled to a JPEG, with
//! GStreamer (`appsrc ! decodebin ! videoconvert ! videoscale ! jpegenc ! appsink`). Any codec
//! GStreamer can decode works (H.264, HEVC, AV1). Blocking: call it off the async runtime.

use bytes::Bytes;
use gstreamer::prelude::*;
use gstreamer_app::{AppSink, AppSrc};
use std::time::{Duration, Instant};

/// Why no thumbnail was made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error(transparent)]
    Unavailable(#[from] crate::InitError),
    #[error("building the thumbnail pipeline failed: {0}")]
    Pipeline(String),
    #[error("{element}: {message}")]
    Element { element: String, message: String },
    #[error("no picture was decoded within {0:?}")]
    Timeout(Duration),
    #[error("the media ended before a picture was decoded")]
    NoPicture,
}

/// How long decoding one picture may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The first picture of `media` (init + segment bytes) as a JPEG `width` pixels wide (the
/// height keeps the picture's aspect ratio).
pub fn first_picture_jpeg(media: Bytes, width: u32) -> Result<Bytes, ThumbnailError> {
    picture_jpeg_at(media, width, Duration::ZERO)
}

/// The first picture of `media` at least `at` after its first picture (the last one if the
/// media ends before), as [`first_picture_jpeg`] makes it.
pub fn picture_jpeg_at(media: Bytes, width: u32, at: Duration) -> Result<Bytes, ThumbnailError> {
    crate::init()?;
    let description = format!(
        "appsrc name=src format=bytes max-bytes=0 ! decodebin ! videoconvert ! videoscale \
         ! video/x-raw,width={width},pixel-aspect-ratio=1/1 ! jpegenc quality=80 \
         ! appsink name=sink max-buffers=1 sync=false"
    );
    let pipeline = gstreamer::parse::launch(&description)
        .map_err(|e| ThumbnailError::Pipeline(e.to_string()))?
        .downcast::<gstreamer::Pipeline>()
        .map_err(|_| ThumbnailError::Pipeline("not a pipeline".into()))?;
    let result = run(&pipeline, media, at);
    let _ = pipeline.set_state(gstreamer::State::Null);
    result
}

fn run(pipeline: &gstreamer::Pipeline, media: Bytes, at: Duration) -> Result<Bytes, ThumbnailError> {
    let by_name = |name: &str| pipeline.by_name(name).ok_or_else(|| ThumbnailError::Pipeline(format!("no {name}")));
    let source = by_name("src")?.downcast::<AppSrc>().map_err(|_| ThumbnailError::Pipeline("src".into()))?;
    let sink = by_name("sink")?.downcast::<AppSink>().map_err(|_| ThumbnailError::Pipeline("sink".into()))?;
    pipeline.set_state(gstreamer::State::Playing).map_err(|e| ThumbnailError::Pipeline(e.to_string()))?;
    source
        .push_buffer(gstreamer::Buffer::from_slice(media))
        .map_err(|e| ThumbnailError::Pipeline(format!("pushing the media: {e}")))?;
    let _ = source.end_of_stream();
    let bus = pipeline.bus().ok_or_else(|| ThumbnailError::Pipeline("no bus".into()))?;
    let deadline = Instant::now() + TIMEOUT;
    let mut first_pts = None;
    let mut latest = None;
    loop {
        if let Some(sample) = sink.try_pull_sample(gstreamer::ClockTime::from_mseconds(50)) {
            let buffer = sample.buffer().ok_or(ThumbnailError::NoPicture)?;
            let pts = buffer.pts().map_or(0, |t| t.nseconds());
            let first = *first_pts.get_or_insert(pts);
            let map = buffer.map_readable().map_err(|e| ThumbnailError::Pipeline(e.to_string()))?;
            let jpeg = Bytes::copy_from_slice(map.as_slice());
            if Duration::from_nanos(pts.saturating_sub(first)) >= at {
                return Ok(jpeg);
            }
            latest = Some(jpeg);
            continue;
        }
        while let Some(message) = bus.pop() {
            match message.view() {
                gstreamer::MessageView::Error(error) => {
                    return Err(ThumbnailError::Element {
                        element: error.src().map(|s| s.path_string().to_string()).unwrap_or_default(),
                        message: error.error().to_string(),
                    })
                }
                gstreamer::MessageView::Eos(_) => return latest.ok_or(ThumbnailError::NoPicture),
                _ => {}
            }
        }
        if sink.is_eos() {
            return latest.ok_or(ThumbnailError::NoPicture);
        }
        if Instant::now() >= deadline {
            return Err(ThumbnailError::Timeout(TIMEOUT));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_without_a_picture_is_an_error_not_a_hang() {
        for media in
            [Bytes::new(), Bytes::from_static(b"not an mp4 at all, just some bytes"), Bytes::from(vec![0u8; 4096])]
        {
            let started = Instant::now();
            assert!(first_picture_jpeg(media, 320).is_err());
            assert!(started.elapsed() < TIMEOUT, "gave up only at the timeout");
        }
    }
}
