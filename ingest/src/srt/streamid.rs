//! The SRT `streamid` a caller sends in its handshake, in the two forms Rill accepts:
//! `publish:live/<key>` / `read:live/<name>`, and the SRT access-control form
//! `#!::r=live/<key>,m=publish` (`m=request`, the default, reads). A token rides along as
//! `read:live/<name>?token=<JWT>` or `#!::r=live/<name>,token=<JWT>` (either form, either mode).
//! Pure parsing, bounded length.

use thiserror::Error;

/// Longest streamid accepted: the SRT limit (a token takes ~250 of them).
pub const MAX_STREAM_ID_LEN: usize = 512;

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The caller sends a stream (`publish:` / `m=publish`).
    Publish,
    /// The caller receives a stream (`read:` / `m=request`).
    Read,
}

/// A parsed streamid: mode, application (`live`) and the key (publish) or name (read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamIdRequest {
    pub mode: Mode,
    pub app: String,
    /// The stream key when publishing (or the name, with a token), the public stream name when
    /// reading.
    pub key: String,
    /// An access token (a play token to read, a publish token to publish).
    pub token: Option<String>,
}

/// Why a streamid was refused. Never echoes the id itself (it may hold a stream key).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StreamIdError {
    #[error("streamid missing (use streamid=publish:live/<key> or read:live/<name>)")]
    Missing,
    #[error("streamid of {0} bytes is longer than {MAX_STREAM_ID_LEN}")]
    TooLong(usize),
    #[error("streamid is not UTF-8")]
    NotUtf8,
    #[error("streamid has no mode (use publish:live/<key>, read:live/<name> or #!::r=live/<key>,m=publish)")]
    NoMode,
    #[error("unsupported streamid mode {0:?} (publish, request)")]
    UnknownMode(String),
    #[error("malformed access-control entry (expected key=value pairs separated by commas)")]
    Syntax,
    #[error("streamid names no resource (r=live/<key>)")]
    NoResource,
    #[error("resource must be <app>/<key>")]
    BadResource,
}

impl StreamIdRequest {
    /// Parses a streamid as received (raw bytes; the handshake carries no encoding).
    pub fn parse(raw: &[u8]) -> Result<StreamIdRequest, StreamIdError> {
        if raw.is_empty() {
            return Err(StreamIdError::Missing);
        }
        if raw.len() > MAX_STREAM_ID_LEN {
            return Err(StreamIdError::TooLong(raw.len()));
        }
        let text = std::str::from_utf8(raw).map_err(|_| StreamIdError::NotUtf8)?;
        if let Some(entries) = text.strip_prefix("#!::") {
            return parse_access_control(entries);
        }
        let (mode, resource) = text.split_once(':').ok_or(StreamIdError::NoMode)?;
        let mode = match mode {
            "publish" => Mode::Publish,
            "read" => Mode::Read,
            other => return Err(StreamIdError::UnknownMode(truncate(other))),
        };
        let (app, key, token) = split_resource(resource)?;
        Ok(StreamIdRequest { mode, app, key, token })
    }
}

fn parse_access_control(entries: &str) -> Result<StreamIdRequest, StreamIdError> {
    let (mut resource, mut mode, mut token) = (None, Mode::Read, None);
    for entry in entries.split(',') {
        let (k, v) = entry.split_once('=').ok_or(StreamIdError::Syntax)?;
        match k {
            "r" => resource = Some(v),
            "m" => {
                mode = match v {
                    "publish" => Mode::Publish,
                    "request" => Mode::Read,
                    other => return Err(StreamIdError::UnknownMode(truncate(other))),
                }
            }
            "token" if !v.is_empty() => token = Some(v.to_string()),
            // u (user), s (session), h (host), t (type) and other custom keys: not used.
            _ => {}
        }
    }
    let (app, key, query_token) = split_resource(resource.ok_or(StreamIdError::NoResource)?)?;
    Ok(StreamIdRequest { mode, app, key, token: token.or(query_token) })
}

/// `<app>/<key>[?token=…]` → app, key and token.
fn split_resource(resource: &str) -> Result<(String, String, Option<String>), StreamIdError> {
    let (resource, token) = match resource.split_once('?') {
        Some((resource, query)) => (resource, rill_media::access::token_from_query(query)),
        None => (resource, None),
    };
    let (app, key) = resource.split_once('/').ok_or(StreamIdError::BadResource)?;
    if app.is_empty() || key.is_empty() {
        return Err(StreamIdError::BadResource);
    }
    Ok((app.to_string(), key.to_string(), token.map(str::to_string)))
}

/// Modes are echoed in errors; keep them short.
fn truncate(s: &str) -> String {
    s.chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<StreamIdRequest, StreamIdError> {
        StreamIdRequest::parse(s.as_bytes())
    }

    fn req(mode: Mode, key: &str) -> StreamIdRequest {
        StreamIdRequest { mode, app: "live".into(), key: key.into(), token: None }
    }

    #[test]
    fn tokens_in_both_forms() {
        let with = |mode, key: &str| StreamIdRequest { token: Some("a.b.c".into()), ..req(mode, key) };
        assert_eq!(parse("read:live/demo?token=a.b.c"), Ok(with(Mode::Read, "demo")));
        assert_eq!(parse("publish:live/demo?x=1&token=a.b.c"), Ok(with(Mode::Publish, "demo")));
        assert_eq!(parse("#!::r=live/demo,m=request,token=a.b.c"), Ok(with(Mode::Read, "demo")));
        assert_eq!(parse("#!::token=a.b.c,r=live/demo,m=publish"), Ok(with(Mode::Publish, "demo")));
        assert_eq!(parse("#!::r=live/demo?token=a.b.c"), Ok(with(Mode::Read, "demo")));
    }

    #[test]
    fn mediamtx_form() {
        assert_eq!(parse("publish:live/sk_123"), Ok(req(Mode::Publish, "sk_123")));
        assert_eq!(parse("read:live/demo"), Ok(req(Mode::Read, "demo")));
        assert_eq!(parse("read:other/demo").unwrap().app, "other");
    }

    #[test]
    fn access_control_form() {
        assert_eq!(parse("#!::r=live/sk_1,m=publish"), Ok(req(Mode::Publish, "sk_1")));
        assert_eq!(parse("#!::m=request,u=bob,r=live/demo"), Ok(req(Mode::Read, "demo")));
        assert_eq!(parse("#!::r=live/demo"), Ok(req(Mode::Read, "demo")), "request is the default mode");
        // A key containing '/' stays whole (the name check refuses it later).
        assert_eq!(parse("#!::r=live/a/b,m=publish").unwrap().key, "a/b");
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(""), Err(StreamIdError::Missing));
        assert_eq!(parse(&"x".repeat(600)), Err(StreamIdError::TooLong(600)));
        assert_eq!(parse(&"x".repeat(513)), Err(StreamIdError::TooLong(513)));
        assert_eq!(StreamIdRequest::parse(&[0xff, b':']), Err(StreamIdError::NotUtf8));
        assert_eq!(parse("live/demo"), Err(StreamIdError::NoMode));
        assert_eq!(parse("play:live/demo"), Err(StreamIdError::UnknownMode("play".into())));
        assert_eq!(parse("#!::r=live/x,m=bidirectional"), Err(StreamIdError::UnknownMode("bidirectional".into())));
        assert_eq!(parse("#!::m=publish"), Err(StreamIdError::NoResource));
        assert_eq!(parse("#!::r"), Err(StreamIdError::Syntax));
        assert_eq!(parse("publish:live"), Err(StreamIdError::BadResource));
        assert_eq!(parse("publish:live/"), Err(StreamIdError::BadResource));
        assert!(!StreamIdError::TooLong(600).to_string().contains("xxx"));
    }
}
