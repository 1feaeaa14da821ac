//! The catalog's public data types (videos, their inits and segments, list queries and pages,
//! edits) and the validation rules for what users may write: title, description and tags.

use super::CatalogError;
use crate::VideoId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest title, in characters (Unicode scalar values), after trimming.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
/// Most tags on one video (after removing duplicates).
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 40;
/// Page size of [`Catalog::list`](super::Catalog::list) when the query names none.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page size of [`Catalog::list`](super::Catalog::list); larger limits are clamped.
pub const MAX_PAGE_SIZE: u32 = 100;

/// An enum stored as lowercase text: `as_str`, `FromStr`, `Display` and serde all use the same
/// names.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lowercase name used in the database and in JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = CatalogError;

            fn from_str(text: &str) -> Result<Self, CatalogError> {
                $name::ALL.iter().copied().find(|value| value.as_str() == text).ok_or_else(|| {
                    let names: Vec<&str> = $name::ALL.iter().map(|value| value.as_str()).collect();
                    CatalogError::Invalid(format!(
                        concat!("unknown ", $what, " {:?} (expected one of: {})"),
                        text,
                        names.join(", ")
                    ))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Who may see a video.
    Visibility, "visibility" {
        /// Listed and searchable by everyone.
        Public => "public",
        /// Playable by anyone with the link; listed only with `include_private` (the owner's
        /// view), never in public lists or search.
        Unlisted => "unlisted",
        /// Only for the owner (listed only with `include_private`).
        Private => "private",
    }
}

text_enum! {
    /// Where a video is in its life.
    VideoStatus, "status" {
        /// Its stream is live; segments are still being added.
        Recording => "recording",
        /// Complete and playable.
        Ready => "ready",
        /// Recording failed; [`Video::error`] says why.
        Failed => "failed",
    }
}

text_enum! {
    /// Where a video came from.
    VideoSource, "source" {
        /// Recorded from a live stream.
        Recording => "recording",
        /// Uploaded as a file (tus, `/api/v1/uploads`) and processed.
        Upload => "upload",
    }
}

text_enum! {
    /// Where an upload is in its life.
    UploadState, "upload state" {
        /// Receiving bytes (tus `PATCH`es); it expires if abandoned.
        Uploading => "uploading",
        /// Every byte arrived; being checked and turned into a video.
        Processing => "processing",
        /// Its video is playable.
        Ready => "ready",
        /// Refused (the file cannot be played); [`UploadRow::error`](super::UploadRow::error) says why.
        Failed => "failed",
    }
}

/// One video as the catalog stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Video {
    /// The [`VideoId`] as text.
    pub id: String,
    pub title: String,
    pub description: String,
    /// Normalized tags (lowercase, unique), in the order they were given.
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub status: VideoStatus,
    /// Why recording failed (with [`VideoStatus::Failed`]).
    pub error: Option<String>,
    /// Name of the live stream it was recorded from.
    pub stream: String,
    /// Total duration of the duration track's segments.
    pub duration_ms: i64,
    /// Total size of all segments of all tracks.
    pub size_bytes: i64,
    /// Storage key of the thumbnail image.
    pub thumbnail: Option<String>,
    pub created_at_ms: i64,
    /// When recording ended.
    pub ended_at_ms: Option<i64>,
    pub updated_at_ms: i64,
    /// Frames of the duration track the recording lost (it could not keep up: the storage or
    /// the catalog stalled for longer than its buffer holds, or it fell behind the live edge).
    /// Each loss is a discontinuity in the video.
    pub frames_lost: i64,
    /// Media time those lost frames spanned.
    pub lost_ms: i64,
    /// Recorded or uploaded.
    pub source: VideoSource,
}

/// What [`Catalog::create_video`](super::Catalog::create_video) needs to start a recording.
#[derive(Clone, Copy, Debug)]
pub struct NewVideo<'a> {
    pub id: VideoId,
    /// Trimmed, cut to [`MAX_TITLE_CHARS`]; must not be empty.
    pub title: &'a str,
    pub stream: &'a str,
    pub visibility: Visibility,
    pub created_at_ms: i64,
}

/// One version of a track's initialization data (a new version after a codec change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitRow {
    pub track: String,
    pub version: i64,
    /// JSON chosen by the caller.
    pub info: String,
}

/// One completed media segment of a track.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRow {
    pub track: String,
    pub sequence: i64,
    /// The [`InitRow::version`] this segment decodes with.
    pub init_version: i64,
    /// Timestamps do not continue from the previous segment.
    pub discontinuity: bool,
    /// Decode time of the first sample, in `timescale` units.
    pub start_ticks: i64,
    pub duration_ticks: i64,
    /// Ticks per second; must be positive.
    pub timescale: i64,
    pub size_bytes: i64,
    /// Wall-clock time of the first sample, unix milliseconds.
    pub wall_clock_ms: i64,
}

/// Filters, search text and paging for [`Catalog::list`](super::Catalog::list). Deserializable
/// from an HTTP query string; `include_private` is not (the server decides it).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct VideoQuery {
    /// Free text: every word must match a word (prefix) of the title, description or tags.
    pub q: Option<String>,
    /// Exact source stream name.
    pub stream: Option<String>,
    pub status: Option<VideoStatus>,
    /// One tag the video must carry (normalized like the video's tags).
    pub tag: Option<String>,
    /// Created at or after (unix ms).
    pub since_ms: Option<i64>,
    /// Created before (unix ms).
    pub until_ms: Option<i64>,
    /// The owner's view: also list unlisted and private videos (otherwise only public ones).
    #[serde(skip)]
    pub include_private: bool,
    /// Page size: [`DEFAULT_PAGE_SIZE`] when absent, at most [`MAX_PAGE_SIZE`].
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// One page of [`Catalog::list`](super::Catalog::list).
#[derive(Clone, Debug, Serialize)]
pub struct VideoPage {
    pub videos: Vec<Video>,
    /// How many videos match in all (every page).
    pub total: i64,
    /// The page size used (after the default and clamping).
    pub limit: u32,
    pub offset: u32,
}

/// A user's edit of a video; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoPatch {
    /// 1 to [`MAX_TITLE_CHARS`] characters after trimming surrounding whitespace.
    pub title: Option<String>,
    /// At most [`MAX_DESCRIPTION_CHARS`] characters.
    pub description: Option<String>,
    /// Replaces all tags: at most [`MAX_TAGS`], each 1 to [`MAX_TAG_CHARS`] letters, digits, `-`
    /// or `_`; stored lowercase without duplicates.
    pub tags: Option<Vec<String>>,
    pub visibility: Option<Visibility>,
    /// Seconds from the video's start: its thumbnail (poster) is made again from the picture
    /// there (the HTTP layer does it; the catalog only stores the thumbnail's key).
    pub thumbnail_time: Option<f64>,
}

/// How a recording ended, for [`Catalog::finish_video`](super::Catalog::finish_video).
#[derive(Clone, Debug)]
pub struct VideoEnd {
    /// [`VideoStatus::Ready`] or [`VideoStatus::Failed`].
    pub status: VideoStatus,
    pub error: Option<String>,
    pub ended_at_ms: i64,
}

/// `title` without surrounding whitespace, if it has an allowed length.
pub(crate) fn checked_title(title: &str) -> Result<&str, CatalogError> {
    let title = title.trim();
    let chars = title.chars().count();
    if (1..=MAX_TITLE_CHARS).contains(&chars) {
        Ok(title)
    } else {
        Err(CatalogError::Invalid(format!("the title must have 1 to {MAX_TITLE_CHARS} characters (it has {chars})")))
    }
}

/// A machine-made title: trimmed and cut to [`MAX_TITLE_CHARS`]; only an empty one is refused.
pub(crate) fn recording_title(title: &str) -> Result<String, CatalogError> {
    let cut: String = title.trim().chars().take(MAX_TITLE_CHARS).collect();
    checked_title(&cut).map(str::to_owned)
}

pub(crate) fn check_description(description: &str) -> Result<(), CatalogError> {
    let chars = description.chars().count();
    if chars <= MAX_DESCRIPTION_CHARS {
        Ok(())
    } else {
        Err(CatalogError::Invalid(format!(
            "the description must have at most {MAX_DESCRIPTION_CHARS} characters (it has {chars})"
        )))
    }
}

/// One tag, lowercased, if it is 1 to [`MAX_TAG_CHARS`] letters, digits, `-` or `_`.
pub(crate) fn normalized_tag(tag: &str) -> Result<String, CatalogError> {
    let chars = tag.chars().count();
    if !(1..=MAX_TAG_CHARS).contains(&chars) {
        return Err(CatalogError::Invalid(format!(
            "a tag must have 1 to {MAX_TAG_CHARS} characters ({tag:?} has {chars})"
        )));
    }
    if let Some(bad) = tag.chars().find(|&c| !(c.is_alphanumeric() || c == '-' || c == '_')) {
        return Err(CatalogError::Invalid(format!(
            "a tag may only contain letters, digits, '-' and '_' ({tag:?} contains {bad:?})"
        )));
    }
    Ok(tag.to_lowercase())
}

/// Tags lowercased, duplicates removed (first occurrence kept), at most [`MAX_TAGS`].
pub(crate) fn normalized_tags(tags: &[String]) -> Result<Vec<String>, CatalogError> {
    let mut normalized: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = normalized_tag(tag)?;
        if !normalized.contains(&tag) {
            normalized.push(tag);
        }
    }
    if normalized.len() > MAX_TAGS {
        return Err(CatalogError::Invalid(format!(
            "a video may have at most {MAX_TAGS} tags (got {})",
            normalized.len()
        )));
    }
    Ok(normalized)
}

/// Tags as stored: joined by single spaces (tags never contain whitespace).
pub(crate) fn joined_tags(tags: &[String]) -> String {
    tags.join(" ")
}

/// Tags from their stored form.
pub(crate) fn split_tags(stored: &str) -> Vec<String> {
    stored.split(' ').filter(|tag| !tag.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_text_and_serde() {
        for &status in VideoStatus::ALL {
            assert_eq!(status.as_str().parse::<VideoStatus>().unwrap(), status);
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{status}\""));
        }
        for &visibility in Visibility::ALL {
            assert_eq!(visibility.as_str().parse::<Visibility>().unwrap(), visibility);
        }
        let error = "Public".parse::<Visibility>().unwrap_err().to_string();
        assert!(error.contains("public, unlisted, private"), "{error}");
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(checked_title("  Evening show \n").unwrap(), "Evening show");
        assert!(checked_title("   ").is_err());
        assert!(checked_title(&"é".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(checked_title(&"é".repeat(MAX_TITLE_CHARS + 1)).is_err());
        assert_eq!(recording_title(&format!(" {} ", "é".repeat(300))).unwrap().chars().count(), MAX_TITLE_CHARS);
        assert!(recording_title(" \t").is_err());
    }

    #[test]
    fn tags_are_lowercased_deduplicated_and_checked() {
        let tags: Vec<String> = ["Music", "live-set", "MUSIC", "Ünïcode_2"].map(String::from).to_vec();
        assert_eq!(normalized_tags(&tags).unwrap(), ["music", "live-set", "ünïcode_2"]);
        for bad in ["", "two words", "semi;colon", "quote'", &"x".repeat(MAX_TAG_CHARS + 1)] {
            assert!(normalized_tag(bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert!(normalized_tags(&many).is_err());
        assert!(normalized_tags(&many[..MAX_TAGS]).is_ok());
        assert_eq!(split_tags(&joined_tags(&tags[..2])), ["Music", "live-set"]);
        assert!(split_tags("").is_empty());
    }

    #[test]
    fn query_deserialization_cannot_include_private_videos() {
        let query: VideoQuery =
            serde_json::from_str(r#"{"q": "cats", "include_private": true, "status": "ready"}"#).unwrap();
        assert!(!query.include_private);
        assert_eq!(query.status, Some(VideoStatus::Ready));
        assert!(serde_json::from_str::<VideoPatch>(r#"{"title": "x", "owner": "y"}"#).is_err());
    }
}
