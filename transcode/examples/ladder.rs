//! Runs the live ladder offline on an FLV file (H.264), as fast as the ladder goes, for the
//! benchmark (`benches/transcode.sh`) and for trying encoders by hand:
//!
//! ```text
//! cargo run --release -p rill-transcode --example ladder -- in.flv [encoder] [preset] [name=WxH@kbps ...]
//! ```
//!
//! The file's frames go onto a Bus stream; the feeder keeps at most a second of frames in
//! flight (so the ladder's own input bound never drops anything). Prints, per rung, frames
//! out, and the realtime factor (media duration / wall time).

use rill_media::{Bus, BusConfig, Delivery, PublisherInfo};
use rill_transcode::ladder::{default_rungs, run_ladder, LadderConfig, LadderStatus, Rung};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: ladder <in.flv> [encoder] [x264 preset] [name=WxH@kbps ...]");
        std::process::exit(2);
    };
    let data = std::fs::read(file).expect("readable FLV file");
    let (tracks, frames) = rill_transcode::flv_file::read(data.into()).expect("an FLV file with H.264");
    let rungs: Vec<Rung> = args
        .iter()
        .skip(3)
        .map(|spec| {
            let (name, rest) = spec.split_once('=').expect("name=WxH@kbps");
            let (size, kbps) = rest.split_once('@').expect("name=WxH@kbps");
            let (w, h) = size.split_once('x').expect("name=WxH@kbps");
            Rung::new(name, w.parse().unwrap(), h.parse().unwrap(), kbps.parse().unwrap())
        })
        .collect();
    let config = LadderConfig {
        rungs: if rungs.is_empty() { default_rungs() } else { rungs },
        encoder: args.get(1).cloned().unwrap_or_else(|| "x264enc".into()),
        x264_speed_preset: args.get(2).cloned().unwrap_or_else(|| "veryfast".into()),
        // Offline: faster than real time is not lateness.
        max_lateness: Duration::from_secs(3600),
        encode_delay: Duration::ZERO,
    };
    let bus = Bus::new(BusConfig { reconnect_grace: Duration::from_millis(10), ..Default::default() });
    let source = rill_media::StreamPath::live("bench").unwrap();
    let publisher = bus.publish(&source, PublisherInfo { protocol: "file", peer: file.clone() }).unwrap();
    publisher.set_tracks(tracks);
    let status = LadderStatus::new();
    let ladder = tokio::spawn(run_ladder(bus.clone(), source.clone(), config, status.clone()));
    // Wait for the renditions, and count each one's frames as a Bus subscriber would.
    while status.snapshot().rungs.is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut counters = Vec::new();
    for rung in status.snapshot().rungs {
        let mut sub = bus.subscribe_service(&rung.path).unwrap();
        counters.push(tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok(delivery) = sub.recv().await {
                match delivery {
                    Delivery::Frames(f) => n += f.len(),
                    Delivery::Ended => break,
                    Delivery::Tracks(_) => {}
                }
            }
            (rung.name, n)
        }));
    }
    let video: Vec<_> = frames.iter().filter(|f| f.is_video()).collect();
    let (first, last) =
        video.iter().fold((i64::MAX, i64::MIN), |(a, b), f| (a.min(f.pts.as_millis()), b.max(f.pts.as_millis())));
    let duration_s = (last - first) as f64 / 1000.0 * video.len() as f64 / (video.len() as f64 - 1.0).max(1.0);
    let started = Instant::now();
    let mut pushed = 0u64;
    for frame in &frames {
        if frame.is_video() {
            // Back-pressure: at most 30 frames between the feeder and the slowest rung.
            loop {
                let slowest = status.snapshot().rungs.iter().map(|r| r.frames).min().unwrap_or(0);
                if pushed < slowest + 30 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            pushed += 1;
        }
        publisher.push(frame.clone());
        tokio::task::yield_now().await;
    }
    drop(publisher);
    ladder.await.unwrap().expect("the ladder ran");
    let wall = started.elapsed().as_secs_f64();
    for counter in counters {
        let (name, n) = counter.await.unwrap();
        println!("rung {name}: {n} frames");
    }
    let snapshot = status.snapshot();
    println!("input frames {} dropped {}", snapshot.input_frames, snapshot.input_dropped);
    println!("media {duration_s:.2} s, wall {wall:.2} s, realtime factor {:.2}", duration_s / wall);
}
