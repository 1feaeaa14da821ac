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

/// Day rollups and the sessions at a period's edges agree with the sessions themselves: 40
/// sessions over 10 days, each written as a partial record, then its final one, then the
/// partial one again (a late retry or a second node), read back over periods with and without
/// whole days.
pub async fn rollups_agree_with_the_sessions_across_days(store: &Store) {
    use crate::rollup::DAY_MS;
    use crate::score::Outcome;
    use crate::session::SessionRecord;
    let base = T0 / DAY_MS * DAY_MS + 5 * DAY_MS;
    let session = |n: i64| {
        let started_at = base + (n / 4) * DAY_MS + (n % 4) * 6 * 3_600_000 + 1_000;
        SessionRecord {
            id: format!("r{n}"),
            video: Some("v3".into()),
            protocol: if n % 3 == 0 { Protocol::Dash } else { Protocol::Hls },
            started_at,
            last_seen: started_at + 60_000,
            ended_at: Some(started_at + 60_000),
            playing_ms: 10_000 + n as u64 * 1_000,
            rebuffer_ms: (n % 5) as u64 * 100,
            rebuffer_count: (n % 5 != 0) as u64,
            startup_ms: Some(200 + (n % 7) as u64 * 100),
            outcome: Outcome::Played,
            bitrate_kbps: Some(1_000 + n as u64),
            visitor: format!("visitor{n}"),
            country: Some(if n % 2 == 0 { "FR" } else { "JP" }.into()),
            device: "desktop".into(),
            browser: "Chrome".into(),
            os: "Linux".into(),
            rendition: Some("720p".into()),
            watched: (1u128 << (n % 100 + 1)) - 1,
            view_at: Some(started_at + 10_000),
            score: 50.0 + n as f64,
            ..SessionRecord::default()
        }
    };
    let finals: Vec<SessionRecord> = (0..40).map(session).collect();
    let partial = |s: &SessionRecord| SessionRecord {
        playing_ms: 3_000,
        watched: 1,
        view_at: None,
        ended_at: None,
        startup_ms: None,
        ..s.clone()
    };
    let partials: Vec<SessionRecord> = finals.iter().map(partial).collect();
    for sessions in [partials.clone(), finals.clone(), partials] {
        store.write(&Batch { sessions, ..Default::default() }).await.unwrap();
    }
    let periods = [
        Period { since: base - DAY_MS, until: base + 11 * DAY_MS },
        Period { since: base + DAY_MS / 2, until: base + 7 * DAY_MS + DAY_MS / 3 },
        Period { since: base + 2 * DAY_MS + 1, until: base + 2 * DAY_MS + 20 * 3_600_000 },
        Period { since: base + 3 * DAY_MS, until: base + 5 * DAY_MS },
    ];
    for period in periods {
        let inside: Vec<&SessionRecord> =
            finals.iter().filter(|s| s.started_at >= period.since && s.started_at < period.until).collect();
        let report = store.video_report("v3", period).await.unwrap();
        let watch_ms: u64 = inside.iter().map(|s| s.playing_ms).sum();
        assert_eq!(report.summary.sessions, inside.len() as u64, "{period:?}");
        assert_eq!(report.summary.watch_time_s, watch_ms as f64 / 1000.0, "{period:?}");
        assert_eq!(report.qoe.rebuffer_count, inside.iter().map(|s| s.rebuffer_count).sum::<u64>());
        let mut startups: Vec<u64> = inside.iter().filter_map(|s| s.startup_ms).collect();
        startups.sort_unstable();
        let p50 = startups.get(((startups.len().max(1) - 1) as f64 * 0.5).round() as usize).copied();
        assert_eq!(report.qoe.startup_ms_p50, p50, "{period:?}");
        let fr = inside.iter().filter(|s| s.country.as_deref() == Some("FR")).count() as u64;
        let countries: Vec<(&str, u64)> = report.countries.iter().map(|b| (b.key.as_str(), b.sessions)).collect();
        let mut expected = vec![("FR", fr), ("JP", inside.len() as u64 - fr)];
        expected.retain(|&(_, n)| n > 0);
        expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        assert_eq!(countries, expected, "{period:?}");
        let watched_first = inside.len();
        let watched_tenth = inside.iter().filter(|s| s.watched >> 10 & 1 == 1).count();
        if !inside.is_empty() {
            assert_eq!(report.retention[0].share, 1.0);
            let share = (watched_tenth as f64 / watched_first as f64 * 1000.0).round() / 1000.0;
            assert_eq!(report.retention[10].share, share, "{period:?}");
        }
        let score = inside.iter().map(|s| s.score).sum::<f64>() / inside.len().max(1) as f64;
        if !inside.is_empty() {
            assert_eq!(report.qoe.score, Some((score * 10.0).round() / 10.0));
        }
        let daily_watch: f64 = report.daily.iter().map(|d| d.watch_time_s).sum();
        assert_eq!(daily_watch, watch_ms as f64 / 1000.0);
        let overview = store.overview(period).await.unwrap();
        let top = overview.top_videos.iter().find(|t| t.id == "v3");
        let views = inside.iter().filter(|s| s.view_at.is_some_and(|at| at >= period.since && at < period.until));
        assert_eq!(top.map_or(0, |t| t.views), views.count() as u64, "{period:?}");
        if let Some(top) = top {
            assert_eq!(top.watch_time_s, watch_ms as f64 / 1000.0, "{period:?}");
        }
    }
    // A database from before the rollups: they are filled from the sessions and views when
    // the store opens.
    let before = store.video_report("v3", periods[1]).await.unwrap();
    let top_before = store.overview(periods[0]).await.unwrap().top_videos;
    sqlx::query("DELETE FROM analytics_rollups").execute(&store.pool).await.unwrap();
    let reopened = Store::open(store.pool.clone(), store.dialect).await.unwrap();
    assert_eq!(reopened.video_report("v3", periods[1]).await.unwrap(), before);
    assert_eq!(reopened.overview(periods[0]).await.unwrap().top_videos, top_before);
}

/// The concurrency timeline and peak over long periods (read from the minute and hour
/// rollups) match the samples of two nodes; a higher sample just before the period is not its
/// peak.
pub async fn long_timelines_read_the_concurrency_rollups(store: &Store) {
    use std::collections::BTreeMap;
    const HOUR: i64 = 3_600_000;
    let base = T0 / HOUR * HOUR + 100 * HOUR;
    let mut samples = Vec::new();
    // Every 10 s for 30 h: node 1 a slow wave, node 2 a sawtooth.
    for i in 0..(30 * 360) {
        let t = base + i * 10_000;
        let wave = (i % 720 - 360).unsigned_abs();
        samples.push(ConcurrencySample { stream: "wave".into(), t, node: "n1".into(), viewers: [wave, 0, 0, 0, 1, 0] });
        samples.push(ConcurrencySample {
            stream: "wave".into(),
            t,
            node: "n2".into(),
            viewers: [0, 0, 0, 0, (i % 7) as u64, 0],
        });
    }
    // A spike just before the third period starts.
    let spike_t = base + 20 * HOUR + 30_000;
    samples.push(ConcurrencySample {
        stream: "wave".into(),
        t: spike_t,
        node: "n3".into(),
        viewers: [0, 0, 0, 0, 5_000, 0],
    });
    for chunk in samples.chunks(500) {
        store.write(&Batch { concurrency: chunk.to_vec(), ..Default::default() }).await.unwrap();
    }
    let mut per_sample: BTreeMap<i64, u64> = BTreeMap::new();
    for s in &samples {
        *per_sample.entry(s.t).or_default() += s.viewers.iter().sum::<u64>();
    }
    let periods = [
        Period { since: base - 20 * 24 * HOUR, until: base + 10 * 24 * HOUR },
        Period { since: base + 3 * HOUR + 25_000, until: base + 27 * HOUR + 5_000 },
        Period { since: spike_t + 10_000, until: spike_t + 3 * HOUR },
    ];
    for period in periods {
        let report = store.stream_report("wave", period, [0; 6]).await.unwrap();
        let inside = per_sample.range(period.since..period.until);
        let peak = inside.clone().fold(None, |best: Option<(i64, u64)>, (&t, &v)| match best {
            Some((_, bv)) if bv >= v => best,
            _ => Some((t, v)),
        });
        assert_eq!(report.peak_at, peak.map(|p| p.0), "{period:?}");
        assert_eq!(report.peak_viewers, peak.map_or(0, |p| p.1), "{period:?}");
        let step = crate::report::timeline_step(period);
        // Points whose step lies wholly inside the period are the maxima of their samples.
        for point in report.timeline.iter().filter(|p| p.t >= period.since && p.t + step <= period.until) {
            let max = per_sample.range(point.t..point.t + step).map(|(_, &v)| v).max().unwrap_or(0);
            assert_eq!(point.viewers, max, "{period:?} at {}", point.t);
        }
        assert!(report.timeline.len() as i64 <= crate::report::TIMELINE_POINTS + 1);
    }
}
