//! Video ids: 12 random characters of Crockford's base32 alphabet (60 bits), safe in URLs, file
//! names and SQL without escaping. Anything else is not a video id, so a hostile path segment
//! (`..`, `%2F`, quotes) never reaches storage or the database.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const LEN: usize = 12;

/// A validated video id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VideoId([u8; LEN]);

impl VideoId {
    /// A new random id.
    pub fn generate() -> VideoId {
        let mut random = [0u8; LEN];
        getrandom::fill(&mut random).expect("the OS random source is available");
        VideoId(random.map(|b| ALPHABET[(b & 31) as usize]))
    }

    /// `text` if it is a well-formed id.
    pub fn parse(text: &str) -> Option<VideoId> {
        let bytes: [u8; LEN] = text.as_bytes().try_into().ok()?;
        bytes.iter().all(|b| ALPHABET.contains(b)).then_some(VideoId(bytes))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ids are ASCII")
    }
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VideoId({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_hostile_ones_do_not() {
        let id = VideoId::generate();
        assert_eq!(VideoId::parse(id.as_str()), Some(id));
        for bad in
            ["", "..", "../../etc/pa", "0123456789ab/", "0123456789AB", "0123456789ai", "0123456789abc", "' OR 1=1 --"]
        {
            assert_eq!(VideoId::parse(bad), None, "{bad:?}");
        }
    }
}
