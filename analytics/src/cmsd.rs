//! The `CMSD-Static` response header (CTA-5006, Common Media Server Data) that Rill's origin
//! adds to playlists, parts and segments: when an object became available (`at`), how long a
//! blocking LL-HLS reload was held (`ht`), and the object's duration, bitrate and type.
//!
//! [`CmsdStatic::header_value`] serializes it as an RFC 8941 dictionary with the keys sorted
//! (as `@svta/cml-cmsd` does); [`CmsdStatic::parse`] reads one back (for tests, the fuzz target
//! and a relay reading its origin's header).

use std::fmt::Write;

use crate::cmcd::sf::{self, Bare, Value};
use crate::cmcd::{ObjectType, StreamType};

/// The header name.
pub const STATIC_HEADER: &str = "CMSD-Static";

/// Longest `n` (intermediary identifier) written or read.
pub const N_MAX: usize = 128;

/// The largest magnitude an RFC 8941 integer can carry (15 digits); larger values are clamped.
const SF_INT_MAX: i64 = 999_999_999_999_999;

/// `CMSD-Static` keys Rill sets. Absent keys are `None` / `false`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmsdStatic {
    /// `at`: availability time of the object, ms since the Unix epoch.
    pub at: Option<i64>,
    /// `ht`: held time, ms (a blocking playlist reload or part request held by the origin).
    pub ht: Option<u64>,
    /// `d`: object duration, ms.
    pub d: Option<u32>,
    /// `br`: encoded bitrate, kbit/s.
    pub br: Option<u32>,
    /// `ot`: object type.
    pub ot: Option<ObjectType>,
    /// `st`: stream type.
    pub st: Option<StreamType>,
    /// `su`: the object is for startup.
    pub su: bool,
    /// `n`: the server's identifier (printable ASCII; other characters become `_` when written).
    pub n: Option<String>,
}

/// Why a `CMSD-Static` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmsdError {
    #[error("CMSD syntax error at byte {at}: expected {expected}")]
    Syntax { at: usize, expected: &'static str },
    #[error("CMSD value is {len} bytes long, over the limit of {limit}")]
    TooLong { len: usize, limit: usize },
}

impl CmsdStatic {
    /// The header value, keys in alphabetical order; empty when nothing is set.
    pub fn header_value(&self) -> String {
        let mut out = String::with_capacity(64);
        let sep = |out: &mut String| {
            if !out.is_empty() {
                out.push(',');
            }
        };
        if let Some(at) = self.at {
            sep(&mut out);
            let _ = write!(out, "at={}", at.clamp(-SF_INT_MAX, SF_INT_MAX));
        }
        if let Some(br) = self.br {
            sep(&mut out);
            let _ = write!(out, "br={br}");
        }
        if let Some(d) = self.d {
            sep(&mut out);
            let _ = write!(out, "d={d}");
        }
        if let Some(ht) = self.ht {
            sep(&mut out);
            let _ = write!(out, "ht={}", ht.min(SF_INT_MAX as u64));
        }
        if let Some(n) = &self.n {
            sep(&mut out);
            out.push_str("n=\"");
            for c in n.chars().take(N_MAX) {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    ' '..='~' => out.push(c),
                    _ => out.push('_'),
                }
            }
            out.push('"');
        }
        if let Some(ot) = self.ot {
            sep(&mut out);
            let _ = write!(out, "ot={}", ot.token());
        }
        if let Some(st) = self.st {
            sep(&mut out);
            let _ = write!(out, "st={}", st.token());
        }
        if self.su {
            sep(&mut out);
            out.push_str("su");
        }
        out
    }

    /// Parses a `CMSD-Static` value. Unknown keys, and known keys with a value of the wrong
    /// type, are ignored; a syntax error or an `n` over [`N_MAX`] is an error.
    pub fn parse(value: &str) -> Result<CmsdStatic, CmsdError> {
        if value.len() > crate::cmcd::MAX_LINE {
            return Err(CmsdError::TooLong { len: value.len(), limit: crate::cmcd::MAX_LINE });
        }
        let mut c = CmsdStatic::default();
        let mut too_long = None;
        sf::parse_dictionary(value.as_bytes(), |key, v| match (key, v) {
            (b"at", Value::Item(Bare::Integer(n))) => c.at = Some(n),
            (b"ht", Value::Item(Bare::Integer(n))) => c.ht = u64::try_from(n).ok().or(c.ht),
            (b"d", Value::Item(Bare::Integer(n))) => c.d = u32::try_from(n).ok().or(c.d),
            (b"br", Value::Item(Bare::Integer(n))) => c.br = u32::try_from(n).ok().or(c.br),
            (b"ot", Value::Item(Bare::Token(t))) => c.ot = ObjectType::from_token(t).or(c.ot),
            (b"st", Value::Item(Bare::Token(t))) => c.st = StreamType::from_token(t).or(c.st),
            (b"su", Value::Item(Bare::Boolean(b))) => c.su = b,
            (b"n", Value::Item(Bare::String { raw, escaped })) => {
                let len = sf::unescaped_len(raw, escaped);
                if len > N_MAX {
                    too_long = Some(len);
                } else {
                    c.n = Some(sf::unescape(raw, escaped));
                }
            }
            _ => {}
        })
        .map_err(|e| CmsdError::Syntax { at: e.at, expected: e.what })?;
        if let Some(len) = too_long {
            return Err(CmsdError::TooLong { len, limit: N_MAX });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_sorted_keys() {
        let c = CmsdStatic {
            at: Some(1_764_752_400_123),
            ht: Some(980),
            d: Some(1000),
            br: Some(2500),
            ot: Some(ObjectType::Video),
            st: Some(StreamType::LowLatency),
            su: true,
            n: Some("rill \"edge\"\\1".into()),
        };
        let v = c.header_value();
        assert_eq!(v, r#"at=1764752400123,br=2500,d=1000,ht=980,n="rill \"edge\"\\1",ot=v,st=ll,su"#);
        assert_eq!(CmsdStatic::parse(&v).unwrap(), c);
        // sfv reads it the same way.
        let dict: sfv::Dictionary = sfv::Parser::new(&v).parse_dictionary().unwrap();
        assert_eq!(dict.len(), 8);
        assert_eq!(CmsdStatic::default().header_value(), "");
        assert_eq!(CmsdStatic { ht: Some(0), ..Default::default() }.header_value(), "ht=0");
    }

    #[test]
    fn writes_only_valid_structured_fields() {
        let c =
            CmsdStatic { at: Some(i64::MIN), ht: Some(u64::MAX), n: Some("é\n\u{7f}x".into()), ..Default::default() };
        let v = c.header_value();
        assert_eq!(v, r#"at=-999999999999999,ht=999999999999999,n="___x""#);
        assert!(sfv::Parser::new(&v).parse_dictionary::<sfv::Dictionary>().is_ok());
    }

    #[test]
    fn parses_what_origins_send() {
        // CTA-5006 / CML examples: a static shard with a version, a type and a stream type.
        let c = CmsdStatic::parse(r#"at=1762378800000,d=4000,n="CDN-A",ot=v,st=v,v=1,nor=("seg-2.m4v")"#).unwrap();
        assert_eq!(c.at, Some(1_762_378_800_000));
        assert_eq!(c.d, Some(4000));
        assert_eq!(c.n.as_deref(), Some("CDN-A"));
        assert_eq!((c.ot, c.st), (Some(ObjectType::Video), Some(StreamType::Vod)));
        assert!(matches!(CmsdStatic::parse("at=1,"), Err(CmsdError::Syntax { at: 5, .. })));
        let long = format!("n=\"{}\"", "x".repeat(N_MAX + 1));
        assert!(matches!(CmsdStatic::parse(&long), Err(CmsdError::TooLong { len: 129, .. })));
        assert_eq!(CmsdStatic::parse("ht=-1,d=\"x\"").unwrap(), CmsdStatic::default());
    }
}
