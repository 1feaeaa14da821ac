//! The CMCD and CMSD parsers of `rill-analytics` on arbitrary bytes: as one dictionary (an
//! event line or a header value), as a URL query, as request headers and as an event-mode body;
//! CMSD-Static parse → serialize → parse round trip. Never panics, limits hold, and the
//! hand-written RFC 8941 scanner accepts exactly what the `sfv` crate accepts (RFC 8941 mode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_analytics::cmcd::{self, Cmcd, CID_MAX, MAX_LINE, SID_MAX};
use rill_analytics::cmsd::CmsdStatic;

fn check(c: &Cmcd) {
    assert!(c.sid.as_ref().is_none_or(|s| s.len() <= SID_MAX));
    assert!(c.cid.as_ref().is_none_or(|s| s.len() <= CID_MAX));
    assert!(c.version >= 1);
}

fuzz_target!(|data: &[u8]| {
    // One dictionary, and the scanner against sfv.
    let ours = cmcd::sf::parse_dictionary(data, |_, _| {}).is_ok();
    let theirs = sfv::Parser::new(data)
        .with_version(sfv::Version::Rfc8941)
        .parse_dictionary::<sfv::Dictionary>()
        .is_ok();
    assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(data));
    match cmcd::parse_bytes(data) {
        Ok(c) => {
            assert!(ours && data.len() <= MAX_LINE);
            check(&c);
        }
        Err(cmcd::CmcdError::Syntax { at, .. }) => assert!(!ours && at <= data.len()),
        Err(_) => {}
    }

    // A URL query; without its CMCD argument there is nothing left to find.
    let text = String::from_utf8_lossy(data);
    if let Some(Ok(c)) = cmcd::from_query(&text) {
        check(&c);
    }
    let stripped = cmcd::strip_query(&text);
    assert!(cmcd::from_query(&stripped).is_none());
    assert!(stripped.len() <= text.len());

    // Request headers: chunks split at 0xff, each named by its first byte.
    let headers: Vec<(&str, &[u8])> = data
        .split(|&b| b == 0xff)
        .filter_map(|chunk| {
            let (&first, value) = chunk.split_first()?;
            let name = match first % 6 {
                0 => "CMCD-Request",
                1 => "cmcd-object",
                2 => "CMCD-STATUS",
                3 => "CMCD-Session",
                4 => "Accept",
                _ => "CMCD-Other",
            };
            Some((name, value))
        })
        .collect();
    if let Some(Ok(c)) = cmcd::from_headers(headers) {
        check(&c);
    }

    // An event-mode body.
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut n = 0;
    for r in cmcd::lines(data) {
        n += 1;
        if let Ok(c) = r {
            check(&c);
        }
    }
    assert!(n <= lines);

    // CMSD-Static: what parses serializes to valid structured fields that parse back equal.
    if let Ok(c) = CmsdStatic::parse(&text) {
        let v = c.header_value();
        assert!(sfv::Parser::new(&v).parse_dictionary::<sfv::Dictionary>().is_ok(), "{v}");
        assert_eq!(CmsdStatic::parse(&v), Ok(c), "{v}");
    }
    // And any values serialize to valid structured fields.
    if data.len() >= 24 {
        let u = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().unwrap());
        let c = CmsdStatic {
            at: Some(u(0) as i64),
            ht: Some(u(8)),
            d: Some(u(16) as u32),
            br: (data[20] & 1 == 0).then_some(u(16) as u32 >> 3),
            ot: None,
            st: None,
            su: data[21] & 1 == 1,
            n: Some(String::from_utf8_lossy(&data[24..]).into_owned()),
        };
        let v = c.header_value();
        assert!(CmsdStatic::parse(&v).is_ok(), "{v}");
        assert!(sfv::Parser::new(&v).parse_dictionary::<sfv::Dictionary>().is_ok(), "{v}");
    }
});
