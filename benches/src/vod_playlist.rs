//! `vod-playlist`: how long a 3-hour recording's VOD manifests take to produce. Indexes a
//! synthetic recording (2 s video and audio segments, `--hours` long, default 3: 5,400 segments
//! per track) in a fresh catalog (SQLite in a temp dir, and PostgreSQL when
//! `RILL_BENCH_POSTGRES_URL` is set), then times, `--runs` times each (default 50):
//! - `load`: the video's index from the catalog (`VideoIndex::load`: the video row, its init
//!   segments and every segment of both tracks), what a request pays when the index is not cached;
//! - the renderings from a loaded index: multivariant playlist, video media playlist, static MPD,
//!   what a request pays when it is cached (`Library`).
//!
//! Output: median and p95 in milliseconds per step, the manifests' sizes, and the ratio of a
//! cold request (load + media playlist) to a cached one (media playlist only).
//!
//! ```text
//! cargo run --release -p rill-benches --bin vod-playlist -- [--hours 3] [--runs 50]
//! ```

use anyhow::{Context, Result};
use rill_media::cmaf::TrackKind;
use rill_media::manifest::TrackDescription;
use rill_vod::catalog::{Catalog, NewVideo, SegmentRow, VideoEnd, VideoStatus, Visibility};
use rill_vod::manifest::{dash_manifest, media_playlist, multivariant, VideoIndex};
use rill_vod::VideoId;
use sqlx::{Connection, Executor};
use std::time::{Instant, SystemTime};

const SEGMENT_S: i64 = 2;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut hours = 3i64;
    let mut runs = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--hours" => hours = value.parse()?,
            "--runs" => runs = value.parse()?,
            other => anyhow::bail!("unknown option {other} (--hours N, --runs N)"),
        }
    }
    let dir = std::env::temp_dir().join(format!("rill-vod-playlist-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = format!("sqlite://{}", dir.join("bench.db").display());
    bench("SQLite", &sqlite, hours, runs).await?;
    std::fs::remove_dir_all(&dir)?;
    if let Ok(admin) = std::env::var("RILL_BENCH_POSTGRES_URL") {
        let name = format!("rill_vod_playlist_{}", std::process::id());
        let mut connection = sqlx::PgConnection::connect(&admin).await?;
        connection.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        let url = format!("{}/{name}", admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base));
        let result = bench("PostgreSQL", &url, hours, runs).await;
        connection.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await?;
        result?;
    }
    Ok(())
}

async fn bench(label: &str, url: &str, hours: i64, runs: usize) -> Result<()> {
    let catalog = Catalog::connect(url).await?;
    let id = VideoId::generate();
    let segments = hours * 3600 / SEGMENT_S;
    let indexing = Instant::now();
    index_recording(&catalog, id, segments).await?;
    let indexing = indexing.elapsed();

    let mut load = Vec::with_capacity(runs);
    let mut index = None;
    for _ in 0..runs {
        let start = Instant::now();
        index = VideoIndex::load(&catalog, id).await?;
        load.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let index = index.context("the video exists")?;
    let video = index.track(TrackKind::Video).context("a video track")?;
    let mut sizes = Vec::new();
    let mut steps: Vec<(&str, Vec<f64>)> = vec![("load (catalog → index)", load)];
    let now = SystemTime::now();
    for (step, render) in [
        ("multivariant playlist", &(|| multivariant(&index)) as &dyn Fn() -> String),
        ("video media playlist", &|| media_playlist(&index, video)),
        ("static MPD", &|| dash_manifest(&index, now, "http://localhost/time")),
    ] {
        let mut times = Vec::with_capacity(runs);
        let mut size = 0;
        for _ in 0..runs {
            let start = Instant::now();
            size = std::hint::black_box(render()).len();
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        sizes.push((step, size));
        steps.push((step, times));
    }
    println!(
        "\n{label}: a {hours} h recording, {segments} segments per track (indexed in {:.1} s)",
        indexing.as_secs_f64()
    );
    println!("{:<26} {:>10} {:>10}", "step", "median ms", "p95 ms");
    let mut medians = Vec::new();
    for (step, mut times) in steps {
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
        println!("{step:<26} {median:>10.3} {p95:>10.3}");
        medians.push(median);
    }
    for (step, size) in sizes {
        println!("{step:<26} {:>10} bytes", size);
    }
    println!(
        "cold media playlist request (load + render) / cached (render only): {:.1}x",
        (medians[0] + medians[2]) / medians[2]
    );
    catalog.close().await;
    Ok(())
}

/// Indexes a synthetic recording the way the recorder does: an init per track, then each
/// completed segment in its own transaction.
async fn index_recording(catalog: &Catalog, id: VideoId, segments: i64) -> Result<()> {
    let new = NewVideo {
        id,
        title: "a long recording",
        stream: "bench",
        visibility: Visibility::Public,
        created_at_ms: 1_700_000_000_000,
    };
    catalog.create_video(&new).await?;
    let tracks = rill_media::testing::avc_aac_tracks(true);
    for (kind, codec, timescale) in [
        (TrackKind::Video, tracks.video.as_ref().expect("video"), 90_000i64),
        (TrackKind::Audio, tracks.audio.as_ref().expect("audio"), 48_000),
    ] {
        let description = TrackDescription::new(kind, codec, timescale as u32);
        catalog.add_init(id, kind.as_str(), 0, &serde_json::to_string(&description)?).await?;
        let mut start = 0;
        for sequence in 0..segments {
            // Real durations vary: keyframes land a frame late now and then, and AAC segments
            // hold 93 or 94 frames of 1024 samples (so DASH timelines cannot collapse into one `S`).
            let duration = match kind {
                TrackKind::Video => SEGMENT_S * timescale + if sequence % 7 == 0 { 3000 } else { 0 },
                TrackKind::Audio => 1024 * if sequence % 4 == 0 { 93 } else { 94 },
            };
            let row = SegmentRow {
                track: kind.as_str().into(),
                sequence,
                init_version: 0,
                discontinuity: false,
                start_ticks: start,
                duration_ticks: duration,
                timescale,
                size_bytes: if kind == TrackKind::Video { 625_000 } else { 32_000 },
                wall_clock_ms: 1_700_000_000_000 + sequence * SEGMENT_S * 1000,
            };
            catalog.add_segment(id, &row, kind == TrackKind::Video).await?;
            start += duration;
        }
    }
    let end = VideoEnd { status: VideoStatus::Ready, error: None, ended_at_ms: 1_700_000_000_000 + segments * 2000 };
    catalog.finish_video(id, &end).await?;
    Ok(())
}
