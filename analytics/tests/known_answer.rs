//! Known answers on SQLite in memory (the scenario: `rill_analytics::testing`; `tests/analytics.rs`
//! of the binary runs the same on PostgreSQL).

use rill_analytics::store::Store;
use rill_analytics::testing;
use rill_vod::catalog::Catalog;

async fn store() -> Store {
    let catalog = Catalog::connect("sqlite::memory:").await.unwrap();
    Store::open(catalog.pool().clone(), catalog.dialect()).await.unwrap()
}

#[tokio::test]
async fn reports_match_hand_computed_answers() {
    testing::reports_match_hand_computed_answers(&store().await).await;
}

#[tokio::test]
async fn retention_counts_the_buckets_each_view_watched() {
    testing::retention_counts_the_buckets_each_view_watched(&store().await).await;
}
