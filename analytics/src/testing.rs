//! Known answers (feature `testing`): a synthetic set of sessions whose views, uniques, watch
//! time, rebuffer ratio, retention and peak are computed by hand, written through a [`Store`]
//! and read back through the reports. `tests/known_answer.rs` runs them on SQLite in memory,
//! the binary's `tests/analytics.rs` on PostgreSQL: the same SQL must give the same answers.

use crate::report::{Period, SessionFilter};
use crate::session::{Content, PlayState, Protocol, Report, Tracker, TrackerConfig, Viewer};
use crate::store::{Batch, ConcurrencySample, Store};

const T0: i64 = 1_796_000_000_000;

fn viewer(visitor: &str, country: &str) -> Viewer {
    Viewer {
        visitor: visitor.into(),
        country: Some(country.into()),
        device: "desktop".into(),
        browser: "Chrome".into(),
        os: "Linux".into(),
        referrer: None,
    }
}

fn play(t: &mut Tracker, id: &str, visitor: &str, country: &str, start: i64, segments: &[(i64, PlayState)]) {
    let open = || (Protocol::Dash, Content::video("v1", 100_000), viewer(visitor, country));
    for &(at, state) in segments {
        let report = Report { at_ms: start + at, state: Some(state), playhead_ms: None, ..Default::default() };
        t.observe(id, open, &report, true).unwrap();
    }
}

/// The reports of a hand-computed scenario (panics on a wrong answer).
pub async fn reports_match_hand_computed_answers(store: &Store) {
    let mut t = Tracker::new(TrackerConfig::default());
    use PlayState::*;
    // A: 30 s (a view), then a reload 60 s later, 20 s (the same viewer within the hour: no new view).
    play(&mut t, "a1", "A", "FR", T0, &[(0, Starting), (1_000, Playing), (31_000, Ended)]);
    play(&mut t, "a2", "A", "FR", T0 + 60_000, &[(0, Starting), (500, Playing), (20_500, Ended)]);
    // B: 5 s: no view.
    play(&mut t, "b1", "B", "US", T0 + 1_000, &[(0, Starting), (2_000, Playing), (7_000, Quit)]);
    // C: one 2 s stall in 18 s of playing: a view.
    play(
        &mut t,
        "c1",
        "C",
        "US",
        T0 + 2_000,
        &[(0, Starting), (1_000, Playing), (9_000, Rebuffering), (11_000, Playing), (21_000, Ended)],
    );
    let sessions = t.expire(T0 + 200_000);
    assert_eq!(sessions.len(), 4);
    let concurrency = vec![
        ConcurrencySample { stream: "cam".into(), t: T0, node: "n1".into(), viewers: [1, 0, 0, 0, 2, 0] },
        ConcurrencySample { stream: "cam".into(), t: T0 + 10_000, node: "n1".into(), viewers: [1, 1, 0, 0, 1, 0] },
        ConcurrencySample { stream: "cam".into(), t: T0 + 10_000, node: "n2".into(), viewers: [0, 0, 0, 1, 1, 0] },
        ConcurrencySample { stream: "cam".into(), t: T0 + 20_000, node: "n1".into(), viewers: [1, 0, 0, 0, 0, 0] },
    ];
    let batch = Batch { events: vec![], sessions: sessions.clone(), concurrency };
    store.write(&batch).await.unwrap();
    // Written twice (a retry, or a second node): nothing counts twice.
    store.write(&batch).await.unwrap();

    let period = Period { since: T0 - 1, until: T0 + 86_400_000 };
    let video = store.video_report("v1", period).await.unwrap();
    assert_eq!(video.summary.views, 2);
    assert_eq!(video.summary.unique_viewers, 2);
    assert_eq!(video.summary.sessions, 4);
    assert_eq!(video.summary.watch_time_s, 30.0 + 20.0 + 5.0 + 18.0);
    assert_eq!(video.summary.average_view_duration_s, 73.0 / 2.0);
    assert_eq!(video.qoe.rebuffer_count, 1);
    assert!((video.qoe.rebuffer_ratio - 2.0 / 75.0).abs() < 1e-9);
    assert_eq!(video.qoe.startup_ms_p50, Some(1_000));
    assert_eq!(video.qoe.exits_before_start, 0);
    let countries: Vec<_> = video.countries.iter().map(|c| (c.key.as_str(), c.sessions, c.watch_time_s)).collect();
    assert_eq!(countries, vec![("FR", 2, 50.0), ("US", 2, 23.0)]);
    assert_eq!(video.daily.len(), 1);
    assert_eq!(video.daily[0].views, 2);
    assert_eq!(video.retention.len(), 100);

    // An hour at most 720 points: every 10 s sample is its own point.
    let hour = Period { since: T0 - 1, until: T0 + 3_600_000 };
    let stream = store.stream_report("cam", hour, [0, 1, 0, 0, 0, 0]).await.unwrap();
    assert_eq!(stream.peak_viewers, 5);
    assert_eq!(stream.peak_at, Some(T0 + 10_000));
    assert_eq!(stream.timeline.iter().map(|p| p.viewers).collect::<Vec<_>>(), vec![3, 5, 1]);
    assert_eq!(stream.viewers_now.rtmp, 1);
    assert_eq!(stream.viewers_now.total, 1);

    let overview = store.overview(period).await.unwrap();
    assert_eq!(overview.totals.views, 2);
    assert_eq!(overview.top_videos[0].id, "v1");
    assert_eq!(overview.score_distribution.iter().map(|b| b.sessions).sum::<u64>(), 4);

    let page = store.sessions(&SessionFilter { limit: 3, ..Default::default() }).await.unwrap();
    assert_eq!(page.sessions.len(), 3);
    assert_eq!(page.sessions[0].id, "a2");
    let (at, id) = page.next.as_deref().unwrap().split_once(':').unwrap();
    let rest = store
        .sessions(&SessionFilter { limit: 3, before: Some((at.parse().unwrap(), id.into())), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rest.sessions.len(), 1);
    assert!(rest.next.is_none());
    assert_eq!(rest.sessions[0], sessions.iter().find(|s| s.id == rest.sessions[0].id).unwrap().clone());
}

/// Retention: two views of one video, one to the end, one to the middle.
pub async fn retention_counts_the_buckets_each_view_watched(store: &Store) {
    let mut t = Tracker::new(TrackerConfig::default());
    for (id, until) in [("x", 100_000u64), ("y", 50_000)] {
        let open = || (Protocol::Hls, Content::video("v2", 100_000), viewer(id, "DE"));
        let mut at = 0;
        while at <= until {
            let state = if at == until { PlayState::Ended } else { PlayState::Playing };
            let r = Report { at_ms: T0 + at as i64, state: Some(state), playhead_ms: Some(at), ..Default::default() };
            t.observe(id, open, &r, true).unwrap();
            at += 10_000;
        }
    }
    let batch = Batch { sessions: t.expire(T0 + 200_000), ..Default::default() };
    store.write(&batch).await.unwrap();
    let report = store.video_report("v2", Period { since: T0 - 1, until: T0 + 300_000 }).await.unwrap();
    assert_eq!(report.summary.views, 2);
    assert_eq!(report.retention[0].share, 1.0);
    assert_eq!(report.retention[50].share, 1.0);
    assert_eq!(report.retention[51].share, 0.5);
    assert_eq!(report.retention[99].share, 0.5);
}
