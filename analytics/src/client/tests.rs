use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn country_from_the_compiled_table() {
    assert_eq!(country(ip("8.8.8.8")).unwrap().as_str(), "US");
    assert_eq!(country(ip("1.0.16.1")).unwrap().as_str(), "JP");
    assert_eq!(country(ip("2001:4860:4860::8888")).unwrap().as_str(), "US");
    assert_eq!(country(ip("::ffff:8.8.8.8")).unwrap().as_str(), "US");
    for private in [
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "127.0.0.1",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "2001:db8::1",
    ] {
        assert_eq!(country(ip(private)), None, "{private}");
    }
    assert_eq!(Country::new("de").unwrap().to_string(), "DE");
    assert_eq!(Country::new("D1"), None);
    assert_eq!(Country::new("DEU"), None);
}

/// A minimal MaxMind DB (IPv4 tree, 24-bit records) written by hand, as the format spec
/// describes it: 8.0.0.0/8 in GeoIP2 form (`country.iso_code`), 1.0.0.0/8 in ip-location-db
/// form (`country_code`).
fn tiny_mmdb() -> Vec<u8> {
    fn s(out: &mut Vec<u8>, v: &str) {
        out.push(0x40 | v.len() as u8);
        out.extend_from_slice(v.as_bytes());
    }
    let mut data = Vec::new();
    let geoip2 = data.len() as u32;
    data.push(0xe1); // map, 1 entry
    s(&mut data, "country");
    data.push(0xe1);
    s(&mut data, "iso_code");
    s(&mut data, "DE");
    let location_db = data.len() as u32;
    data.push(0xe1);
    s(&mut data, "country_code");
    s(&mut data, "FR");

    // Trie: one node per bit of each /8 prefix.
    enum Rec {
        Empty,
        Node(usize),
        Data(u32),
    }
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
    for (first_octet, offset) in [(8u8, geoip2), (1u8, location_db)] {
        let mut n = 0;
        for depth in 0..8 {
            let bit = ((first_octet >> (7 - depth)) & 1) as usize;
            if depth == 7 {
                nodes[n][bit] = Rec::Data(offset);
            } else {
                n = match nodes[n][bit] {
                    Rec::Node(next) => next,
                    _ => {
                        nodes.push([Rec::Empty, Rec::Empty]);
                        let next = nodes.len() - 1;
                        nodes[n][bit] = Rec::Node(next);
                        next
                    }
                };
            }
        }
    }
    let count = nodes.len() as u32;
    let mut out = Vec::new();
    for node in &nodes {
        for r in node {
            let v = match *r {
                Rec::Empty => count,
                Rec::Node(i) => i as u32,
                Rec::Data(off) => count + 16 + off,
            };
            out.extend_from_slice(&v.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    out.push(0xe9); // map, 9 entries
    let u16_ = |out: &mut Vec<u8>, v: u16| {
        out.push(0xa2);
        out.extend_from_slice(&v.to_be_bytes());
    };
    s(&mut out, "binary_format_major_version");
    u16_(&mut out, 2);
    s(&mut out, "binary_format_minor_version");
    u16_(&mut out, 0);
    s(&mut out, "build_epoch");
    out.extend_from_slice(&[0x01, 0x02, 0x01]); // uint64 (extended type 9), 1 byte
    s(&mut out, "database_type");
    s(&mut out, "Rill-Test-Country");
    s(&mut out, "description");
    out.push(0xe0);
    s(&mut out, "ip_version");
    u16_(&mut out, 4);
    s(&mut out, "languages");
    out.extend_from_slice(&[0x00, 0x04]); // array (extended type 11), empty
    s(&mut out, "node_count");
    out.push(0xc4);
    out.extend_from_slice(&count.to_be_bytes());
    s(&mut out, "record_size");
    u16_(&mut out, 24);
    out
}

#[test]
fn a_configured_database_is_asked_first() {
    let dir = std::env::temp_dir().join(format!("rill-analytics-geo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny.mmdb");
    std::fs::write(&path, tiny_mmdb()).unwrap();
    let db = GeoDb::open(&path).unwrap();
    assert_eq!(db.country(ip("8.8.8.8")).unwrap().as_str(), "DE");
    assert_eq!(db.country(ip("1.0.16.1")).unwrap().as_str(), "FR");
    assert_eq!(db.country(ip("9.9.9.9")), None);

    let geo = Geo::new(Some(db));
    assert_eq!(geo.country(ip("8.8.8.8")).unwrap().as_str(), "DE");
    assert_eq!(geo.country(ip("::ffff:1.0.16.1")).unwrap().as_str(), "FR");
    // Not in the database (or IPv6 in an IPv4 database): the compiled-in table answers.
    assert_eq!(geo.country(ip("9.9.9.9")).unwrap().as_str(), "US");
    assert_eq!(geo.country(ip("2001:4860:4860::8888")).unwrap().as_str(), "US");
    assert_eq!(geo.country(ip("10.0.0.1")), None);
    assert_eq!(Geo::default().country(ip("8.8.8.8")).unwrap().as_str(), "US");

    let err = GeoDb::open(dir.join("missing.mmdb")).unwrap_err();
    assert!(err.to_string().contains("missing.mmdb"), "{err}");
    std::fs::write(dir.join("garbage.mmdb"), b"not a database").unwrap();
    assert!(GeoDb::open(dir.join("garbage.mmdb")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn devices_from_real_user_agents() {
    let cases: &[(&str, DeviceKind, &str, &str)] = &[
        // Chromium 120 headless on Debian 12 (what the e2e tests drive).
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.224 Safari/537.36", DeviceKind::Desktop, "Chrome", "Linux"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", DeviceKind::Desktop, "Chrome", "Windows"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", DeviceKind::Mobile, "Safari", "iOS"),
        ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", DeviceKind::Tablet, "Safari", "iOS"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", DeviceKind::Desktop, "Safari", "macOS"),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", DeviceKind::Mobile, "Chrome", "Android"),
        ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", DeviceKind::Tablet, "Chrome", "Android"),
        ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", DeviceKind::Mobile, "Samsung Internet", "Android"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", DeviceKind::Desktop, "Firefox", "Linux"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", DeviceKind::Desktop, "Edge", "Windows"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0", DeviceKind::Desktop, "Opera", "Windows"),
        ("Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36", DeviceKind::Tv, "Safari", "Tizen"),
        ("Lavf/59.27.100", DeviceKind::Other, "ffmpeg", "Other"),
        ("VLC/3.0.18 LibVLC/3.0.18", DeviceKind::Other, "VLC", "Other"),
        ("GStreamer souphttpsrc 1.22.0 libsoup/3.2.2", DeviceKind::Other, "GStreamer", "Other"),
        ("curl/7.88.1", DeviceKind::Other, "curl", "Other"),
        ("AppleCoreMedia/1.0.0.21F79 (iPhone; U; CPU OS 17_5 like Mac OS X; en_us)", DeviceKind::Mobile, "AppleCoreMedia", "iOS"),
        ("AppleCoreMedia/1.0.0.20K71 (Apple TV; U; CPU OS 16_1 like Mac OS X; en_us)", DeviceKind::Tv, "AppleCoreMedia", "tvOS"),
        ("ExoPlayerDemo/2.19.1 (Linux;Android 13) ExoPlayerLib/2.19.1", DeviceKind::Mobile, "ExoPlayer", "Android"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", DeviceKind::Bot, "Bot", "Other"),
        ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.204 Safari/537.36", DeviceKind::Bot, "Bot", "Other"),
        ("", DeviceKind::Other, "Other", "Other"),
        ("something/1.0", DeviceKind::Other, "Other", "Other"),
    ];
    for &(ua, kind, browser, os) in cases {
        assert_eq!(device(ua), Device { kind, browser, os }, "{ua}");
    }
    // Hostile input: bounded work, no panic on multi-byte characters at the cut.
    let long = "é".repeat(10_000);
    assert_eq!(device(&long).kind, DeviceKind::Other);
}

#[test]
fn referrer_hosts() {
    for (r, want) in [
        ("https://www.Example.com/watch?v=1", Some("example.com")),
        ("http://news.example.co.uk:8080/a#b", Some("news.example.co.uk")),
        ("https://user:pw@t.co/x", Some("t.co")),
        ("https://example.com.", Some("example.com")),
        ("android-app://com.google.android.gm/", Some("com.google.android.gm")),
        ("http://[2001:DB8::1]:8080/", Some("[2001:db8::1]")),
        ("http://192.0.2.1/", Some("192.0.2.1")),
        ("https://www./", Some("www")),
        ("", None),
        ("example.com", None),
        ("/relative/path", None),
        ("https://", None),
        ("https:///path", None),
        ("https://exa mple.com/", None),
        ("https://a..b/", None),
        ("https://[zz]/", None),
        ("ht tp://example.com", None),
    ] {
        assert_eq!(referrer_host(r).as_deref(), want, "{r:?}");
    }
}

#[test]
fn visitor_ids_are_stable_within_a_day_and_rotate() {
    let secret = [7u8; 32];
    let a = VisitorHasher::new(secret);
    let b = VisitorHasher::new(secret); // another node with the same secret
    let ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";
    let day = 20_425;
    let v = a.visitor(day, ip("203.0.113.7"), ua);
    assert_eq!(v, a.visitor(day, ip("203.0.113.7"), ua));
    assert_eq!(v, b.visitor(day, ip("203.0.113.7"), ua));
    assert_eq!(v, a.visitor(day, ip("::ffff:203.0.113.7"), ua));
    assert_ne!(v, a.visitor(day + 1, ip("203.0.113.7"), ua));
    assert_ne!(v, a.visitor(day, ip("203.0.113.8"), ua));
    assert_ne!(v, a.visitor(day, ip("203.0.113.7"), "curl/7.88.1"));
    let mut other = secret;
    other[31] ^= 1; // either half of the secret changes every id
    assert_ne!(v, VisitorHasher::new(other).visitor(day, ip("203.0.113.7"), ua));
    other = secret;
    other[0] ^= 1;
    assert_ne!(v, VisitorHasher::new(other).visitor(day, ip("203.0.113.7"), ua));
    // Distinct over many visitors and days (no accidental key reuse).
    let mut seen = std::collections::HashSet::new();
    for d in 0..30 {
        for host in 0..200u8 {
            assert!(seen.insert(a.visitor(day + d, IpAddr::from([198, 51, 100, host]), ua)));
        }
    }
    assert_eq!(format!("{a:?}"), "VisitorHasher(..)");
}
