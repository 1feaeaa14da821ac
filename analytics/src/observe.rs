//! What a CMCD report says about its session, as a [`Report`]: the player state (`sta`),
//! startup (`msd`), bitrate (`pb`, else the `br` of a video object), playhead (`pt`), stalls
//! (`bs`, `bsa`, `bsda`), dropped frames (`dfa`), live latency (`ltc`) and errors (`e`
//! events, `ec`, `sta=f`); and which content its `cid` names.
//!
//! Rill's own pages send `cid` = `live/<stream>` or `vod/<video-id>`; other players' content
//! ids are kept in the raw report but name no content (the session then takes its content
//! from the URLs it fetches).

use crate::cmcd::{Cmcd, EventType, ObjectType, PlayerState};
use crate::session::{PlayState, Protocol, Report};

/// The content a `cid` (or a media URL) names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ContentRef {
    Live(String),
    Video(String),
}

impl ContentRef {
    /// `live/<stream>` or `vod/<video-id>` (ids are checked by the caller's lookup).
    pub fn parse(cid: &str) -> Option<ContentRef> {
        let valid = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        match cid.split_once('/')? {
            ("live", name) if valid(name) => Some(ContentRef::Live(name.to_owned())),
            ("vod", id) if valid(id) => Some(ContentRef::Video(id.to_owned())),
            _ => None,
        }
    }
}

fn play_state(state: PlayerState) -> PlayState {
    match state {
        PlayerState::Starting => PlayState::Starting,
        PlayerState::Playing => PlayState::Playing,
        PlayerState::Seeking => PlayState::Seeking,
        PlayerState::Rebuffering => PlayState::Rebuffering,
        PlayerState::Paused => PlayState::Paused,
        PlayerState::Waiting => PlayState::Waiting,
        PlayerState::Ended => PlayState::Ended,
        PlayerState::FatalError => PlayState::Fatal,
        PlayerState::Quit => PlayState::Quit,
        PlayerState::Preloading => PlayState::Preloading,
    }
}

/// The report of one CMCD dictionary, dated `at_ms` on the server's clock (see
/// [`arrival_times`]).
pub fn report(cmcd: &Cmcd, at_ms: i64) -> Report {
    let video_object = matches!(cmcd.ot, Some(ObjectType::Video | ObjectType::Muxed));
    Report {
        at_ms,
        protocol: protocol(cmcd),
        state: cmcd.sta.map(play_state),
        startup_ms: cmcd.msd.map(u64::from),
        bitrate_kbps: cmcd.pb.or(if video_object { cmcd.br } else { None }),
        playhead_ms: cmcd.pt,
        starved: cmcd.bs,
        stalls: cmcd.bsa.map(u64::from),
        stall_ms: cmcd.bsda.map(u64::from),
        dropped_frames: cmcd.dfa.map(u64::from),
        latency_ms: cmcd.ltc.map(u64::from),
        error: cmcd.event == Some(EventType::Error) || cmcd.ec.is_some(),
        ..Report::default()
    }
}

/// Server times for the reports of one request received at `now_ms`: the newest is dated
/// `now_ms` and the others keep their spacing (`ts`) before it, up to a day. Players' clocks
/// are never trusted absolutely: a viewer whose clock is an hour off is still live now.
pub fn arrival_times(stamps: &[Option<i64>], now_ms: i64) -> Vec<i64> {
    let newest = stamps.iter().flatten().max().copied();
    stamps
        .iter()
        .map(|ts| match (ts, newest) {
            (Some(ts), Some(newest)) => now_ms - (newest - ts).clamp(0, 86_400_000),
            _ => now_ms,
        })
        .collect()
}

/// The protocol a report's `sf` names.
pub fn protocol(cmcd: &Cmcd) -> Option<Protocol> {
    use crate::cmcd::StreamingFormat;
    match cmcd.sf? {
        StreamingFormat::Hls => Some(Protocol::Hls),
        StreamingFormat::Dash => Some(Protocol::Dash),
        _ => None,
    }
}

/// The kind of a raw report (`request`, or the event's token).
pub fn kind(cmcd: &Cmcd) -> &str {
    cmcd.event.as_ref().map_or("request", EventType::token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ids_of_rills_pages() {
        assert_eq!(ContentRef::parse("live/cam-1"), Some(ContentRef::Live("cam-1".into())));
        assert_eq!(ContentRef::parse("vod/abc_12"), Some(ContentRef::Video("abc_12".into())));
        assert_eq!(ContentRef::parse("live/../x"), None);
        assert_eq!(ContentRef::parse("https://example.com/x"), None);
        assert_eq!(ContentRef::parse("live/"), None);
    }

    #[test]
    fn an_event_line_becomes_a_report() {
        let cmcd = crate::cmcd::parse(
            "bl=(21300),br=(3200),e=ps,ltc=1800,msd=450,ot=v,pt=12000,sid=\"6e2fb550\",sta=p,ts=1700000001000,v=2",
        )
        .unwrap();
        let r = report(&cmcd, 1_700_000_001_000);
        assert_eq!(r.at_ms, 1_700_000_001_000);
        assert_eq!(r.state, Some(PlayState::Playing));
        assert_eq!(r.startup_ms, Some(450));
        assert_eq!(r.bitrate_kbps, Some(3200));
        assert_eq!(r.playhead_ms, Some(12_000));
        assert_eq!(r.latency_ms, Some(1_800));
        assert_eq!(kind(&cmcd), "ps");
    }

    #[test]
    fn players_clocks_give_spacing_not_dates() {
        let now = 1_700_000_000_000;
        // A clock an hour behind: the newest report is now, the others keep their spacing.
        let behind = now - 3_600_000;
        assert_eq!(arrival_times(&[Some(behind - 15_000), Some(behind), None], now), vec![now - 15_000, now, now]);
        assert_eq!(arrival_times(&[Some(5), Some(5 + 3 * 86_400_000)], now), vec![now - 86_400_000, now]);
        assert_eq!(arrival_times(&[], now), Vec::<i64>::new());
    }
}
