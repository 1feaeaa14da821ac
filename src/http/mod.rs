//! The HTTP port: one axum router over every HTTP surface, one module per concern. Imports
//! run one way: each surface uses [`response`] and [`auth`] and the shared
//! [`crate::state::AppState`]; none imports another surface, and nothing here is imported by
//! the subsystems.
//!
//! - [`live`]: LL-HLS and DASH of live streams, `/time`, live thumbnails.
//! - [`flv`]: HTTP-FLV, live streams as endless FLV files.
//! - [`vod`]: HLS/DASH of the catalog's videos.
//! - [`webrtc`]: WHIP/WHEP signalling.
//! - [`player`]: the viewer pages and their assets.
//! - [`api`]: the REST API under `/api/v1`.
//! - [`collector`]: `POST /analytics/cmcd`, players' CMCD event reports.
//! - [`metrics`]: `/metrics` (Prometheus).
//!
//! [`audience`] is a layer over the LL-HLS, DASH and VOD routes that counts their viewers;
//! [`media_access`] a layer over all of them that asks the access decision. Both carry their
//! per-viewer parameter into playlists and MPDs with [`carry`].
//! - [`listener`]: the listener with write timeouts.

pub mod api;
pub mod audience;
pub mod auth;
pub mod carry;
pub mod collector;
pub mod flv;
pub mod listener;
pub mod live;
pub mod media_access;
pub mod metrics;
pub mod player;
pub mod response;
pub mod vod;
pub mod webrtc;

use crate::state::AppState;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

pub use listener::{PeerAddr, TimeoutListener};

/// Every route of the HTTP port.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::handler))
        .route("/live/{file}", get(flv::live_file))
        .merge(
            live::routes()
                .merge(vod::routes())
                .layer(axum::middleware::from_fn_with_state(state.clone(), audience::observe_media))
                // Outermost: a refused request is not counted as a viewer.
                .layer(axum::middleware::from_fn_with_state(state.clone(), media_access::guard_media)),
        )
        .merge(collector::routes())
        .merge(player::router())
        .merge(webrtc::routes())
        .nest("/api/v1", api::router(state.clone()))
        .with_state(state)
}
