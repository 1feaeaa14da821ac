//! What every live transcode does with its GStreamer pipeline: push a buffer into its `appsrc`
//! and read the messages the pipeline posted (an error names the element and ends the
//! transcode; warnings are logged; end of stream is reported).

use crate::TranscodeError;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::AppSrc;

/// Reads the messages `pipeline` posted: `Ok(true)` once it reached end of stream, an error
/// (logged with `what` — e.g. "the ladder" — and the element's path) as
/// [`TranscodeError::Element`] for `stream`.
pub(crate) fn poll_messages(pipeline: &gst::Pipeline, stream: &str, what: &str) -> Result<bool, TranscodeError> {
    let Some(bus) = pipeline.bus() else { return Ok(false) };
    let mut eos = false;
    while let Some(message) = bus.pop() {
        match message.view() {
            gst::MessageView::Error(e) => {
                let element = e.src().map(|s| s.path_string().to_string()).unwrap_or_default();
                let details = e.debug().map(|d| d.to_string()).unwrap_or_default();
                tracing::error!(%element, error = %e.error(), %details, "GStreamer error: ending {what}");
                return Err(TranscodeError::Element {
                    stream: stream.to_string(),
                    element,
                    message: e.error().to_string(),
                });
            }
            gst::MessageView::Warning(w) => {
                let element = w.src().map(|s| s.path_string().to_string()).unwrap_or_default();
                tracing::warn!(%element, warning = %w.error(), "GStreamer warning");
            }
            gst::MessageView::Eos(_) => eos = true,
            _ => {}
        }
    }
    Ok(eos)
}

/// Pushes `buffer` into `src`; a refusal reports the pipeline's own error if it posted one.
pub(crate) fn push(
    pipeline: &gst::Pipeline,
    src: &AppSrc,
    buffer: gst::Buffer,
    stream: &str,
    what: &str,
) -> Result<(), TranscodeError> {
    if let Err(flow) = src.push_buffer(buffer) {
        poll_messages(pipeline, stream, what)?;
        return Err(TranscodeError::Pipeline {
            stream: stream.to_string(),
            message: format!("appsrc refused input: {flow:?}"),
        });
    }
    Ok(())
}
