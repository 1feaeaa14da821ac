//! Downloads: a video's rendition (one video track and the audio) as a progressive MP4, laid
//! out by [`rill_media::cmaf::progressive`] from the stored CMAF (the init segments and the
//! `moof` boxes of every segment: box headers are read, sample bytes are not) and streamed
//! from storage by the HTTP layer: nothing is re-encoded and the file is never held in memory.
//! Layouts are cached per (video, rendition) until the video's row changes.

use crate::catalog::VideoStatus;
use crate::library::Library;
use crate::manifest::{TrackIndex, VideoIndex};
use crate::storage;
use crate::upload::package::{track_init_key, track_segment_key};
use crate::VideoId;
use rill_media::cmaf::progressive::{init_defaults, walk_segment, Progressive, RemuxError, TrackInput};
use rill_media::cmaf::TrackKind;
use std::sync::Arc;

/// Why a download cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("video {0} is still being recorded; download it once it has ended")]
    Recording(VideoId),
    #[error("no rendition {0:?} (the video's renditions are {1})")]
    NoRendition(String, String),
    #[error("the {0} track changed its settings during the recording; it cannot be one MP4 file")]
    SeveralVersions(String),
    #[error(transparent)]
    Remux(#[from] RemuxError),
}

/// A download's layout and where its pieces come from.
#[derive(Debug)]
pub struct Download {
    pub progressive: Progressive,
    /// Storage key of each source (`Piece::source`).
    pub keys: Vec<String>,
    /// The video track's name.
    pub rendition: String,
}

/// The video tracks a user may ask for.
pub fn renditions(index: &VideoIndex) -> Vec<&str> {
    index
        .tracks
        .iter()
        .filter(|t| t.kind == TrackKind::Video && !t.segments.is_empty())
        .map(|t| t.name.as_str())
        .collect()
}

/// The download of `rendition` (a video track's name; `None`: the top one) of a finished video.
pub async fn download(
    library: &Library,
    index: &VideoIndex,
    rendition: Option<&str>,
) -> Result<Arc<Download>, DownloadError> {
    let id = VideoId::parse(&index.video.id).ok_or_else(|| DownloadError::NoRendition(String::new(), String::new()))?;
    if index.video.status == VideoStatus::Recording {
        return Err(DownloadError::Recording(id));
    }
    let video = match rendition {
        Some(name) => index.track_named(name).filter(|t| t.kind == TrackKind::Video),
        None => index.track(TrackKind::Video),
    };
    let video = match (video, rendition) {
        (Some(track), _) => Some(track),
        // An audio-only video downloads its audio.
        (None, None) => None,
        (None, Some(name)) => return Err(DownloadError::NoRendition(name.into(), renditions(index).join(", "))),
    };
    let audio = index.track(TrackKind::Audio);
    let name = video.map_or("audio", |t| t.name.as_str()).to_owned();
    let cache_key = (id, name.clone());
    if let Some(cached) = library.cached_download(&cache_key, index.video.updated_at_ms) {
        return Ok(cached);
    }
    let tracks: Vec<TrackIndex> = video.into_iter().chain(audio).cloned().collect();
    for track in &tracks {
        if track.segments.iter().any(|s| s.init_version != track.segments[0].init_version) {
            return Err(DownloadError::SeveralVersions(track.name.clone()));
        }
    }
    let rendition = name.clone();
    let built = storage::run(&library.storage, move |s| {
        let mut keys = Vec::new();
        let mut inputs = Vec::new();
        for track in &tracks {
            let init_key = track_init_key(id, &track.name, track.segments[0].init_version);
            let init = s.read(&init_key, 0..s.size(&init_key)?)?;
            let defaults = init_defaults(&init).map_err(std::io::Error::other)?;
            let mut fragments = Vec::new();
            for segment in &track.segments {
                let key = track_segment_key(id, &track.name, segment.sequence as u64);
                let source = keys.len();
                let size = s.size(&key)?;
                let found =
                    walk_segment(source, size, defaults, |range| s.read(&key, range)).map_err(std::io::Error::other)?;
                fragments.extend(found);
                keys.push(key);
            }
            inputs.push(TrackInput { init, fragments });
        }
        let progressive = Progressive::build(&inputs).map_err(std::io::Error::other)?;
        Ok(Download { progressive, keys, rendition })
    })
    .await
    .map_err(|e| DownloadError::Remux(RemuxError::Read(e)))?;
    let built = Arc::new(built);
    library.cache_download(cache_key, index.video.updated_at_ms, built.clone());
    Ok(built)
}
