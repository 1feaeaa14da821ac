//! The REST API under `/api/v1`: JSON in and out, errors as `{"error": "…"}`.
//!
//! - [`analytics`]: viewer analytics reports (admin token).
//! - [`streams`]: streams, keys, kicking publishers, transcoding and playback settings (admin token).
//! - [`tokens`]: minting access tokens (admin token).
//! - [`videos`]: the catalog (public videos readable without the token).
//! - [`captions`]: a video's caption files (listing as the video; changes with the admin token).
//! - [`sources`]: RTSP cameras (admin token).
//! - [`uploads`]: resumable uploads, tus 1.0 (admin token).
//! - [`views`]: the JSON shapes, as types.

pub mod analytics;
pub mod captions;
pub mod sources;
pub mod streams;
pub mod tokens;
pub mod uploads;
pub mod videos;
pub mod views;

use crate::http::auth::require_admin;
use crate::state::AppState;
use axum::middleware;
use axum::Router;
use std::sync::Arc;

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .merge(streams::router())
        .merge(analytics::router())
        .merge(tokens::router())
        .layer(middleware::from_fn_with_state(state, require_admin))
        .merge(videos::router())
        .merge(captions::router())
        .merge(sources::router())
        .merge(uploads::router())
}
