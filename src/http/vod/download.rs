//! `GET /vod/<id>/download[?rendition=<track>]`: the video as a progressive MP4 (`moov`
//! first), built from its stored CMAF without re-encoding ([`rill_vod::download`]) and
//! streamed from storage piece by piece (≤ 1 MiB at a time): `Range` (one range, 206/416),
//! `Content-Disposition: attachment`, the video's visibility obeyed as for its playlists.

use super::{lookup, parse_range, RangeRequest};
use crate::http::response::{error, set_header};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use rill_media::cmaf::progressive::Part;
use rill_vod::catalog::Visibility;
use rill_vod::download::{download as layout, Download, DownloadError};
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Largest read from storage per body chunk.
const CHUNK: u64 = 1024 * 1024;

/// The query (other parameters, e.g. `token` or `CMCD`, are for other layers).
#[derive(Deserialize)]
pub(super) struct DownloadQuery {
    rendition: Option<String>,
}

pub(super) async fn download(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    let index = match lookup(&app, &id).await {
        Ok(index) => index,
        Err(response) => return response,
    };
    let made = match layout(&app.library, &index, query.rendition.as_deref()).await {
        Ok(made) => made,
        Err(e @ DownloadError::NoRendition(..)) => return error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ (DownloadError::Recording(_) | DownloadError::SeveralVersions(_))) => {
            return error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e) => {
            tracing::error!(video = %id, error = %e, "laying out a download failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, format!("the download cannot be made: {e}"));
        }
    };
    let size = made.progressive.len;
    let (status, range) = match headers.get(header::RANGE).map(|v| parse_range(v.to_str().unwrap_or(""), size)) {
        None | Some(RangeRequest::Ignored) => (StatusCode::OK, 0..size),
        Some(RangeRequest::Unsatisfiable) => {
            let mut response = error(StatusCode::RANGE_NOT_SATISFIABLE, format!("the file has {size} bytes"));
            set_header(&mut response, header::CONTENT_RANGE, &format!("bytes */{size}"));
            return response;
        }
        Some(RangeRequest::Bytes(range)) => (StatusCode::PARTIAL_CONTENT, range),
    };
    let parts = made.progressive.pieces_in(range.clone());
    let body = Body::from_stream(futures_util::stream::unfold(
        (parts.into_iter(), None::<(String, std::ops::Range<u64>)>, made.clone(), app.clone()),
        |(mut parts, mut current, made, app)| async move {
            loop {
                if let Some((key, range)) = current.take() {
                    if range.start < range.end {
                        let end = (range.start + CHUNK).min(range.end);
                        let read = app.library.read(key.clone(), range.start..end).await;
                        if let Ok(bytes) = &read {
                            app.http_stats.vod_bytes_out.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        } else if let Err(e) = &read {
                            tracing::error!(key, error = %e, "reading a download's piece failed");
                        }
                        return Some((read, (parts, Some((key, end..range.end)), made, app)));
                    }
                }
                match parts.next()? {
                    Part::Header(r) => {
                        let bytes: Bytes = made.progressive.header.slice(r);
                        return Some((Ok(bytes), (parts, None, made, app)));
                    }
                    Part::Source(piece) => current = Some((made.keys[piece.source].clone(), piece.range)),
                }
            }
        },
    ));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let cache =
        if index.video.visibility == Visibility::Private { "private, max-age=60" } else { "public, max-age=60" };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    set_header(&mut response, header::CONTENT_LENGTH, &(range.end - range.start).to_string());
    set_header(&mut response, header::CONTENT_DISPOSITION, &disposition(&index.video.title, &index.video.id, &made));
    let etag = format!("\"{}-{}-{}\"", index.video.id, made.rendition, index.video.updated_at_ms);
    set_header(&mut response, header::ETAG, &etag);
    if status == StatusCode::PARTIAL_CONTENT {
        set_header(&mut response, header::CONTENT_RANGE, &format!("bytes {}-{}/{size}", range.start, range.end - 1));
    }
    response
}

/// `attachment; filename="<title>-<rendition>.mp4"` with only safe characters (the title in
/// UTF-8 as `filename*`).
fn disposition(title: &str, id: &str, made: &Download) -> String {
    let ascii: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ') { c } else { '_' })
        .take(80)
        .collect();
    let ascii = ascii.trim();
    let stem = if ascii.is_empty() { id } else { ascii };
    let encoded: String = format!("{title}-{}.mp4", made.rendition)
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{stem}-{}.mp4\"; filename*=UTF-8''{encoded}", made.rendition)
}
