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
}
