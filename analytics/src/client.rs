//! What a request says about its viewer, reduced to what analytics may keep: a country (from
//! the address, via the compiled-in RIR table of `iptocc` or an optional MaxMind-format
//! database), a device/browser/OS family (from the User-Agent), a referrer host, and a
//! daily-salted visitor hash that counts uniques without storing addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher24};
use std::hash::Hasher;

// --- country -------------------------------------------------------------------------------

/// An ISO 3166-1 alpha-2 country code: two uppercase ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// `Some` for two ASCII letters (either case; stored uppercase).
    pub fn new(code: &str) -> Option<Country> {
        match code.as_bytes() {
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        // Two ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An address seen from the Internet: IPv4-mapped IPv6 is unwrapped; private, loopback,
/// link-local, shared (CGNAT), documentation, multicast and unspecified addresses are `None`.
fn public_address(ip: IpAddr) -> Option<IpAddr> {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let public = match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    };
    public.then_some(ip)
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s0 = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s0 & 0xfe00) == 0xfc00 // unique local
        || (s0 & 0xffc0) == 0xfe80 // link local
        || s0 == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// The country of a public address from the RIR delegation table compiled into `iptocc` (the
/// country an address block is registered to: ~95 % agreement with MaxMind for IPv4).
pub fn country(ip: IpAddr) -> Option<Country> {
    let ip = public_address(ip)?;
    iptocc::country_code(ip).and_then(Country::new)
}

/// Could not open a MaxMind-format database.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the geo-IP database {path}: {source}")]
pub struct GeoDbError {
    path: String,
    #[source]
    source: maxminddb::MaxMindDbError,
}

/// A MaxMind-format (`.mmdb`) country database, read into memory: GeoLite2/GeoIP2 Country or
/// City (`country.iso_code`, else `registered_country.iso_code`) and the ip-location-db files
/// (`country_code`).
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb").field("database_type", &self.reader.metadata().database_type).finish()
    }
}

#[derive(serde::Deserialize)]
struct IsoCode<'a> {
    iso_code: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow)]
    registered_country: Option<IsoCode<'a>>,
    country_code: Option<&'a str>,
}

impl GeoDb {
    pub fn open(path: impl AsRef<Path>) -> Result<GeoDb, GeoDbError> {
        let path = path.as_ref();
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|source| GeoDbError { path: path.display().to_string(), source })?;
        Ok(GeoDb { reader })
    }

    /// The database's country for `ip` (no private-address filtering; see [`Geo::country`]).
    pub fn country(&self, ip: IpAddr) -> Option<Country> {
        let rec: CountryRecord<'_> = self.reader.lookup(ip).ok()?.decode().ok()??;
        let code = rec
            .country
            .and_then(|c| c.iso_code)
            .or(rec.country_code)
            .or(rec.registered_country.and_then(|c| c.iso_code))?;
        Country::new(code)
    }
}

/// Country lookup: the configured database first, then the compiled-in table.
#[derive(Debug, Default)]
pub struct Geo {
    db: Option<GeoDb>,
}

impl Geo {
    pub fn new(db: Option<GeoDb>) -> Geo {
        Geo { db }
    }

    /// `None` for private and other non-public addresses, and for addresses neither source
    /// knows.
    pub fn country(&self, ip: IpAddr) -> Option<Country> {
        let ip = public_address(ip)?;
        self.db.as_ref().and_then(|db| db.country(ip)).or_else(|| country(ip))
    }
}

// --- device --------------------------------------------------------------------------------

/// The kind of device a User-Agent describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    Desktop,
    Mobile,
    Tablet,
    Tv,
    Bot,
    /// Tools and libraries (ffmpeg, GStreamer, VLC, curl, …) and anything unrecognised.
    Other,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Desktop => "desktop",
            DeviceKind::Mobile => "mobile",
            DeviceKind::Tablet => "tablet",
            DeviceKind::Tv => "tv",
            DeviceKind::Bot => "bot",
            DeviceKind::Other => "other",
        }
    }
}

/// A User-Agent's device kind, browser (or player/tool) family and OS family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Device {
    pub kind: DeviceKind,
    /// "Chrome", "Firefox", "Safari", "Edge", "Opera", "Samsung Internet", "ffmpeg",
    /// "GStreamer", "VLC", "OBS", "ExoPlayer", "AppleCoreMedia", "curl", "Bot" or "Other".
    pub browser: &'static str,
    /// "Windows", "macOS", "iOS", "Android", "Linux", "ChromeOS", "tvOS", "Tizen", "webOS" or
    /// "Other".
    pub os: &'static str,
}

fn has(ua: &str, needle: &str) -> bool {
    ua.contains(needle)
}

fn has_ci(ua: &str, needle: &str) -> bool {
    let (h, n) = (ua.as_bytes(), needle.as_bytes());
    h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Classifies a User-Agent with a few substring rules (no regexes, no tables to update).
/// Headless Chromium counts as Chrome on a desktop: Rill's own end-to-end tests play with it.
pub fn device(user_agent: &str) -> Device {
    // Only the first 512 bytes matter (and bound the work on hostile input).
    let ua = match user_agent.char_indices().nth(512) {
        Some((i, _)) => &user_agent[..i],
        None => user_agent,
    };
    let os = os_family(ua);
    let (browser, tool) = browser_family(ua);
    // Native players (Safari's HLS stack, ExoPlayer) describe the device like a browser does;
    // an Android app's player says "Android" without "Mobile" (a phone, most likely).
    let native = matches!(browser, "AppleCoreMedia" | "ExoPlayer");
    let kind = if browser == "Bot" {
        DeviceKind::Bot
    } else if tool && !native {
        DeviceKind::Other
    } else if is_tv(ua) {
        DeviceKind::Tv
    } else if has(ua, "iPad") || has(ua, "Tablet") || (os == "Android" && !has(ua, "Mobile") && !native) {
        DeviceKind::Tablet
    } else if has(ua, "iPhone") || has(ua, "iPod") || os == "Android" {
        DeviceKind::Mobile
    } else if browser != "Other" && matches!(os, "Windows" | "macOS" | "Linux" | "ChromeOS") {
        DeviceKind::Desktop
    } else {
        DeviceKind::Other
    };
    Device { kind, browser, os }
}

fn is_tv(ua: &str) -> bool {
    [
        "SmartTV",
        "SMART-TV",
        "Smart-TV",
        "Tizen",
        "Web0S",
        "WebOS",
        "webOS",
        "BRAVIA",
        "AFT",
        "Android TV",
        "GoogleTV",
        "CrKey",
        "Apple TV",
        "AppleTV",
        "Roku",
        "HbbTV",
        "PlayStation",
        "Xbox",
        "NetCast",
    ]
    .iter()
    .any(|m| has(ua, m))
}

fn os_family(ua: &str) -> &'static str {
    if has(ua, "Apple TV") || has(ua, "AppleTV") || has(ua, "tvOS") {
        "tvOS"
    } else if has(ua, "iPhone") || has(ua, "iPad") || has(ua, "iPod") || has(ua, "iOS") {
        "iOS"
    } else if has(ua, "Android") {
        "Android"
    } else if has(ua, "Windows") {
        "Windows"
    } else if has(ua, "Mac OS X") || has(ua, "Macintosh") || has(ua, "Darwin") {
        "macOS"
    } else if has(ua, "CrOS") {
        "ChromeOS"
    } else if has(ua, "Tizen") {
        "Tizen"
    } else if has(ua, "Web0S") || has(ua, "webOS") || has(ua, "WebOS") {
        "webOS"
    } else if has(ua, "Linux") || has(ua, "X11") {
        "Linux"
    } else {
        "Other"
    }
}

/// The family, and whether it is a tool or player library rather than a browser.
fn browser_family(ua: &str) -> (&'static str, bool) {
    const BOTS: [&str; 9] = [
        "bot",
        "spider",
        "crawl",
        "slurp",
        "facebookexternalhit",
        "preview",
        "monitor",
        "python-requests",
        "go-http-client",
    ];
    if BOTS.iter().any(|b| has_ci(ua, b)) {
        return ("Bot", false);
    }
    let tools: [(&str, &'static str); 11] = [
        ("Lavf/", "ffmpeg"),
        ("FFmpeg", "ffmpeg"),
        ("GStreamer", "GStreamer"),
        ("gstreamer", "GStreamer"),
        ("VLC/", "VLC"),
        ("LibVLC", "VLC"),
        ("obs-studio", "OBS"),
        ("OBS/", "OBS"),
        ("ExoPlayer", "ExoPlayer"),
        ("AndroidXMedia3", "ExoPlayer"),
        ("AppleCoreMedia", "AppleCoreMedia"),
    ];
    if let Some((_, name)) = tools.iter().find(|(m, _)| has(ua, m)) {
        return (name, true);
    }
    if ua.starts_with("curl/") {
        return ("curl", true);
    }
    let browser = if has(ua, "Edg/") || has(ua, "EdgA/") || has(ua, "EdgiOS/") || has(ua, "Edge/") {
        "Edge"
    } else if has(ua, "OPR/") || has(ua, "Opera") {
        "Opera"
    } else if has(ua, "SamsungBrowser/") {
        "Samsung Internet"
    } else if has(ua, "Firefox/") || has(ua, "FxiOS/") {
        "Firefox"
    } else if has(ua, "Chrome/") || has(ua, "CriOS/") || has(ua, "Chromium/") {
        "Chrome"
    } else if has(ua, "Safari/") || (has(ua, "AppleWebKit/") && has(ua, "Mobile/")) {
        "Safari"
    } else {
        "Other"
    };
    (browser, false)
}

// --- referrer ------------------------------------------------------------------------------

/// The host of a `Referer` header, lowercased and without a leading `www.`; `None` when it is
/// empty or not an absolute URL with a plausible host. Whether the referrer is the site itself
/// is the caller's concern.
pub fn referrer_host(referer: &str) -> Option<String> {
    let (scheme, rest) = referer.trim().split_once("://")?;
    if scheme.is_empty() || !scheme.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        let (addr, _) = v6.split_once(']')?;
        addr.parse::<Ipv6Addr>().ok()?;
        return Some(format!("[{}]", addr.to_ascii_lowercase()));
    } else {
        host_port.split(':').next()?
    };
    let host = host.trim_end_matches('.');
    if host.is_empty()
        || host.len() > 253
        || !host.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        || host.starts_with('.')
        || host.contains("..")
    {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match host.strip_prefix("www.") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => host,
    })
}

// --- visitors ------------------------------------------------------------------------------

/// Counts unique visitors without keeping addresses: `visitor(day, ip, ua)` is a keyed hash
/// whose key is derived from a 32-byte secret and the UTC day, so an id is stable within a day
/// (on every node sharing the secret) and unlinkable across days, and the address cannot be
/// recovered from it without the secret.
///
/// Day key = SipHash-2-4-128 keyed with the secret's first half over ("rill-visitor" ‖ day ‖
/// the secret's second half); visitor id = SipHash-1-3 keyed with the day key over
/// (address ‖ 0xff ‖ User-Agent).
#[derive(Clone)]
pub struct VisitorHasher {
    secret: [u8; 32],
}

impl fmt::Debug for VisitorHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VisitorHasher(..)")
    }
}

impl VisitorHasher {
    pub fn new(secret: [u8; 32]) -> VisitorHasher {
        VisitorHasher { secret }
    }

    /// The 128-bit key of one UTC day (days since the Unix epoch).
    fn day_key(&self, day: u32) -> [u8; 16] {
        let mut k = [0u8; 16];
        k.copy_from_slice(&self.secret[..16]);
        let mut h = SipHasher24::new_with_key(&k);
        h.write(b"rill-visitor");
        h.write(&day.to_le_bytes());
        h.write(&self.secret[16..]);
        h.finish128().as_bytes()
    }

    /// The visitor id of (`ip`, `user_agent`) on `day` (days since the Unix epoch, UTC).
    /// IPv4-mapped IPv6 addresses hash like their IPv4 form.
    pub fn visitor(&self, day: u32, ip: IpAddr, user_agent: &str) -> u64 {
        let mut h = SipHasher13::new_with_key(&self.day_key(day));
        match ip {
            IpAddr::V4(v4) => h.write(&v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => h.write(&v4.octets()),
                None => h.write(&v6.octets()),
            },
        }
        h.write_u8(0xff);
        h.write(user_agent.as_bytes());
        h.finish()
    }
}

#[cfg(test)]
mod tests;
