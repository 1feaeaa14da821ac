//! Stream names and Bus paths: the one definition of a valid public stream name, and
//! [`StreamPath`], the typed key of a stream on the Bus.
//!
//! A path is a stream name and a feed: the source itself (`live/<name>`), a transcoded
//! rendition (`live/<name>/<rung>`) or the derived Opus audio feed (`live/<name>/opus`). Its
//! `Display` and `FromStr` are those strings; nothing else builds or splits them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Longest public stream name.
pub const MAX_STREAM_NAME_LEN: usize = 64;

/// True for `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_stream_name(name: &str) -> bool {
    (1..=MAX_STREAM_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The last path segment of the derived Opus audio feed of a stream (`live/<name>/opus`, for
/// WebRTC): audio only, not a rendition of the ladder, so no rendition may take this name.
pub const OPUS_FEED: &str = "opus";

/// The last path segment of the WebRTC video rendition of a stream (`live/<name>/webrtc`:
/// Constrained Baseline H.264 made on demand for viewers that cannot decode the source's
/// video): not a ladder rung either.
pub const WEBRTC_FEED: &str = "webrtc";

/// Why a string is not a stream name, rendition name or stream path.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PathError {
    #[error("invalid stream name {0:?} (allowed: [A-Za-z0-9_-]{{1,64}})")]
    InvalidName(String),
    #[error("invalid rendition name {0:?} (allowed: [A-Za-z0-9_-]{{1,64}}, not \"opus\" or \"webrtc\")")]
    InvalidRendition(String),
    #[error("{0:?} is not a live stream path (live/<name> or live/<name>/<rendition>)")]
    NotAStreamPath(String),
}

/// A valid public stream name: `[A-Za-z0-9_-]{1,64}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(String);

impl StreamName {
    pub fn new(name: impl Into<String>) -> Result<StreamName, PathError> {
        let name = name.into();
        if is_valid_stream_name(&name) {
            Ok(StreamName(name))
        } else {
            Err(PathError::InvalidName(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a transcoded rendition (a ladder rung): a valid stream name other than
/// [`OPUS_FEED`] or [`WEBRTC_FEED`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RenditionName(String);

impl RenditionName {
    pub fn new(name: impl Into<String>) -> Result<RenditionName, PathError> {
        let name = name.into();
        if is_valid_stream_name(&name) && name != OPUS_FEED && name != WEBRTC_FEED {
            Ok(RenditionName(name))
        } else {
            Err(PathError::InvalidRendition(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! name_traits {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = PathError;
            fn from_str(s: &str) -> Result<Self, PathError> {
                $name::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_traits!(StreamName);
name_traits!(RenditionName);

/// Which feed of a stream a path names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feed {
    /// The stream as its publisher sends it: `live/<name>`.
    Source,
    /// A transcoded rendition: `live/<name>/<rendition>`.
    Rendition(RenditionName),
    /// The derived Opus audio feed: `live/<name>/opus`.
    Opus,
    /// The WebRTC video rendition (Constrained Baseline H.264): `live/<name>/webrtc`.
    WebRtc,
}

/// The key of a stream on the Bus. Displays (and serializes) as `live/<name>`,
/// `live/<name>/<rendition>` or `live/<name>/opus`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamPath {
    pub name: StreamName,
    pub feed: Feed,
}

impl StreamPath {
    /// The source of stream `name`: `live/<name>`.
    pub fn source(name: StreamName) -> StreamPath {
        StreamPath { name, feed: Feed::Source }
    }

    /// The source of the stream called `name`, checking the name.
    pub fn live(name: &str) -> Result<StreamPath, PathError> {
        StreamName::new(name).map(StreamPath::source)
    }

    /// Rendition `rendition` of stream `name`: `live/<name>/<rendition>`.
    pub fn rendition(name: StreamName, rendition: RenditionName) -> StreamPath {
        StreamPath { name, feed: Feed::Rendition(rendition) }
    }

    /// The Opus feed of stream `name`: `live/<name>/opus`.
    pub fn opus(name: StreamName) -> StreamPath {
        StreamPath { name, feed: Feed::Opus }
    }

    /// The same stream with another feed (e.g. a source's Opus feed).
    pub fn with_feed(&self, feed: Feed) -> StreamPath {
        StreamPath { name: self.name.clone(), feed }
    }

    /// The source this feed derives from (itself for a source).
    pub fn to_source(&self) -> StreamPath {
        self.with_feed(Feed::Source)
    }

    pub fn is_source(&self) -> bool {
        self.feed == Feed::Source
    }

    /// The rendition name, for a rendition.
    pub fn rendition_name(&self) -> Option<&RenditionName> {
        match &self.feed {
            Feed::Rendition(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for StreamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.feed {
            Feed::Source => write!(f, "live/{}", self.name),
            Feed::Rendition(r) => write!(f, "live/{}/{r}", self.name),
            Feed::Opus => write!(f, "live/{}/{OPUS_FEED}", self.name),
            Feed::WebRtc => write!(f, "live/{}/{WEBRTC_FEED}", self.name),
        }
    }
}

impl FromStr for StreamPath {
    type Err = PathError;

    fn from_str(path: &str) -> Result<StreamPath, PathError> {
        let not_a_path = || PathError::NotAStreamPath(path.to_string());
        let rest = path.strip_prefix("live/").ok_or_else(not_a_path)?;
        let (name, feed) = match rest.split_once('/') {
            Some((name, feed)) => (name, Some(feed)),
            None => (rest, None),
        };
        let name = StreamName::new(name).map_err(|_| not_a_path())?;
        let feed = match feed {
            None => Feed::Source,
            Some(OPUS_FEED) => Feed::Opus,
            Some(WEBRTC_FEED) => Feed::WebRtc,
            Some(r) => Feed::Rendition(RenditionName::new(r).map_err(|_| not_a_path())?),
        };
        Ok(StreamPath { name, feed })
    }
}

impl Serialize for StreamPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StreamPath, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> StreamName {
        StreamName::new(s).unwrap()
    }

    #[test]
    fn names() {
        assert!(is_valid_stream_name("cam_1-A"));
        assert!(is_valid_stream_name(&"a".repeat(64)));
        for bad in ["", "../x", "a/b", "%00", "a\0b", "é", "a b", &"a".repeat(65)] {
            assert!(!is_valid_stream_name(bad), "{bad:?}");
            assert_eq!(StreamName::new(bad), Err(PathError::InvalidName(bad.to_string())));
        }
        assert!(RenditionName::new("720p").is_ok());
        assert_eq!(RenditionName::new(OPUS_FEED), Err(PathError::InvalidRendition("opus".into())));
        assert_eq!(RenditionName::new(WEBRTC_FEED), Err(PathError::InvalidRendition("webrtc".into())));
        let webrtc: StreamPath = "live/cam/webrtc".parse().unwrap();
        assert_eq!(webrtc.feed, Feed::WebRtc);
        assert_eq!(webrtc.to_string(), "live/cam/webrtc");
    }

    #[test]
    fn paths_display_as_their_strings() {
        assert_eq!(StreamPath::source(name("a")).to_string(), "live/a");
        let r720 = RenditionName::new("720p").unwrap();
        assert_eq!(StreamPath::rendition(name("a"), r720).to_string(), "live/a/720p");
        assert_eq!(StreamPath::opus(name("a")).to_string(), "live/a/opus");
        assert_eq!(StreamPath::live("a/b"), Err(PathError::InvalidName("a/b".into())));
    }

    #[test]
    fn paths_parse_back() {
        for s in ["live/a", "live/cam-1/720p", "live/a/opus"] {
            let path: StreamPath = s.parse().unwrap();
            assert_eq!(path.to_string(), s);
        }
        let opus: StreamPath = "live/a/opus".parse().unwrap();
        assert_eq!(opus.feed, Feed::Opus);
        assert_eq!(opus.to_source(), StreamPath::live("a").unwrap());
        let r: StreamPath = "live/a/720p".parse().unwrap();
        assert_eq!(r.rendition_name().map(RenditionName::as_str), Some("720p"));
        assert!(!r.is_source());
        for bad in ["live/", "live/a/", "live/a/b/c", "vod/a", "live/../a", "live/a/..", "a"] {
            assert_eq!(bad.parse::<StreamPath>(), Err(PathError::NotAStreamPath(bad.into())), "{bad}");
        }
    }

    #[test]
    fn paths_serialize_as_strings() {
        let path: StreamPath = "live/a/360p".parse().unwrap();
        let json = serde_json::to_string(&path).unwrap();
        assert_eq!(json, "\"live/a/360p\"");
        assert_eq!(serde_json::from_str::<StreamPath>(&json).unwrap(), path);
    }
}
