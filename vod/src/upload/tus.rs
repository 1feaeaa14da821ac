//! The tus 1.0 protocol core, sans-IO: the headers a client sends (version, `Upload-Length`,
//! `Upload-Offset`, `Upload-Metadata`, `Upload-Checksum`, the `PATCH` content type), checked
//! and parsed into values; the rules a `PATCH` must follow against an upload's state
//! ([`Progress`]); the checksum of a `PATCH` body ([`ChecksumCheck`]); and each refusal as a
//! [`TusError`] with its HTTP status. The HTTP layer only moves headers and bytes.
//!
//! Supported: core, `creation`, `termination`, `checksum` (`sha1`) and `expiration`. Not:
//! `creation-defer-length`, `creation-with-upload`, `concatenation`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// The protocol version (`Tus-Resumable`, `Tus-Version`).
pub const VERSION: &str = "1.0.0";
/// `Tus-Extension`.
pub const EXTENSIONS: &str = "creation,termination,checksum,expiration";
/// `Tus-Checksum-Algorithm`.
pub const CHECKSUM_ALGORITHMS: &str = "sha1";
/// The content type of a `PATCH` body.
pub const PATCH_CONTENT_TYPE: &str = "application/offset+octet-stream";
/// Longest `Upload-Metadata` header accepted.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Most `Upload-Metadata` pairs accepted.
pub const MAX_METADATA_PAIRS: usize = 32;

/// Why a tus request is refused; [`TusError::status`] is its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TusError {
    #[error("unsupported tus version {0:?} (this server speaks {VERSION})")]
    UnsupportedVersion(String),
    #[error("missing Tus-Resumable header (this server speaks tus {VERSION})")]
    MissingVersion,
    #[error("missing Upload-Length (deferred lengths are not supported)")]
    MissingLength,
    #[error("{header} must be a non-negative integer (got {value:?})")]
    BadNumber { header: &'static str, value: String },
    #[error("the upload is {length} bytes, over the limit of {max} bytes")]
    TooLarge { length: u64, max: u64 },
    #[error("missing Upload-Offset")]
    MissingOffset,
    #[error("Upload-Offset {sent} does not match the {stored} bytes stored; ask with HEAD and resume from there")]
    OffsetMismatch { sent: u64, stored: u64 },
    #[error("PATCH needs Content-Type: {PATCH_CONTENT_TYPE}")]
    BadContentType,
    #[error("the body goes {over} bytes past the declared Upload-Length")]
    PastLength { over: u64 },
    #[error("Upload-Metadata is malformed: {0}")]
    BadMetadata(String),
    #[error("Upload-Checksum must be \"<algorithm> <base64 digest>\" (got {0:?})")]
    BadChecksum(String),
    #[error("unsupported checksum algorithm {0:?} (supported: {CHECKSUM_ALGORITHMS})")]
    UnsupportedChecksum(String),
    #[error("the body's checksum does not match Upload-Checksum; its bytes were discarded")]
    ChecksumMismatch,
    #[error("the upload is complete: nothing more can be written")]
    Complete,
}

impl TusError {
    /// The HTTP status the tus spec gives this refusal.
    pub fn status(&self) -> u16 {
        match self {
            TusError::UnsupportedVersion(_) | TusError::MissingVersion => 412,
            TusError::TooLarge { .. } | TusError::PastLength { .. } => 413,
            TusError::OffsetMismatch { .. } | TusError::Complete => 409,
            TusError::BadContentType => 415,
            TusError::ChecksumMismatch => 460,
            TusError::MissingLength
            | TusError::BadNumber { .. }
            | TusError::MissingOffset
            | TusError::BadMetadata(_)
            | TusError::BadChecksum(_)
            | TusError::UnsupportedChecksum(_) => 400,
        }
    }
}

/// Checks `Tus-Resumable` (required on every request but `OPTIONS`).
pub fn check_version(header: Option<&str>) -> Result<(), TusError> {
    match header.map(str::trim) {
        Some(VERSION) => Ok(()),
        Some(other) => Err(TusError::UnsupportedVersion(other.to_owned())),
        None => Err(TusError::MissingVersion),
    }
}

fn number(header: &'static str, value: &str) -> Result<u64, TusError> {
    let value = value.trim();
    // Digits only: `u64::from_str` would take a leading `+`.
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TusError::BadNumber { header, value: value.chars().take(40).collect() });
    }
    value.parse().map_err(|_| TusError::BadNumber { header, value: value.to_owned() })
}

/// `Upload-Length` of a creation request, refused over `max` bytes before anything is stored.
pub fn upload_length(header: Option<&str>, max: u64) -> Result<u64, TusError> {
    let length = number("Upload-Length", header.ok_or(TusError::MissingLength)?)?;
    if length > max {
        return Err(TusError::TooLarge { length, max });
    }
    Ok(length)
}

/// `Upload-Offset` of a `PATCH`.
pub fn upload_offset(header: Option<&str>) -> Result<u64, TusError> {
    number("Upload-Offset", header.ok_or(TusError::MissingOffset)?)
}

/// A `PATCH` must carry the tus content type.
pub fn check_patch_content_type(header: Option<&str>) -> Result<(), TusError> {
    let media_type = header.and_then(|v| v.split(';').next()).map(str::trim);
    if media_type.is_some_and(|t| t.eq_ignore_ascii_case(PATCH_CONTENT_TYPE)) {
        Ok(())
    } else {
        Err(TusError::BadContentType)
    }
}

/// `Upload-Metadata` pairs: each key and its value (absent when the key stands alone).
pub type MetadataPairs = Vec<(String, Option<Vec<u8>>)>;

/// `Upload-Metadata`: comma-separated `key base64value` pairs (a key may have no value). Keys
/// are unique, ASCII without spaces or commas; values are bytes (UTF-8 is the caller's check).
pub fn parse_metadata(header: &str) -> Result<MetadataPairs, TusError> {
    if header.len() > MAX_METADATA_BYTES {
        return Err(TusError::BadMetadata(format!("longer than {MAX_METADATA_BYTES} bytes")));
    }
    let mut pairs: MetadataPairs = Vec::new();
    for pair in header.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
        let mut parts = pair.split(' ').filter(|part| !part.is_empty());
        let key = parts.next().unwrap_or_default();
        let value = parts.next();
        if parts.next().is_some() {
            return Err(TusError::BadMetadata(format!("pair {:?} has more than a key and a value", short(pair))));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TusError::BadMetadata(format!("key {:?} is not printable ASCII", short(key))));
        }
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(TusError::BadMetadata(format!("key {key:?} appears twice")));
        }
        if pairs.len() == MAX_METADATA_PAIRS {
            return Err(TusError::BadMetadata(format!("more than {MAX_METADATA_PAIRS} pairs")));
        }
        let value = value
            .map(|v| BASE64.decode(v))
            .transpose()
            .map_err(|_| TusError::BadMetadata(format!("the value of {key:?} is not base64")))?;
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

fn short(text: &str) -> String {
    text.chars().take(40).collect()
}

/// `Upload-Metadata` from pairs (for `HEAD` answers and clients in tests).
pub fn format_metadata<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    pairs.into_iter().map(|(key, value)| format!("{key} {}", BASE64.encode(value))).collect::<Vec<_>>().join(",")
}

/// A parsed `Upload-Checksum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Sha1([u8; 20]),
}

impl Checksum {
    /// `sha1 <base64 digest>`.
    pub fn parse(header: &str) -> Result<Checksum, TusError> {
        let bad = || TusError::BadChecksum(short(header));
        let (algorithm, digest) = header.trim().split_once(' ').ok_or_else(bad)?;
        let digest = BASE64.decode(digest.trim()).map_err(|_| bad())?;
        match algorithm {
            "sha1" => Ok(Checksum::Sha1(digest.try_into().map_err(|_| bad())?)),
            other => Err(TusError::UnsupportedChecksum(short(other))),
        }
    }

    /// The header value for `body` (clients and tests).
    pub fn sha1_header(body: &[u8]) -> String {
        format!("sha1 {}", BASE64.encode(Sha1::digest(body)))
    }
}

/// The checksum of a `PATCH` body, fed as it streams in.
pub struct ChecksumCheck {
    expected: Checksum,
    hasher: Sha1,
}

impl ChecksumCheck {
    pub fn new(expected: Checksum) -> ChecksumCheck {
        ChecksumCheck { expected, hasher: Sha1::new() }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Whether everything fed matches the expected digest.
    pub fn verify(self) -> Result<(), TusError> {
        let Checksum::Sha1(expected) = self.expected;
        if self.hasher.finalize().as_slice() == expected {
            Ok(())
        } else {
            Err(TusError::ChecksumMismatch)
        }
    }
}

/// An upload's byte count against its declared length: what a `PATCH` may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub offset: u64,
    pub length: u64,
}

impl Progress {
    /// Checks a `PATCH` at `sent` offset declaring `content_length` bytes (when known) and
    /// returns how many bytes it may write at most.
    pub fn begin_patch(&self, sent: u64, content_length: Option<u64>) -> Result<u64, TusError> {
        if self.is_complete() {
            return Err(TusError::Complete);
        }
        if sent != self.offset {
            return Err(TusError::OffsetMismatch { sent, stored: self.offset });
        }
        let room = self.length - self.offset;
        match content_length {
            Some(declared) if declared > room => Err(TusError::PastLength { over: declared - room }),
            _ => Ok(room),
        }
    }

    /// `bytes` more arrived (at most what [`Progress::begin_patch`] allowed).
    pub fn advance(&mut self, bytes: u64) -> Result<(), TusError> {
        let room = self.length - self.offset;
        if bytes > room {
            return Err(TusError::PastLength { over: bytes - room });
        }
        self.offset += bytes;
        Ok(())
    }

    pub fn is_complete(&self) -> bool {
        self.offset >= self.length
    }

    /// Share of the bytes received, 0 to 1 (1 for an empty upload).
    pub fn fraction(&self) -> f64 {
        if self.length == 0 {
            1.0
        } else {
            self.offset as f64 / self.length as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_lengths_and_offsets() {
        assert_eq!(check_version(Some("1.0.0")), Ok(()));
        assert_eq!(check_version(Some("0.2.2")).unwrap_err().status(), 412);
        assert_eq!(check_version(None), Err(TusError::MissingVersion));
        assert_eq!(upload_length(Some("1024"), 1024), Ok(1024));
        assert_eq!(upload_length(Some("0"), 10), Ok(0));
        let too_large = upload_length(Some("5000000000"), 1 << 30).unwrap_err();
        assert_eq!(too_large.status(), 413);
        for bad in ["-1", "+5", "1e3", "", " ", "0x10", "99999999999999999999999"] {
            assert_eq!(upload_length(Some(bad), u64::MAX).unwrap_err().status(), 400, "{bad:?}");
        }
        assert_eq!(upload_length(None, 10), Err(TusError::MissingLength));
        assert_eq!(upload_offset(Some(" 42 ")), Ok(42));
        assert_eq!(upload_offset(None), Err(TusError::MissingOffset));
        assert_eq!(check_patch_content_type(Some("application/offset+octet-stream")), Ok(()));
        assert_eq!(check_patch_content_type(Some("Application/Offset+Octet-Stream; x=1")), Ok(()));
        assert_eq!(check_patch_content_type(Some("application/octet-stream")).unwrap_err().status(), 415);
        assert_eq!(check_patch_content_type(None).unwrap_err().status(), 415);
    }

    #[test]
    fn metadata_pairs() {
        let header = format_metadata([("filename", b"clip.mp4".as_slice()), ("title", "Été".as_bytes())]);
        assert_eq!(header, "filename Y2xpcC5tcDQ=,title w4l0w6k=");
        let pairs = parse_metadata(&format!("{header}, is_confidential")).unwrap();
        assert_eq!(pairs[0], ("filename".to_owned(), Some(b"clip.mp4".to_vec())));
        assert_eq!(pairs[1].1.as_deref(), Some("Été".as_bytes()));
        assert_eq!(pairs[2], ("is_confidential".to_owned(), None));
        assert!(parse_metadata("").unwrap().is_empty());
        for bad in ["a b c", "a !!!", "a YQ==,a Yg==", "ké YQ=="] {
            assert_eq!(parse_metadata(bad).unwrap_err().status(), 400, "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_METADATA_PAIRS).map(|i| format!("k{i}")).collect();
        assert!(parse_metadata(&many.join(",")).is_err());
        assert!(parse_metadata(&"k".repeat(MAX_METADATA_BYTES + 1)).is_err());
    }

    #[test]
    fn checksums() {
        // sha1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d
        let header = Checksum::sha1_header(b"abc");
        assert_eq!(header, "sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        let mut check = ChecksumCheck::new(Checksum::parse(&header).unwrap());
        check.update(b"a");
        check.update(b"bc");
        assert_eq!(check.verify(), Ok(()));
        let mut check = ChecksumCheck::new(Checksum::parse(&header).unwrap());
        check.update(b"abd");
        assert_eq!(check.verify().unwrap_err().status(), 460);
        assert!(matches!(Checksum::parse("md5 qZk+NkcGgWq6PiVxeFDCbJzQ2J0="), Err(TusError::UnsupportedChecksum(_))));
        assert!(matches!(Checksum::parse("sha1 YQ=="), Err(TusError::BadChecksum(_))), "wrong digest length");
        assert!(matches!(Checksum::parse("sha1"), Err(TusError::BadChecksum(_))));
        assert!(matches!(Checksum::parse("sha1 ***"), Err(TusError::BadChecksum(_))));
    }

    #[test]
    fn patches_follow_the_offset_and_stop_at_the_length() {
        let mut progress = Progress { offset: 0, length: 100 };
        assert_eq!(progress.begin_patch(0, Some(60)), Ok(100));
        progress.advance(60).unwrap();
        assert_eq!(progress.fraction(), 0.6);
        let mismatch = progress.begin_patch(0, None).unwrap_err();
        assert_eq!((mismatch.status(), mismatch), (409, TusError::OffsetMismatch { sent: 0, stored: 60 }));
        assert_eq!(progress.begin_patch(60, Some(41)).unwrap_err(), TusError::PastLength { over: 1 });
        assert_eq!(progress.begin_patch(60, None), Ok(40));
        assert!(progress.advance(41).is_err());
        progress.advance(40).unwrap();
        assert!(progress.is_complete());
        assert_eq!(progress.begin_patch(100, Some(0)), Err(TusError::Complete));
        assert_eq!(Progress { offset: 0, length: 0 }.fraction(), 1.0);
    }
}
