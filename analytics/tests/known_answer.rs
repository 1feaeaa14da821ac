//! Known answers (the scenario: `rill_analytics::testing`) on SQLite in memory and on a fresh
//! PostgreSQL database. The PostgreSQL runs belong to the end-to-end tier: `#[ignore]`d by a
//! plain `cargo test`, run by scripts/test.sh (`-- --include-ignored`) against the server named
//! by `RILL_TEST_POSTGRES_URL`; without it they are skipped, unless `RILL_REQUIRE_POSTGRES=1`.

use rill_analytics::store::Store;
use rill_analytics::testing;
use rill_vod::catalog::Catalog;
use sqlx::{Connection, Executor, PgConnection};

async fn sqlite() -> Store {
    let catalog = Catalog::connect("sqlite::memory:").await.unwrap();
    Store::open(catalog.pool().clone(), catalog.dialect()).await.unwrap()
}

/// A database of its own on the test PostgreSQL server, dropped by [`Scratch::drop_database`].
struct Scratch {
    admin: PgConnection,
    name: String,
}

impl Scratch {
    async fn create() -> Option<(Scratch, Store)> {
        let Ok(admin_url) = std::env::var("RILL_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("RILL_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "RILL_REQUIRE_POSTGRES=1 but RILL_TEST_POSTGRES_URL is unset"
            );
            eprintln!("skipped: RILL_TEST_POSTGRES_URL unset (scripts/test.sh sets it)");
            return None;
        };
        let name = format!("rill_analytics_{}_{}", std::process::id(), rill_vod::VideoId::generate());
        let mut admin = PgConnection::connect(&admin_url).await.expect("connect to RILL_TEST_POSTGRES_URL");
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        let base = admin_url.split('?').next().unwrap();
        let url = format!("{}/{name}", base.rsplit_once('/').map_or(base, |(server, _)| server));
        let catalog = Catalog::connect(&url).await.unwrap();
        let store = Store::open(catalog.pool().clone(), catalog.dialect()).await.unwrap();
        Some((Scratch { admin, name }, store))
    }

    async fn drop_database(mut self) {
        let sql = format!("DROP DATABASE {} WITH (FORCE)", self.name);
        self.admin.execute(sql.as_str()).await.unwrap();
    }
}

#[tokio::test]
async fn reports_match_hand_computed_answers() {
    testing::reports_match_hand_computed_answers(&sqlite().await).await;
}

#[tokio::test]
async fn retention_counts_the_buckets_each_view_watched() {
    testing::retention_counts_the_buckets_each_view_watched(&sqlite().await).await;
}

#[tokio::test]
async fn rollups_agree_with_the_sessions_across_days() {
    testing::rollups_agree_with_the_sessions_across_days(&sqlite().await).await;
}

#[tokio::test]
async fn long_timelines_read_the_concurrency_rollups() {
    testing::long_timelines_read_the_concurrency_rollups(&sqlite().await).await;
}

#[tokio::test]
#[ignore = "e2e tier: needs PostgreSQL (RILL_TEST_POSTGRES_URL)"]
async fn postgres_reports_match_hand_computed_answers() {
    let Some((scratch, store)) = Scratch::create().await else { return };
    let outcome = tokio::spawn(async move {
        testing::reports_match_hand_computed_answers(&store).await;
        testing::retention_counts_the_buckets_each_view_watched(&store).await;
        testing::rollups_agree_with_the_sessions_across_days(&store).await;
        testing::long_timelines_read_the_concurrency_rollups(&store).await;
    })
    .await;
    scratch.drop_database().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}
