//! Stream names and Bus paths: the one definition of a valid public stream name.

/// Longest public stream name.
pub const MAX_STREAM_NAME_LEN: usize = 64;

/// True for `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_stream_name(name: &str) -> bool {
    (1..=MAX_STREAM_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The Bus path of a live stream: `live/<name>`.
pub fn live_path(name: &str) -> String {
    format!("live/{name}")
}

/// The Bus path of a rendition of a live stream: `live/<name>/<rendition>` (transcoded
/// renditions, and derived feeds such as [`OPUS_FEED`]).
pub fn rendition_path(name: &str, rendition: &str) -> String {
    format!("live/{name}/{rendition}")
}

/// The rendition name of the derived Opus audio feed of a stream (`live/<name>/opus`, for
/// WebRTC): audio only, not a video rendition of the ladder.
pub const OPUS_FEED: &str = "opus";

/// A Bus path as `(name, rendition)`: `live/<name>` → `(name, None)`,
/// `live/<name>/<rendition>` → `(name, Some(rendition))`; anything else (including invalid
/// names) → `None`.
pub fn split_live_path(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix("live/")?;
    let (name, rendition) = match rest.split_once('/') {
        Some((name, rendition)) => (name, Some(rendition)),
        None => (rest, None),
    };
    let valid = is_valid_stream_name(name) && rendition.is_none_or(is_valid_stream_name);
    valid.then_some((name, rendition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_stream_name("cam_1-A"));
        assert!(is_valid_stream_name(&"a".repeat(64)));
        for bad in ["", "../x", "a/b", "%00", "a\0b", "é", "a b", &"a".repeat(65)] {
            assert!(!is_valid_stream_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn rendition_paths() {
        assert_eq!(split_live_path("live/a"), Some(("a", None)));
        assert_eq!(split_live_path(&rendition_path("a", "720p")), Some(("a", Some("720p"))));
        for bad in ["live/", "live/a/", "live/a/b/c", "vod/a", "live/../a", "live/a/.."] {
            assert_eq!(split_live_path(bad), None, "{bad}");
        }
    }
}
