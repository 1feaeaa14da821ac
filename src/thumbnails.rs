//! Live thumbnails: every `[thumbnails] interval_s`, the newest complete video segment of each
//! live stream is decoded to a JPEG (by the thumbnailer: a `rill thumbnail` child process, so a
//! decoder crash on hostile media cannot take the server down) and kept in memory for
//! `GET /live/<name>/thumbnail.jpg`. One picture is made at a time, so thumbnails never cost
//! more than a fraction of one core however many streams are live.

use crate::live_http::{error, respond};
use crate::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use rill_media::cmaf::{fmp4, TrackKind};
use rill_relay::packager::Packagers;
use rill_vod::recorder::Thumbnailer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The newest picture of each live stream.
#[derive(Default)]
pub struct LiveThumbnails {
    pictures: DashMap<String, Picture>,
    pub made: AtomicU64,
    pub failed: AtomicU64,
}

struct Picture {
    jpeg: Bytes,
    taken: SystemTime,
    /// Which segment it shows (`epoch`, `msn`): an unchanged stream is not decoded again.
    segment: (u64, u64),
}

impl LiveThumbnails {
    /// Snapshots every live stream of `packagers` each `interval`.
    pub fn spawn(packagers: Arc<Packagers>, thumbnailer: Thumbnailer, interval: Duration) -> Arc<LiveThumbnails> {
        let thumbnails = Arc::new(LiveThumbnails::default());
        let this = thumbnails.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.snapshot_all(&packagers, &thumbnailer).await;
            }
        });
        thumbnails
    }

    async fn snapshot_all(&self, packagers: &Packagers, thumbnailer: &Thumbnailer) {
        let live = packagers.live_names();
        self.pictures.retain(|name, _| live.contains(name));
        for name in live {
            let Some(stream) = packagers.get(&name) else { continue };
            let shown = self.pictures.get(&name).map(|p| p.segment);
            let Some((segment, media)) = newest_segment(&stream.state(), shown) else { continue };
            let thumbnailer = thumbnailer.clone();
            let made = tokio::task::spawn_blocking(move || thumbnailer(media)).await;
            match made {
                Ok(Ok(jpeg)) => {
                    self.made.fetch_add(1, Ordering::Relaxed);
                    self.pictures.insert(name, Picture { jpeg, taken: SystemTime::now(), segment });
                }
                Ok(Err(e)) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(stream = %name, error = %e, "no live thumbnail");
                }
                Err(e) => tracing::warn!(stream = %name, error = %e, "thumbnail task failed"),
            }
        }
    }
}

/// The newest complete video segment of a stream as one fMP4 (init + segment), with its
/// `(epoch, msn)`; `None` when it is still `shown` (nothing is copied then).
fn newest_segment(st: &rill_relay::packager::LiveState, shown: Option<(u64, u64)>) -> Option<((u64, u64), Bytes)> {
    let track = st.track(TrackKind::Video)?;
    let segment = track.segments.iter().rev().find(|s| s.complete)?;
    if shown == Some((st.epoch, segment.msn)) {
        return None;
    }
    let init = track.init(segment.init_version)?;
    let mut media = BytesMut::with_capacity(init.len() + segment.size);
    media.extend_from_slice(init);
    media.extend_from_slice(&fmp4::segment_type());
    for part in &segment.parts {
        media.extend_from_slice(&part.bytes);
    }
    Some(((st.epoch, segment.msn), media.freeze()))
}

/// `GET /live/<name>/thumbnail.jpg`.
pub fn serve(app: &AppState, name: &str, headers: &HeaderMap) -> Response {
    let Some(thumbnails) = &app.thumbnails else {
        return error(StatusCode::NOT_FOUND, "live thumbnails are off ([thumbnails] enabled = false)");
    };
    let Some(picture) = thumbnails.pictures.get(name) else {
        return error(StatusCode::NOT_FOUND, format!("stream {name} has no thumbnail yet"));
    };
    let etag = format!("\"{}-{}\"", picture.segment.0, picture.segment.1);
    let status = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let body = if status == StatusCode::OK { Body::from(picture.jpeg.clone()) } else { Body::empty() };
    let mut response = respond(status, "image/jpeg", "public, max-age=5", body);
    let response_headers = response.headers_mut();
    response_headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("etag is ascii"));
    response_headers
        .insert(header::LAST_MODIFIED, HeaderValue::from_str(&httpdate(picture.taken)).expect("an HTTP date is ascii"));
    response
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let month_name =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(month - 1) as usize];
    format!("{weekday}, {day:02} {month_name} {year} {h:02}:{m:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(httpdate(SystemTime::UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            httpdate(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            httpdate(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_262_400)),
            "Sat, 21 Nov 2026 12:00:00 GMT"
        );
    }
}
