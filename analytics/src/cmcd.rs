//! CMCD (Common Media Client Data, CTA-5004 v1 and CTA-5004-B v2) as players send it: the
//! `CMCD` query argument and the four `CMCD-*` header shards of request mode, and the
//! `application/cmcd` bodies of event mode (one dictionary per line).
//!
//! The syntax is an RFC 8941 dictionary, scanned by hand without allocating ([`sf`]); only the
//! keys Rill uses are kept, in a flat [`Cmcd`] (two allocations at most: `sid` and `cid`, plus
//! `ec` when present).
//!
//! What is an error and what is not:
//! - a syntax error anywhere rejects the whole report ([`CmcdError::Syntax`], with the byte
//!   offset); so does a `sid` over 64 or a `cid` over 128 characters ([`CmcdError::TooLong`]) and
//!   a dictionary over [`MAX_LINE`] bytes ([`CmcdError::LineTooLong`]);
//! - unknown keys, custom keys (`com.example-x`) and known keys Rill does not use (`nor`, `cdn`,
//!   `lb`, …) are skipped once they are syntactically valid;
//! - a known key whose value has the wrong type or is out of range (`br="x"`, `bl=-1`, `ot=zz`,
//!   `su=5`) is skipped and counted in [`Cmcd::skipped_keys`]; the rest of the report stands;
//! - numeric keys accept an integer, a decimal (rounded; some players send `d=6066.66`), or an
//!   inner list whose first item is one (v2 sends `br=(3000;v 164;a)`, v1 `br=3000`): the first
//!   item is the one kept (for `br`, `bl`, `bsd`… that is the video track when players send both);
//! - item parameters (`;v`, `;a`) are validated and ignored.

pub mod sf;

use std::borrow::Cow;

use sf::{Bare, Value};

/// The request-mode header shards, for `Access-Control-Allow-Headers`.
pub const HEADERS: [&str; 4] = ["CMCD-Request", "CMCD-Object", "CMCD-Status", "CMCD-Session"];
/// The request-mode query argument.
pub const QUERY_ARG: &str = "CMCD";
/// The content type of event-mode POST bodies.
pub const MIME_TYPE: &str = "application/cmcd";
/// The longest dictionary accepted, in bytes (one line, one header shard or one decoded query
/// value). Real reports are 100–600 bytes.
pub const MAX_LINE: usize = 4096;
/// `sid` length limit (CTA-5004: a GUID, at most 64 characters).
pub const SID_MAX: usize = 64;
/// `cid` length limit (CTA-5004: at most 128 characters).
pub const CID_MAX: usize = 128;
/// Longest `ec` error code kept (longer ones are skipped and counted).
pub const EC_MAX: usize = 128;

/// Why a report was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmcdError {
    #[error("CMCD syntax error at byte {at}: expected {expected}")]
    Syntax { at: usize, expected: &'static str },
    #[error("CMCD `{key}` is {len} characters long, over the limit of {limit}")]
    TooLong { key: &'static str, len: usize, limit: usize },
    #[error("CMCD dictionary is {len} bytes long, over the limit of {limit}")]
    LineTooLong { len: usize, limit: usize },
}

impl From<sf::SyntaxError> for CmcdError {
    fn from(e: sf::SyntaxError) -> Self {
        CmcdError::Syntax { at: e.at, expected: e.what }
    }
}

macro_rules! token_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $tok:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// The CMCD token.
            pub fn token(self) -> &'static str {
                match self { $($name::$variant => $tok),+ }
            }

            /// Parses a CMCD token.
            pub fn from_token(t: &[u8]) -> Option<Self> {
                match t { $(x if x == $tok.as_bytes() => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

token_enum!(
    /// `ot`: what the request fetches.
    ObjectType {
        /// `m`: a manifest or playlist.
        Manifest = "m",
        Audio = "a",
        Video = "v",
        /// `av`: muxed audio and video.
        Muxed = "av",
        /// `i`: an init segment.
        Init = "i",
        /// `c`: captions or subtitles.
        Caption = "c",
        /// `tt`: an ISOBMFF timed text track.
        TimedText = "tt",
        /// `k`: a key, licence or certificate.
        Key = "k",
        Other = "o",
    }
);

token_enum!(
    /// `st`: stream type.
    StreamType {
        Vod = "v",
        Live = "l",
        /// `ll` (v2).
        LowLatency = "ll",
    }
);

token_enum!(
    /// `sf`: streaming format.
    StreamingFormat {
        Dash = "d",
        Hls = "h",
        Smooth = "s",
        Other = "o",
        /// `e` (v2): HESP.
        Hesp = "e",
    }
);

token_enum!(
    /// `sta` (v2): player state.
    PlayerState {
        Starting = "s",
        Playing = "p",
        Seeking = "k",
        Rebuffering = "r",
        Paused = "a",
        Waiting = "w",
        Ended = "e",
        FatalError = "f",
        Quit = "q",
        Preloading = "d",
    }
);

token_enum!(
    /// A known `e` (v2 event mode) value; [`EventType`] adds the unknown ones.
    KnownEvent {
        /// `ps`: play state change (carries `sta`).
        Ps = "ps",
        /// `bc`: bitrate change (carries `br`).
        Bc = "bc",
        /// `pr`: playback rate change (carries `pr`; not emitted by CML 2.x).
        Pr = "pr",
        /// `e`: error (carries `ec`).
        Error = "e",
        /// `t`: the periodic report (default every 30 s).
        TimeInterval = "t",
        /// `c`: content change (carries `cid`).
        ContentChange = "c",
        /// `b`: backgrounded mode change (carries `bg`).
        Backgrounded = "b",
        Mute = "m",
        Unmute = "um",
        PlayerExpand = "pe",
        PlayerCollapse = "pc",
        /// `rr`: a response was received (carries `rc`, `ttfb`, `ttlb`, `url`).
        ResponseReceived = "rr",
        AdStart = "as",
        AdEnd = "ae",
        AdBreakStart = "abs",
        AdBreakEnd = "abe",
        Skip = "sk",
        /// `ce`: custom event (named by `cen`).
        Custom = "ce",
    }
);

/// `e`: the event of an event-mode report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    Ps,
    Bc,
    Pr,
    Error,
    TimeInterval,
    ContentChange,
    Backgrounded,
    Mute,
    Unmute,
    PlayerExpand,
    PlayerCollapse,
    ResponseReceived,
    AdStart,
    AdEnd,
    AdBreakStart,
    AdBreakEnd,
    Skip,
    Custom,
    /// A token this version does not know (kept, at most 16 characters).
    Other(String),
}

impl EventType {
    fn from_token(t: &[u8]) -> Option<Self> {
        Some(match KnownEvent::from_token(t) {
            Some(k) => match k {
                KnownEvent::Ps => EventType::Ps,
                KnownEvent::Bc => EventType::Bc,
                KnownEvent::Pr => EventType::Pr,
                KnownEvent::Error => EventType::Error,
                KnownEvent::TimeInterval => EventType::TimeInterval,
                KnownEvent::ContentChange => EventType::ContentChange,
                KnownEvent::Backgrounded => EventType::Backgrounded,
                KnownEvent::Mute => EventType::Mute,
                KnownEvent::Unmute => EventType::Unmute,
                KnownEvent::PlayerExpand => EventType::PlayerExpand,
                KnownEvent::PlayerCollapse => EventType::PlayerCollapse,
                KnownEvent::ResponseReceived => EventType::ResponseReceived,
                KnownEvent::AdStart => EventType::AdStart,
                KnownEvent::AdEnd => EventType::AdEnd,
                KnownEvent::AdBreakStart => EventType::AdBreakStart,
                KnownEvent::AdBreakEnd => EventType::AdBreakEnd,
                KnownEvent::Skip => EventType::Skip,
                KnownEvent::Custom => EventType::Custom,
            },
            None if t.len() <= 16 => EventType::Other(String::from_utf8_lossy(t).into_owned()),
            None => return None,
        })
    }

    /// The CMCD token.
    pub fn token(&self) -> &str {
        match self {
            EventType::Ps => "ps",
            EventType::Bc => "bc",
            EventType::Pr => "pr",
            EventType::Error => "e",
            EventType::TimeInterval => "t",
            EventType::ContentChange => "c",
            EventType::Backgrounded => "b",
            EventType::Mute => "m",
            EventType::Unmute => "um",
            EventType::PlayerExpand => "pe",
            EventType::PlayerCollapse => "pc",
            EventType::ResponseReceived => "rr",
            EventType::AdStart => "as",
            EventType::AdEnd => "ae",
            EventType::AdBreakStart => "abs",
            EventType::AdBreakEnd => "abe",
            EventType::Skip => "sk",
            EventType::Custom => "ce",
            EventType::Other(s) => s,
        }
    }
}

/// One CMCD report: a request's header shards merged, a `CMCD=` query value, or one
/// event-mode line. Absent keys are `None` / `false`. Units are CMCD's: kbit/s, ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmcd {
    /// `v`; 1 when absent.
    pub version: u8,
    /// `sid`: session id (≤ [`SID_MAX`] characters).
    pub sid: Option<String>,
    /// `cid`: content id (≤ [`CID_MAX`] characters).
    pub cid: Option<String>,
    /// `e` (v2 event mode).
    pub event: Option<EventType>,
    /// `ts`: when the event happened, ms since the Unix epoch.
    pub ts: Option<i64>,
    /// `ot`: object type of the request.
    pub ot: Option<ObjectType>,
    /// `br`: encoded bitrate, kbit/s.
    pub br: Option<u32>,
    /// `tb`: top bitrate, kbit/s.
    pub tb: Option<u32>,
    /// `d`: object duration, ms.
    pub d: Option<u32>,
    /// `bl`: buffer length, ms.
    pub bl: Option<u32>,
    /// `mtp`: measured throughput, kbit/s.
    pub mtp: Option<u32>,
    /// `dl`: deadline, ms.
    pub dl: Option<u32>,
    /// `rtp`: requested maximum throughput, kbit/s.
    pub rtp: Option<u32>,
    /// `su`: startup (or urgent).
    pub su: bool,
    /// `bs`: the buffer starved since the last report.
    pub bs: bool,
    /// `pr`: playback rate (absent means 1).
    pub pr: Option<f32>,
    /// `st`: stream type.
    pub st: Option<StreamType>,
    /// `sf`: streaming format.
    pub sf: Option<StreamingFormat>,
    /// `sta` (v2): player state.
    pub sta: Option<PlayerState>,
    /// `msd` (v2): media start delay, ms (sent once per session).
    pub msd: Option<u32>,
    /// `ltc` (v2): live latency, ms.
    pub ltc: Option<u32>,
    /// `pb` (v2): playhead bitrate, kbit/s.
    pub pb: Option<u32>,
    /// `pt` (v2): playhead time, ms.
    pub pt: Option<u64>,
    /// `bsa` (v2): buffer starvations (count) since the last report.
    pub bsa: Option<u32>,
    /// `bsd` (v2): duration of completed starvations since the last report, ms.
    pub bsd: Option<u32>,
    /// `bsda` (v2): total starvation duration in the session, ms.
    pub bsda: Option<u32>,
    /// `dfa` (v2): dropped frames (absolute).
    pub dfa: Option<u32>,
    /// `sn` (v2): report sequence number.
    pub sn: Option<u64>,
    /// `bg` (v2): the player is backgrounded.
    pub bg: bool,
    /// `nr` (v2): the content is not rendered (e.g. an ad over it).
    pub nr: bool,
    /// `ec` (v2): the first error code.
    pub ec: Option<String>,
    /// `rc` (v2, `rr` events): HTTP response code.
    pub rc: Option<u16>,
    /// `ttfb` (v2, `rr` events): time to first byte, ms.
    pub ttfb: Option<u32>,
    /// `ttlb` (v2, `rr` events): time to last byte, ms.
    pub ttlb: Option<u32>,
    /// Known keys skipped because their value had the wrong type or was out of range.
    pub skipped_keys: u16,
}

impl Default for Cmcd {
    fn default() -> Self {
        Cmcd {
            version: 1,
            sid: None,
            cid: None,
            event: None,
            ts: None,
            ot: None,
            br: None,
            tb: None,
            d: None,
            bl: None,
            mtp: None,
            dl: None,
            rtp: None,
            su: false,
            bs: false,
            pr: None,
            st: None,
            sf: None,
            sta: None,
            msd: None,
            ltc: None,
            pb: None,
            pt: None,
            bsa: None,
            bsd: None,
            bsda: None,
            dfa: None,
            sn: None,
            bg: false,
            nr: false,
            ec: None,
            rc: None,
            ttfb: None,
            ttlb: None,
            skipped_keys: 0,
        }
    }
}

/// Parses one dictionary: a header value, a decoded `CMCD` query value, or an event line.
pub fn parse(dict: &str) -> Result<Cmcd, CmcdError> {
    parse_bytes(dict.as_bytes())
}

/// [`parse`] on raw bytes (valid CMCD is ASCII; anything else is a syntax error).
pub fn parse_bytes(dict: &[u8]) -> Result<Cmcd, CmcdError> {
    let mut c = Cmcd::default();
    c.merge(dict)?;
    Ok(c)
}

impl Cmcd {
    /// Parses `dict` into this report (how header shards are merged): keys present in `dict`
    /// replace the ones already there. On error `self` may hold part of `dict`.
    pub fn merge(&mut self, dict: &[u8]) -> Result<(), CmcdError> {
        if dict.len() > MAX_LINE {
            return Err(CmcdError::LineTooLong { len: dict.len(), limit: MAX_LINE });
        }
        let mut result = Ok(());
        sf::parse_dictionary(dict, |key, value| {
            if result.is_ok() {
                result = self.apply(key, value);
            }
        })?;
        result
    }

    fn skip(&mut self) {
        self.skipped_keys = self.skipped_keys.saturating_add(1);
    }

    fn apply(&mut self, key: &[u8], v: Value<'_>) -> Result<(), CmcdError> {
        macro_rules! set {
            ($field:ident, $conv:expr) => {{
                match $conv {
                    Some(x) => self.$field = Some(x),
                    None => self.skip(),
                }
            }};
        }
        macro_rules! flag {
            ($field:ident) => {{
                match v {
                    Value::Item(Bare::Boolean(b)) => self.$field = b,
                    _ => self.skip(),
                }
            }};
        }
        match pack(key) {
            K_BR => set!(br, uint(v)),
            K_BL => set!(bl, uint(v)),
            K_D => set!(d, uint(v)),
            K_OT => set!(ot, token(v).and_then(ObjectType::from_token)),
            K_TB => set!(tb, uint(v)),
            K_MTP => set!(mtp, uint(v)),
            K_DL => set!(dl, uint(v)),
            K_RTP => set!(rtp, uint(v)),
            K_SU => flag!(su),
            K_BS => flag!(bs),
            K_BG => flag!(bg),
            K_NR => flag!(nr),
            K_PR => set!(pr, decimal(v)),
            K_SID => self.sid = string(v, "sid", SID_MAX, &mut self.skipped_keys)?.or(self.sid.take()),
            K_CID => self.cid = string(v, "cid", CID_MAX, &mut self.skipped_keys)?.or(self.cid.take()),
            K_ST => set!(st, token(v).and_then(StreamType::from_token)),
            K_SF => set!(sf, token(v).and_then(StreamingFormat::from_token)),
            K_V => match uint::<u8>(v).filter(|&n| n > 0) {
                Some(n) => self.version = n,
                None => self.skip(),
            },
            K_E => set!(event, token(v).and_then(EventType::from_token)),
            K_TS => set!(ts, uint::<i64>(v)),
            K_STA => set!(sta, token(v).and_then(PlayerState::from_token)),
            K_MSD => set!(msd, uint(v)),
            K_LTC => set!(ltc, uint(v)),
            K_PB => set!(pb, uint(v)),
            K_PT => set!(pt, uint(v)),
            K_BSA => set!(bsa, uint(v)),
            K_BSD => set!(bsd, uint(v)),
            K_BSDA => set!(bsda, uint(v)),
            K_DFA => set!(dfa, uint(v)),
            K_SN => set!(sn, uint(v)),
            K_RC => set!(rc, uint(v)),
            K_TTFB => set!(ttfb, uint(v)),
            K_TTLB => set!(ttlb, uint(v)),
            K_EC => {
                // Longer codes are skipped, not an error: the report is still worth keeping.
                match v.first() {
                    Some(Bare::String { raw, escaped }) if sf::unescaped_len(raw, escaped) <= EC_MAX => {
                        self.ec = Some(sf::unescape(raw, escaped))
                    }
                    _ => self.skip(),
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A key of at most four bytes packed into a `u32` (little-endian, zero-padded), so that the
/// known keys are matched by one integer comparison each instead of a slice comparison chain;
/// longer keys (never a known one) map to `u32::MAX`, which no short key can produce.
#[inline]
const fn pack(key: &[u8]) -> u32 {
    if key.len() > 4 {
        return u32::MAX;
    }
    let mut n = 0u32;
    let mut i = 0;
    while i < key.len() {
        n |= (key[i] as u32) << (8 * i);
        i += 1;
    }
    n
}

const K_BR: u32 = pack(b"br");
const K_BL: u32 = pack(b"bl");
const K_D: u32 = pack(b"d");
const K_OT: u32 = pack(b"ot");
const K_TB: u32 = pack(b"tb");
const K_MTP: u32 = pack(b"mtp");
const K_DL: u32 = pack(b"dl");
const K_RTP: u32 = pack(b"rtp");
const K_SU: u32 = pack(b"su");
const K_BS: u32 = pack(b"bs");
const K_BG: u32 = pack(b"bg");
const K_NR: u32 = pack(b"nr");
const K_PR: u32 = pack(b"pr");
const K_SID: u32 = pack(b"sid");
const K_CID: u32 = pack(b"cid");
const K_ST: u32 = pack(b"st");
const K_SF: u32 = pack(b"sf");
const K_V: u32 = pack(b"v");
const K_E: u32 = pack(b"e");
const K_TS: u32 = pack(b"ts");
const K_STA: u32 = pack(b"sta");
const K_MSD: u32 = pack(b"msd");
const K_LTC: u32 = pack(b"ltc");
const K_PB: u32 = pack(b"pb");
const K_PT: u32 = pack(b"pt");
const K_BSA: u32 = pack(b"bsa");
const K_BSD: u32 = pack(b"bsd");
const K_BSDA: u32 = pack(b"bsda");
const K_DFA: u32 = pack(b"dfa");
const K_SN: u32 = pack(b"sn");
const K_RC: u32 = pack(b"rc");
const K_TTFB: u32 = pack(b"ttfb");
const K_TTLB: u32 = pack(b"ttlb");
const K_EC: u32 = pack(b"ec");

/// A non-negative integer (or a decimal, rounded), alone or first in an inner list.
fn uint<T: TryFrom<i64>>(v: Value<'_>) -> Option<T> {
    let n = match v.first()? {
        Bare::Integer(n) => n,
        Bare::Decimal(d) => d.round() as i64,
        _ => return None,
    };
    if n < 0 {
        return None;
    }
    T::try_from(n).ok()
}

fn decimal(v: Value<'_>) -> Option<f32> {
    match v {
        Value::Item(Bare::Decimal(d)) if d >= 0.0 => Some(d as f32),
        Value::Item(Bare::Integer(n)) if n >= 0 => Some(n as f32),
        _ => None,
    }
}

fn token<'a>(v: Value<'a>) -> Option<&'a [u8]> {
    match v {
        Value::Item(Bare::Token(t)) => Some(t),
        _ => None,
    }
}

/// A string key with a length limit: too long is an error, the wrong type is skipped (`None`).
fn string(v: Value<'_>, key: &'static str, limit: usize, skipped: &mut u16) -> Result<Option<String>, CmcdError> {
    match v {
        Value::Item(Bare::String { raw, escaped }) => {
            let len = sf::unescaped_len(raw, escaped);
            if len > limit {
                return Err(CmcdError::TooLong { key, len, limit });
            }
            Ok(Some(sf::unescape(raw, escaped)))
        }
        _ => {
            *skipped = skipped.saturating_add(1);
            Ok(None)
        }
    }
}

/// Finds the `CMCD` argument of a raw URL query (with or without its leading `?`),
/// percent-decodes it (`+` is a space, as in `URLSearchParams`) and parses it; `None` when the
/// query has no `CMCD` argument. Decoding uses a stack buffer: nothing is allocated beyond the
/// report itself.
pub fn from_query(query: &str) -> Option<Result<Cmcd, CmcdError>> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let value = query.split('&').find_map(|arg| match arg.split_once('=') {
        Some((QUERY_ARG, v)) => Some(v),
        None if arg == QUERY_ARG => Some(""),
        _ => None,
    })?;
    let mut buf = [0u8; MAX_LINE];
    Some(match percent_decode(value.as_bytes(), &mut buf) {
        Some(n) => parse_bytes(&buf[..n]),
        None => Err(CmcdError::LineTooLong { len: decoded_len(value.as_bytes()), limit: MAX_LINE }),
    })
}

/// Decodes `%XX` and `+` into `out`; a `%` not followed by two hex digits is kept as is.
/// `None` when the result does not fit.
fn percent_decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut i, mut n) = (0, 0);
    while i < input.len() {
        let c = input[i];
        let (byte, used) = match c {
            b'%' => match (input.get(i + 1).and_then(|&h| hex(h)), input.get(i + 2).and_then(|&l| hex(l))) {
                (Some(h), Some(l)) => (h << 4 | l, 3),
                _ => (b'%', 1),
            },
            b'+' => (b' ', 1),
            _ => (c, 1),
        };
        *out.get_mut(n)? = byte;
        n += 1;
        i += used;
    }
    Some(n)
}

fn decoded_len(input: &[u8]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < input.len() {
        let escape = input[i] == b'%'
            && input.get(i + 1).and_then(|&h| hex(h)).is_some()
            && input.get(i + 2).and_then(|&l| hex(l)).is_some();
        i += if escape { 3 } else { 1 };
        n += 1;
    }
    n
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Merges the request-mode header shards (`CMCD-Request`, `-Object`, `-Status`, `-Session`;
/// names case-insensitive, a shard may repeat) into one report; other headers are ignored.
/// `None` when there is no CMCD header.
pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Option<Result<Cmcd, CmcdError>> {
    let mut report: Option<Cmcd> = None;
    for (name, value) in headers {
        if !HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            continue;
        }
        let c = report.get_or_insert_with(Cmcd::default);
        if let Err(e) = c.merge(value) {
            return Some(Err(e));
        }
    }
    report.map(Ok)
}

/// The query without its `CMCD` argument(s), for cache keys and logs (borrowed when there is
/// none). A leading `?` is kept.
pub fn strip_query(query: &str) -> Cow<'_, str> {
    let is_cmcd = |arg: &str| arg == QUERY_ARG || arg.strip_prefix(QUERY_ARG).is_some_and(|r| r.starts_with('='));
    let (prefix, rest) = match query.strip_prefix('?') {
        Some(r) => ("?", r),
        None => ("", query),
    };
    if !rest.split('&').any(is_cmcd) {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    out.push_str(prefix);
    for arg in rest.split('&').filter(|a| !is_cmcd(a)) {
        if out.len() > prefix.len() {
            out.push('&');
        } else if prefix.is_empty() && arg.strip_prefix('?').is_some_and(is_cmcd) {
            // It moves to the front, where a reader (`from_query`) takes its `?` for the
            // query's own: `CMCD&?CMCD` must not become `?CMCD`.
            continue;
        }
        out.push_str(arg);
    }
    Cow::Owned(out)
}

/// The reports of an event-mode body: one dictionary per line (`\n` or `\r\n`), blank lines
/// skipped. A bad line yields its error and the next lines are still read.
pub fn lines(body: &[u8]) -> Lines<'_> {
    Lines { rest: body }
}

/// Iterator returned by [`lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

impl Iterator for Lines<'_> {
    type Item = Result<Cmcd, CmcdError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (line, rest) = match self.rest.iter().position(|&c| c == b'\n') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, &self.rest[self.rest.len()..]),
            };
            self.rest = rest;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(|&c| c == b' ' || c == b'\t') {
                continue;
            }
            return Some(parse_bytes(line));
        }
    }
}

#[cfg(test)]
mod tests;
