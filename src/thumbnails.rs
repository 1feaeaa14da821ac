//! Live thumbnails: every `[thumbnails] interval_s`, the newest complete video segment of each
//! live stream is decoded to a JPEG (by the thumbnailer: a `rill thumbnail` child process, so a
//! decoder crash on hostile media cannot take the server down) and kept in memory for
//! `GET /live/<name>/thumbnail.jpg`. One picture is made at a time, so thumbnails never cost
//! more than a fraction of one core however many streams are live.

use bytes::Bytes;
use dashmap::mapref::one::Ref;
use dashmap::DashMap;
use rill_media::cmaf::TrackKind;
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

pub struct Picture {
    pub jpeg: Bytes,
    pub taken: SystemTime,
    /// Which segment it shows (`epoch`, `msn`): an unchanged stream is not decoded again.
    pub segment: (u64, u64),
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

    /// The newest picture of stream `name`.
    pub fn get(&self, name: &str) -> Option<Ref<'_, String, Picture>> {
        self.pictures.get(name)
    }

    async fn snapshot_all(&self, packagers: &Packagers, thumbnailer: &Thumbnailer) {
        let live = packagers.live_names();
        self.pictures.retain(|name, _| live.contains(name));
        for name in live {
            let Some(stream) = packagers.get(&name) else { continue };
            let shown = self.pictures.get(&name).map(|p| p.segment);
            let Some((segment, media)) = stream.state().newest_segment_file(TrackKind::Video, shown) else { continue };
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
