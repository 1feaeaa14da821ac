//! The catalog against both databases: every scenario runs on a fresh SQLite file (under the
//! temp directory) and on a fresh PostgreSQL database created on the server named by
//! `RILL_TEST_POSTGRES_URL` (scripts/test.sh starts one with scripts/postgres.sh) and dropped
//! afterwards. The PostgreSQL runs belong to the end-to-end tier: `#[ignore]`d by a plain
//! `cargo test`, run by scripts/test.sh (`-- --include-ignored`). Without that variable they are
//! skipped, unless `RILL_REQUIRE_POSTGRES=1`, which makes them fail.

use rill_vod::catalog::{
    Catalog, CatalogError, Dialect, NewVideo, SegmentRow, Video, VideoEnd, VideoPatch, VideoQuery, VideoSource,
    VideoStatus, Visibility, MAX_PAGE_SIZE, MAX_TAGS, MAX_TITLE_CHARS,
};
use rill_vod::VideoId;
use sqlx::{Connection, Executor};
use std::future::Future;

/// Runs each scenario once per database: `sqlite::<name>` and `postgres::<name>`.
macro_rules! on_both_databases {
    ($($scenario:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $scenario() {
                crate::on_sqlite(super::$scenario).await
            })+
        }
        mod postgres {
            $(#[tokio::test]
            #[ignore = "e2e tier: needs PostgreSQL (RILL_TEST_POSTGRES_URL)"]
            async fn $scenario() {
                crate::on_postgres(super::$scenario).await
            })+
        }
    };
}

on_both_databases!(
    recording_lifecycle,
    listing_filters_and_pages,
    search_ranks_prefixes_and_unicode,
    hostile_search_text_is_harmless,
    updates_are_validated,
    delete_cascades,
    migrations_are_idempotent_and_newer_schemas_refused,
    upgrade_from_version_1_fills_video_tags,
    losses_add_up_and_survive_an_upgrade,
);

/// `scenario` on a new SQLite file in a new directory (which the catalog must create).
async fn on_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = std::env::temp_dir().join(format!("rill-catalog-test-{}", VideoId::generate()));
    let url = format!("sqlite://{}", dir.join("nested").join("rill.db").display());
    let outcome = tokio::spawn(scenario(url)).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `scenario` on a new PostgreSQL database, dropped afterwards (also when the scenario fails).
async fn on_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(admin_url) = std::env::var("RILL_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("RILL_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "RILL_REQUIRE_POSTGRES=1 but RILL_TEST_POSTGRES_URL is unset"
        );
        eprintln!("skipped: RILL_TEST_POSTGRES_URL unset (scripts/test.sh sets it)");
        return;
    };
    // Lowercase letters and digits only: a safe identifier.
    let database = format!("rill_test_{}", VideoId::generate());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to RILL_TEST_POSTGRES_URL");
    admin.execute(format!("CREATE DATABASE {database}").as_str()).await.unwrap();
    let outcome = tokio::spawn(scenario(with_database(&admin_url, &database))).await;
    admin.execute(format!("DROP DATABASE {database} WITH (FORCE)").as_str()).await.unwrap();
    admin.close().await.unwrap();
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let authority = url.find("://").map_or(0, |at| at + 3);
    let path = url[authority..].find(['/', '?']).map_or(url.len(), |at| authority + at);
    let query = url[path..].find('?').map_or("", |at| &url[path + at..]);
    format!("{}/{database}{query}", &url[..path])
}

const T0: i64 = 1_700_000_000_000;

async fn add_video(
    catalog: &Catalog,
    title: &str,
    stream: &str,
    visibility: Visibility,
    created_at_ms: i64,
) -> VideoId {
    let id = VideoId::generate();
    catalog.create_video(&NewVideo { id, title, stream, visibility, created_at_ms }).await.unwrap();
    id
}

async fn finish(catalog: &Catalog, id: VideoId) {
    let end = VideoEnd { status: VideoStatus::Ready, error: None, ended_at_ms: T0 + 3_600_000 };
    catalog.finish_video(id, &end).await.unwrap();
}

async fn describe(catalog: &Catalog, id: VideoId, description: &str, tags: &[&str]) {
    let patch = VideoPatch {
        description: Some(description.to_owned()),
        tags: Some(tags.iter().map(|tag| tag.to_string()).collect()),
        ..VideoPatch::default()
    };
    catalog.update(id, &patch).await.unwrap().expect("the video exists");
}

fn segment(track: &str, sequence: i64, duration_ticks: i64, timescale: i64, size_bytes: i64) -> SegmentRow {
    SegmentRow {
        track: track.to_owned(),
        sequence,
        init_version: 1,
        discontinuity: sequence == 0,
        start_ticks: sequence * duration_ticks,
        duration_ticks,
        timescale,
        size_bytes,
        wall_clock_ms: T0 + sequence * 2000,
    }
}

fn ids(videos: &[Video]) -> Vec<&str> {
    videos.iter().map(|video| video.id.as_str()).collect()
}

async fn search(catalog: &Catalog, text: &str) -> Vec<Video> {
    let query = VideoQuery { q: Some(text.to_owned()), include_private: true, ..VideoQuery::default() };
    catalog.list(&query).await.unwrap().videos
}

async fn recording_lifecycle(url: String) {
    let catalog = Catalog::connect(&url).await.unwrap();
    let expected_dialect = if url.starts_with("sqlite") { Dialect::Sqlite } else { Dialect::Postgres };
    assert_eq!(catalog.dialect(), expected_dialect);
    let id = add_video(&catalog, "  Morning stream ", "studio", Visibility::Public, T0).await;
    let video = catalog.video(id).await.unwrap().unwrap();
    assert_eq!(video.title, "Morning stream");
    assert_eq!((video.status, video.stream.as_str(), video.created_at_ms), (VideoStatus::Recording, "studio", T0));
    assert_eq!((video.duration_ms, video.size_bytes, video.ended_at_ms), (0, 0, None));
    assert_eq!(catalog.videos_with_status(VideoStatus::Recording).await.unwrap(), [video]);

    for (track, version) in [("video", 2), ("audio", 1), ("video", 1), ("video", 1)] {
        catalog.add_init(id, track, version, &format!(r#"{{"codec":"{track}{version}"}}"#)).await.unwrap();
    }
    let inits = catalog.inits(id).await.unwrap();
    let keys: Vec<(&str, i64)> = inits.iter().map(|init| (init.track.as_str(), init.version)).collect();
    assert_eq!(keys, [("audio", 1), ("video", 1), ("video", 2)]);
    assert_eq!(inits[1].info, r#"{"codec":"video1"}"#);

    // Video at 90 kHz (two NTSC-rate segments that are not whole milliseconds each), then a
    // new timescale after a discontinuity; audio at 48 kHz does not count for the duration.
    let video_segments = [
        segment("video", 2, 180_000, 1_000, 500),
        segment("video", 0, 180_180, 90_000, 1_000),
        segment("video", 1, 179_820, 90_000, 2_000),
    ];
    for _ in 0..2 {
        for segment in &video_segments {
            catalog.add_segment(id, segment, true).await.unwrap();
        }
        catalog.add_segment(id, &segment("audio", 0, 96_256, 48_000, 30), false).await.unwrap();
    }
    let video = catalog.video(id).await.unwrap().unwrap();
    assert_eq!(video.duration_ms, 4_000 + 180_000, "2.002 s + 1.998 s + 180 s");
    assert_eq!(video.size_bytes, 3_530, "re-added segments are not counted twice");
    assert_eq!(catalog.total_size_bytes().await.unwrap(), 3_530);
    let stored = catalog.segments(id, "video").await.unwrap();
    assert_eq!(stored.iter().map(|segment| segment.sequence).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(stored[0], video_segments[1]);
    assert!(stored[0].discontinuity && !stored[1].discontinuity);
    assert_eq!(catalog.segments(id, "audio").await.unwrap().len(), 1);
    assert!(catalog.segments(id, "subtitles").await.unwrap().is_empty());

    catalog.set_thumbnail(id, "videos/abc/thumb.jpg").await.unwrap();
    assert!(catalog.ready_oldest_first(10).await.unwrap().is_empty());
    finish(&catalog, id).await;
    let failed = add_video(&catalog, "Broken", "studio", Visibility::Public, T0 - 1).await;
    let failure = VideoEnd { status: VideoStatus::Failed, error: Some("disk full".into()), ended_at_ms: T0 };
    catalog.finish_video(failed, &failure).await.unwrap();
    let older = add_video(&catalog, "Older", "studio", Visibility::Private, T0 - 10).await;
    catalog.add_segment(older, &segment("video", 0, 90_000, 90_000, 70), true).await.unwrap();
    finish(&catalog, older).await;

    let video = catalog.video(id).await.unwrap().unwrap();
    assert_eq!(video.status, VideoStatus::Ready);
    assert_eq!(video.ended_at_ms, Some(T0 + 3_600_000));
    assert_eq!(video.thumbnail.as_deref(), Some("videos/abc/thumb.jpg"));
    assert!(video.updated_at_ms > T0);
    let failed = catalog.video(failed).await.unwrap().unwrap();
    assert_eq!((failed.status, failed.error.as_deref()), (VideoStatus::Failed, Some("disk full")));
    assert_eq!(catalog.ready_oldest_first(10).await.unwrap(), [(older, T0 - 10, 70), (id, T0, 3_530)]);
    assert_eq!(catalog.ready_oldest_first(1).await.unwrap().len(), 1);
    assert_eq!(catalog.total_size_bytes().await.unwrap(), 3_600);
    assert!(catalog.videos_with_status(VideoStatus::Recording).await.unwrap().is_empty());
    assert_eq!(catalog.videos_with_status(VideoStatus::Failed).await.unwrap().len(), 1);
    let recording = VideoEnd { status: VideoStatus::Recording, error: None, ended_at_ms: T0 };
    assert!(matches!(catalog.finish_video(id, &recording).await, Err(CatalogError::Invalid(_))));
    assert!(matches!(
        catalog.add_segment(id, &segment("video", 9, 1, 0, 1), true).await,
        Err(CatalogError::Invalid(_))
    ));

    let ghost = VideoId::generate();
    assert!(catalog.video(ghost).await.unwrap().is_none());
    assert!(matches!(catalog.add_init(ghost, "video", 1, "{}").await, Err(CatalogError::NoSuchVideo(g)) if g == ghost));
    assert!(matches!(
        catalog.add_segment(ghost, &segment("video", 0, 1, 1, 1), true).await,
        Err(CatalogError::NoSuchVideo(_))
    ));
    assert!(matches!(catalog.finish_video(ghost, &failure).await, Err(CatalogError::NoSuchVideo(_))));
    assert!(matches!(catalog.set_thumbnail(ghost, "x").await, Err(CatalogError::NoSuchVideo(_))));
    let duplicate =
        NewVideo { id, title: "again", stream: "studio", visibility: Visibility::Public, created_at_ms: T0 };
    assert!(matches!(catalog.create_video(&duplicate).await, Err(CatalogError::VideoExists(_))));
    catalog.close().await;
}

async fn listing_filters_and_pages(url: String) {
    let catalog = Catalog::connect(&url).await.unwrap();
    let streams = ["alpha", "beta", "gamma"];
    let mut all = Vec::new();
    for i in 0..30_i64 {
        let visibility = match i % 10 {
            9 => Visibility::Private,
            8 => Visibility::Unlisted,
            _ => Visibility::Public,
        };
        let id = add_video(&catalog, &format!("Video {i}"), streams[i as usize % 3], visibility, T0 + i * 1000).await;
        if i % 4 != 0 {
            finish(&catalog, id).await;
        }
        let mut tags = vec![if i % 2 == 0 { "Even" } else { "odd" }];
        if i % 5 == 0 {
            tags.push("five_x");
        } else if i % 5 == 1 {
            tags.push("fiveax");
        }
        describe(&catalog, id, "", &tags).await;
        all.push((i, id, visibility));
    }
    let public: Vec<_> = all.iter().filter(|(_, _, visibility)| *visibility == Visibility::Public).collect();
    let expect = |keep: &dyn Fn(i64) -> bool| -> Vec<String> {
        public.iter().rev().filter(|(i, _, _)| keep(*i)).map(|(_, id, _)| id.to_string()).collect()
    };
    let list = |query: VideoQuery| {
        let catalog = catalog.clone();
        async move { catalog.list(&query).await.unwrap() }
    };

    // Newest first, public only, default page size 20, pages without gaps or repeats.
    let first = list(VideoQuery::default()).await;
    assert_eq!((first.total, first.limit, first.offset), (public.len() as i64, 20, 0));
    assert_eq!(ids(&first.videos), expect(&|_| true)[..20]);
    let second = list(VideoQuery { limit: Some(20), offset: Some(20), ..VideoQuery::default() }).await;
    assert_eq!(ids(&second.videos), expect(&|_| true)[20..]);
    let past_end = list(VideoQuery { offset: Some(1000), ..VideoQuery::default() }).await;
    assert!(past_end.videos.is_empty());
    assert_eq!(past_end.total, public.len() as i64);
    assert_eq!(list(VideoQuery { limit: Some(100_000), ..VideoQuery::default() }).await.limit, MAX_PAGE_SIZE);

    let owner = list(VideoQuery { include_private: true, limit: Some(100), ..VideoQuery::default() }).await;
    assert_eq!(owner.total, 30);
    assert_eq!(owner.videos[0].visibility, Visibility::Private, "video 29");
    assert_eq!(owner.videos[1].visibility, Visibility::Unlisted, "video 28");

    let by_stream = list(VideoQuery { stream: Some("beta".into()), ..VideoQuery::default() }).await;
    assert_eq!(ids(&by_stream.videos), expect(&|i| i % 3 == 1));
    let recording = list(VideoQuery { status: Some(VideoStatus::Recording), ..VideoQuery::default() }).await;
    assert_eq!(ids(&recording.videos), expect(&|i| i % 4 == 0));
    let even = list(VideoQuery { tag: Some("EVEN".into()), ..VideoQuery::default() }).await;
    assert_eq!(ids(&even.videos), expect(&|i| i % 2 == 0));
    let underscore = list(VideoQuery { tag: Some("five_x".into()), ..VideoQuery::default() }).await;
    assert_eq!(ids(&underscore.videos), expect(&|i| i % 5 == 0), "'_' is not a LIKE wildcard");
    let window = VideoQuery { since_ms: Some(T0 + 5_000), until_ms: Some(T0 + 12_000), ..VideoQuery::default() };
    assert_eq!(ids(&list(window).await.videos), expect(&|i| (5..12).contains(&i)));
    let combined = VideoQuery {
        stream: Some("alpha".into()),
        status: Some(VideoStatus::Ready),
        tag: Some("odd".into()),
        since_ms: Some(T0 + 2_000),
        limit: Some(2),
        ..VideoQuery::default()
    };
    let page = list(combined).await;
    let matching = expect(&|i| i % 3 == 0 && i % 4 != 0 && i % 2 == 1 && i >= 2);
    assert_eq!(page.total, matching.len() as i64);
    assert_eq!(ids(&page.videos), matching[..2]);
    let nothing = list(VideoQuery { stream: Some("nope".into()), ..VideoQuery::default() }).await;
    assert_eq!((nothing.total, nothing.videos.len()), (0, 0));
    let bad_tag = VideoQuery { tag: Some("no spaces".into()), ..VideoQuery::default() };
    assert!(matches!(catalog.list(&bad_tag).await, Err(CatalogError::Invalid(_))));
    catalog.close().await;
}

async fn search_ranks_prefixes_and_unicode(url: String) {
    let catalog = Catalog::connect(&url).await.unwrap();
    let in_title = add_video(&catalog, "Sunset over the harbour", "a", Visibility::Public, T0).await;
    let in_description = add_video(&catalog, "Evening walk", "a", Visibility::Public, T0 + 10).await;
    describe(&catalog, in_description, "We walked until the sunset and then went home for dinner.", &[]).await;
    let in_tags = add_video(&catalog, "Harbour cranes", "a", Visibility::Public, T0 + 20).await;
    describe(&catalog, in_tags, "Cranes loading ships.", &["sunset", "harbour"]).await;
    let unrelated = add_video(&catalog, "Cooking pasta", "b", Visibility::Public, T0 + 30).await;
    let unicode = add_video(&catalog, "Straße in München, Москва и 東京", "b", Visibility::Public, T0 + 40).await;
    let private = add_video(&catalog, "Private sunset diary", "b", Visibility::Private, T0 + 50).await;

    // Best match first: title, then tags, then description; all three contain "sunset".
    assert_eq!(
        ids(&search(&catalog, "sunset").await),
        [private, in_title, in_tags, in_description].map(|id| id.to_string())
    );
    let public_only = VideoQuery { q: Some("sunset".into()), ..VideoQuery::default() };
    let page = catalog.list(&public_only).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(ids(&page.videos), [in_title, in_tags, in_description].map(|id| id.to_string()));
    // Every word must match, each as a prefix; case does not matter.
    assert_eq!(ids(&search(&catalog, "SUNS harb").await), [in_title, in_tags].map(|id| id.to_string()));
    assert_eq!(ids(&search(&catalog, "sunset pasta").await), Vec::<&str>::new());
    assert_eq!(ids(&search(&catalog, "pas").await), [unrelated.to_string()]);
    assert_eq!(ids(&search(&catalog, "walked dinner").await), [in_description.to_string()]);
    for text in ["münchen", "MÜNCHEN", "straße", "москва", "МОСК", "東京"] {
        assert_eq!(ids(&search(&catalog, text).await), [unicode.to_string()], "{text}");
    }
    // Search combines with the filters.
    let mut pages = Vec::new();
    for offset in 0..3 {
        let query = VideoQuery {
            q: Some("harbour".into()),
            stream: Some("a".into()),
            limit: Some(1),
            offset: Some(offset),
            ..VideoQuery::default()
        };
        let page = catalog.list(&query).await.unwrap();
        assert_eq!(page.total, 2);
        pages.extend(page.videos.into_iter().map(|video| video.id));
    }
    pages.sort();
    let mut expected = [in_title.to_string(), in_tags.to_string()];
    expected.sort();
    assert_eq!(pages, expected);
    // Text without words is no search at all.
    assert_eq!(search(&catalog, " --- ").await.len(), 6);
    // Edits are searchable at once, and the old words are gone.
    catalog
        .update(unrelated, &VideoPatch { title: Some("Baking bread".into()), ..VideoPatch::default() })
        .await
        .unwrap();
    assert!(search(&catalog, "pasta").await.is_empty());
    assert_eq!(ids(&search(&catalog, "bread").await), [unrelated.to_string()]);
    catalog.close().await;
}

async fn hostile_search_text_is_harmless(url: String) {
    let catalog = Catalog::connect(&url).await.unwrap();
    let drop = add_video(&catalog, "How to drop tables of videos", "a", Visibility::Public, T0).await;
    add_video(&catalog, "Another video", "a", Visibility::Public, T0 + 1).await;
    let long_text = "sunset\"*(NEAR) ".repeat(5000);
    let long_word = "x".repeat(100_000);
    let hostile = [
        "'; DROP TABLE videos; --",
        "\"",
        "\"\"",
        "*",
        "NEAR(",
        "NEAR(drop table, 2)",
        ") OR (",
        "title:drop",
        "drop AND NOT table",
        "\\",
        "'",
        "%",
        "_",
        "^drop",
        "drop | table & !x <-> y:*",
        "\0",
        long_text.as_str(),
        long_word.as_str(),
    ];
    for text in hostile {
        let query = VideoQuery { q: Some(text.to_owned()), include_private: true, ..VideoQuery::default() };
        if let Err(error) = catalog.list(&query).await {
            panic!("{:?} failed: {error}", &text[..text.len().min(40)]);
        }
    }
    assert_eq!(ids(&search(&catalog, "'; DROP TABLE videos; --").await), [drop.to_string()]);
    assert_eq!(catalog.list(&VideoQuery::default()).await.unwrap().total, 2);
    assert_eq!(ids(&search(&catalog, "drop").await), [drop.to_string()]);
    catalog.close().await;
}

async fn updates_are_validated(url: String) {
    let catalog = Catalog::connect(&url).await.unwrap();
    let id = add_video(&catalog, "Original", "a", Visibility::Public, T0).await;
    let before = catalog.video(id).await.unwrap().unwrap();
    let too_many_tags: Vec<String> = (0..=MAX_TAGS).map(|i| format!("tag{i}")).collect();
    let invalid = [
        VideoPatch { title: Some("x".repeat(MAX_TITLE_CHARS + 1)), ..VideoPatch::default() },
        VideoPatch { title: Some("   ".into()), ..VideoPatch::default() },
        VideoPatch { description: Some("d".repeat(5001)), ..VideoPatch::default() },
        VideoPatch { tags: Some(too_many_tags), ..VideoPatch::default() },
        VideoPatch { tags: Some(vec!["fine".into(), "not fine".into()]), ..VideoPatch::default() },
        VideoPatch { tags: Some(vec!["semi;colon".into()]), ..VideoPatch::default() },
        VideoPatch { tags: Some(vec!["".into()]), ..VideoPatch::default() },
        VideoPatch { tags: Some(vec!["t".repeat(41)]), ..VideoPatch::default() },
        // A valid title does not save an invalid tag list.
        VideoPatch { title: Some("Fine".into()), tags: Some(vec!["bad tag".into()]), ..VideoPatch::default() },
    ];
    for patch in &invalid {
        match catalog.update(id, patch).await {
            Err(CatalogError::Invalid(message)) => assert!(!message.is_empty()),
            other => panic!("{patch:?} gave {other:?}"),
        }
    }
    assert_eq!(catalog.video(id).await.unwrap().unwrap(), before);

    let patch = VideoPatch {
        title: Some(" Renamed ".into()),
        description: Some("Now with a description.".into()),
        tags: Some(vec!["Live".into(), "music".into(), "LIVE".into(), "été_2024".into(), "drum-and-bass".into()]),
        visibility: Some(Visibility::Unlisted),
        thumbnail_time: None,
    };
    let after = catalog.update(id, &patch).await.unwrap().unwrap();
    assert_eq!(after.title, "Renamed");
    assert_eq!(after.description, "Now with a description.");
    assert_eq!(after.tags, ["live", "music", "été_2024", "drum-and-bass"]);
    assert_eq!(after.visibility, Visibility::Unlisted);
    assert!(after.updated_at_ms >= before.updated_at_ms);
    assert_eq!(catalog.update(id, &VideoPatch::default()).await.unwrap().unwrap(), after);
    let tagged = |tag: &str| VideoQuery { tag: Some(tag.into()), include_private: true, ..VideoQuery::default() };
    assert_eq!(ids(&catalog.list(&tagged("Été_2024")).await.unwrap().videos), [id.to_string()]);
    let cleared = catalog.update(id, &VideoPatch { tags: Some(vec![]), ..VideoPatch::default() }).await.unwrap();
    assert!(cleared.unwrap().tags.is_empty());
    assert_eq!(catalog.list(&tagged("été_2024")).await.unwrap().total, 0);
    let rename = VideoPatch { title: Some("Ghost".into()), ..VideoPatch::default() };
    assert!(catalog.update(VideoId::generate(), &rename).await.unwrap().is_none());
    assert!(catalog.update(VideoId::generate(), &VideoPatch::default()).await.unwrap().is_none());
    catalog.close().await;
}

async fn delete_cascades(url: String) {
    let catalog = Catalog::connect(&url).await.unwrap();
    let doomed = add_video(&catalog, "Doomed recording", "a", Visibility::Public, T0).await;
    let kept = add_video(&catalog, "Kept recording", "a", Visibility::Public, T0 + 1).await;
    for id in [doomed, kept] {
        catalog.add_init(id, "video", 1, "{}").await.unwrap();
        for sequence in 0..3 {
            catalog.add_segment(id, &segment("video", sequence, 90_000, 90_000, 10), true).await.unwrap();
        }
    }
    describe(&catalog, doomed, "", &["gone"]).await;
    assert_eq!(search(&catalog, "recording").await.len(), 2);
    assert!(catalog.delete(doomed).await.unwrap());
    assert!(!catalog.delete(doomed).await.unwrap());
    assert!(catalog.video(doomed).await.unwrap().is_none());
    assert!(catalog.inits(doomed).await.unwrap().is_empty());
    assert!(catalog.segments(doomed, "video").await.unwrap().is_empty());
    assert_eq!(ids(&search(&catalog, "recording").await), [kept.to_string()]);
    assert!(search(&catalog, "doomed").await.is_empty());
    let tagged = VideoQuery { tag: Some("gone".into()), ..VideoQuery::default() };
    assert_eq!(catalog.list(&tagged).await.unwrap().total, 0);
    assert_eq!(catalog.segments(kept, "video").await.unwrap().len(), 3);
    assert_eq!(catalog.inits(kept).await.unwrap().len(), 1);
    assert_eq!(catalog.total_size_bytes().await.unwrap(), 30);
    // The id can be used again, with a clean slate.
    catalog
        .create_video(&NewVideo {
            id: doomed,
            title: "Reborn",
            stream: "a",
            visibility: Visibility::Public,
            created_at_ms: T0,
        })
        .await
        .unwrap();
    assert!(catalog.segments(doomed, "video").await.unwrap().is_empty());
    assert_eq!(ids(&search(&catalog, "reborn").await), [doomed.to_string()]);
    assert_eq!(catalog.list(&tagged).await.unwrap().total, 0);
    catalog.close().await;
}

async fn migrations_are_idempotent_and_newer_schemas_refused(url: String) {
    let catalog = Catalog::connect(&url).await.unwrap();
    let id = add_video(&catalog, "Survivor", "a", Visibility::Public, T0).await;
    catalog.close().await;
    let again = Catalog::connect(&url).await.unwrap();
    assert_eq!(again.video(id).await.unwrap().unwrap().title, "Survivor");
    assert_eq!(ids(&search(&again, "surv").await), [id.to_string()]);
    again.close().await;

    let raw = raw_pool(&url).await;
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version").fetch_all(&raw).await.unwrap();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    if url.starts_with("sqlite") {
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&raw).await.unwrap();
        assert_eq!(journal, "wal");
    }
    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (1000, 0)").execute(&raw).await.unwrap();
    raw.close().await;
    match Catalog::connect(&url).await {
        Err(error @ CatalogError::SchemaTooNew { found: 1000, known: 5 }) => {
            assert!(error.to_string().contains("newer Rill"), "{error}")
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

/// A database at schema version 1 (tags only in `videos.tags`) gets `video_tags` filled.
async fn upgrade_from_version_1_fills_video_tags(url: String) {
    let catalog = Catalog::connect(&url).await.unwrap();
    let tagged = add_video(&catalog, "Tagged", "a", Visibility::Public, T0).await;
    describe(&catalog, tagged, "", &["live", "drum-and-bass", "Été_2024"]).await;
    let other = add_video(&catalog, "Also live", "a", Visibility::Public, T0 + 1).await;
    describe(&catalog, other, "", &["live"]).await;
    add_video(&catalog, "Untagged", "a", Visibility::Public, T0 + 2).await;
    catalog.close().await;

    // Back to what version 1 created.
    let raw = raw_pool(&url).await;
    for statement in [
        "DROP TABLE video_tags",
        "DROP INDEX videos_by_visibility",
        "DROP INDEX videos_by_stream",
        "CREATE INDEX videos_by_stream ON videos (stream, created_at)",
        "DROP TABLE video_captions",
        "DROP TABLE uploads",
        "ALTER TABLE videos DROP COLUMN source",
        "ALTER TABLE videos DROP COLUMN frames_lost",
        "ALTER TABLE videos DROP COLUMN lost_ms",
        "DELETE FROM schema_migrations WHERE version >= 2",
    ] {
        sqlx::query(statement).execute(&raw).await.unwrap();
    }
    raw.close().await;

    let catalog = Catalog::connect(&url).await.unwrap();
    let by_tag = |tag: &str| VideoQuery { tag: Some(tag.into()), ..VideoQuery::default() };
    assert_eq!(ids(&catalog.list(&by_tag("live")).await.unwrap().videos), [other.to_string(), tagged.to_string()]);
    for tag in ["drum-and-bass", "été_2024"] {
        assert_eq!(ids(&catalog.list(&by_tag(tag)).await.unwrap().videos), [tagged.to_string()], "{tag}");
    }
    let stream = VideoQuery { stream: Some("a".into()), ..VideoQuery::default() };
    assert_eq!(catalog.list(&stream).await.unwrap().total, 3);
    catalog.close().await;
}

/// A recording's losses add up; a database from before version 3 gets zero losses (and, from
/// before version 4, recorded videos).
async fn losses_add_up_and_survive_an_upgrade(url: String) {
    let catalog = Catalog::connect(&url).await.unwrap();
    let id = add_video(&catalog, "Gappy", "a", Visibility::Public, T0).await;
    catalog.add_gap(id, 30, 1000).await.unwrap();
    catalog.add_gap(id, 15, 500).await.unwrap();
    let video = catalog.video(id).await.unwrap().unwrap();
    assert_eq!((video.frames_lost, video.lost_ms), (45, 1500));
    let missing = VideoId::generate();
    assert!(matches!(catalog.add_gap(missing, 1, 1).await, Err(CatalogError::NoSuchVideo(m)) if m == missing));
    catalog.close().await;

    let raw = raw_pool(&url).await;
    for statement in [
        "DROP TABLE video_captions",
        "DROP TABLE uploads",
        "ALTER TABLE videos DROP COLUMN source",
        "ALTER TABLE videos DROP COLUMN frames_lost",
        "ALTER TABLE videos DROP COLUMN lost_ms",
        "DELETE FROM schema_migrations WHERE version >= 3",
    ] {
        sqlx::query(statement).execute(&raw).await.unwrap();
    }
    raw.close().await;
    let catalog = Catalog::connect(&url).await.unwrap();
    let video = catalog.video(id).await.unwrap().unwrap();
    assert_eq!((video.title.as_str(), video.frames_lost, video.lost_ms), ("Gappy", 0, 0));
    assert_eq!(video.source, VideoSource::Recording, "videos from before version 4 were recorded");
    catalog.close().await;
}

/// A plain `sqlx` pool on a test database, for what the catalog does not offer.
async fn raw_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap()
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(with_database("postgres://u@127.0.0.1:5/postgres", "t"), "postgres://u@127.0.0.1:5/t");
    assert_eq!(with_database("postgres://u@h/db?sslmode=disable", "t"), "postgres://u@h/t?sslmode=disable");
    assert_eq!(with_database("postgresql://h:5", "t"), "postgresql://h:5/t");
    assert_eq!(with_database("postgres://h?x=1", "t"), "postgres://h/t?x=1");
}
