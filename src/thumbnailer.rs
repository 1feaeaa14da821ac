//! Thumbnails in a child process: `rill thumbnail` reads an fMP4 (init + segment) on stdin and
//! writes its first picture as a JPEG on stdout (GStreamer), and the server's [`thumbnailer`]
//! runs it for each picture, so decoding hostile media stays out of the server's memory and a
//! decoder crash cannot take the server down.

use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;

/// `rill thumbnail`: stdin (fMP4) → stdout (JPEG): the first picture `at_ms` or more after
/// the media's first.
pub fn run_child(width: u32, at_ms: u64) -> Result<()> {
    use std::io::{Read, Write};
    let mut media = Vec::new();
    std::io::stdin().read_to_end(&mut media).context("reading the media from stdin")?;
    let at = std::time::Duration::from_millis(at_ms);
    let jpeg = rill_transcode::thumbnail::picture_jpeg_at(media.into(), width, at)?;
    std::io::stdout().write_all(&jpeg).context("writing the JPEG to stdout")?;
    Ok(())
}

/// Thumbnails `width` pixels wide: each made by a `rill thumbnail` child process (GStreamer).
pub fn thumbnailer(width: u32) -> Option<rill_vod::recorder::Thumbnailer> {
    let exe = std::env::current_exe().ok()?;
    Some(Arc::new(move |media| picture_at(&exe, width, media, Duration::ZERO)))
}

/// The picture `at` after the first of `media` (init + segment), `width` pixels wide, made by
/// a `rill thumbnail` child (the executable `exe`).
pub fn picture_at(
    exe: &std::path::Path,
    width: u32,
    media: bytes::Bytes,
    at: Duration,
) -> Result<bytes::Bytes, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    {
        let mut child = Command::new(exe)
            .args(["thumbnail", "--width", &width.to_string(), "--at-ms", &at.as_millis().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        let mut stdin = child.stdin.take().ok_or("the thumbnailer's stdin is not piped")?;
        let feeder = std::thread::spawn(move || stdin.write_all(&media));
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        let _ = feeder.join();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(stderr.trim().trim_start_matches("rill: ").to_string());
        }
        Ok(output.stdout.into())
    }
}

/// Width of video thumbnails in pixels.
pub const THUMBNAIL_WIDTH: u32 = 320;
