//! `rill`: the server binary. Loads the config, wires the Bus, RTMP ingest and play, the HTTP
//! router (API, HTTP-FLV, metrics) and runs until SIGINT/SIGTERM.

mod api;
mod config;
mod http;
mod live_http;
mod metrics;
mod player;
mod sources;
mod streams;
mod thumbnails;
mod transcoding;
mod videos_api;
mod vod_http;
mod webrtc_http;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use config::{AuthMode, Config};
use rill_ingest::rtmp::{RtmpContext, RtmpStats, SessionConfig};
use rill_media::cmaf::SegmenterConfig;
use rill_media::{Bus, BusConfig};
use rill_relay::packager::{PackagerConfig, Packagers};
use rill_relay::RelayStats;
use rill_vod::catalog::Catalog;
use rill_vod::library::Library;
use rill_vod::recorder::{Recorder, RecorderConfig};
use rill_vod::retention::RetentionPolicy;
use rill_vod::storage::{FsStorage, Storage};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use streams::StreamRegistry;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Rill: a live-first media server. Publish over RTMP, watch over HTTP-FLV or RTMP.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: ./conf/rill.toml if present, else the embedded defaults).
    /// Every key can be overridden with RILL_<SECTION>_<KEY>.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the effective configuration (file + environment overrides) and exit.
    Config,
    /// Read an fMP4 (init + segment) on stdin, write its first picture as a JPEG on stdout.
    /// The server runs this in a child process for each video's thumbnail, so decoding stays
    /// out of the server's memory and a decoder crash cannot take the server down.
    #[command(hide = true)]
    Thumbnail {
        #[arg(long, default_value_t = THUMBNAIL_WIDTH)]
        width: u32,
    },
}

/// State shared by HTTP handlers.
pub struct AppState {
    pub config: Config,
    pub bus: Bus,
    pub registry: Arc<StreamRegistry>,
    pub admin_token: String,
    pub rtmp_stats: Arc<RtmpStats>,
    pub relay_stats: Arc<RelayStats>,
    pub packagers: Arc<Packagers>,
    pub library: Arc<Library>,
    pub recorder: Arc<Recorder>,
    pub vod_requests: AtomicU64,
    pub vod_bytes_out: AtomicU64,
    pub api_auth_failures: AtomicU64,
    pub started: Instant,
    /// RTSP cameras pulled onto the Bus.
    pub sources: Arc<sources::Sources>,
    pub srt_stats: Arc<rill_ingest::srt::SrtStats>,
    /// Every live stream's ABR ladder.
    pub transcoding: Arc<transcoding::Transcoding>,
    /// Live snapshots (`None` when `[thumbnails] enabled = false`).
    pub thumbnails: Option<Arc<thumbnails::LiveThumbnails>>,
    /// WHIP/WHEP sessions on the WebRTC media port.
    pub webrtc: rill_webrtc::WebRtc,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with its causes: what a user needs, without a backtrace.
            eprintln!("rill: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(Command::Thumbnail { width }) = cli.command {
        return thumbnail(width);
    }
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Thumbnail { .. } => unreachable!("handled above"),
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Serve => tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(config)),
    }
}

async fn serve(config: Config) -> Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.server.log))
        .context("server.log is not a valid log filter")?;
    tracing_subscriber::fmt().with_env_filter(filter).init();

    std::fs::create_dir_all(&config.server.data_dir)
        .with_context(|| format!("creating data_dir {}", config.server.data_dir.display()))?;
    let (admin_token, generated) = streams::admin_token(&config)?;
    let registry = Arc::new(StreamRegistry::load(&config)?);
    let bus = Bus::new(BusConfig {
        reconnect_grace: Duration::from_secs(config.bus.reconnect_grace_s),
        max_cache_frames: config.bus.max_cache_frames,
        max_cache_bytes: config.bus.max_cache_mb << 20,
        slow_subscriber_timeout: Duration::from_secs(config.bus.slow_viewer_timeout_s),
        ..BusConfig::default()
    });
    let rtmp_listener = TcpListener::bind(config.rtmp.listen)
        .await
        .with_context(|| format!("binding rtmp.listen {}", config.rtmp.listen))?;
    let http_listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", config.http.listen))?;

    let rtmp_stats = Arc::new(RtmpStats::default());
    let relay_stats = Arc::new(RelayStats::default());
    let mut session = SessionConfig::default();
    session.limits.max_chunk_size = config.rtmp.max_chunk_size;
    session.limits.max_message_size = config.rtmp.max_message_size;
    session.max_name_len = config.rtmp.max_name_len;
    let rtmp = Arc::new(RtmpContext {
        bus: bus.clone(),
        keys: registry.clone(),
        session,
        handshake_timeout: Duration::from_secs(config.rtmp.handshake_timeout_s),
        idle_timeout: Duration::from_secs(config.rtmp.idle_timeout_s),
        write_timeout: Duration::from_secs(config.rtmp.write_timeout_s),
        stats: rtmp_stats.clone(),
    });
    let play_bus = bus.clone();
    let play_stats = relay_stats.clone();
    let play = move |request| rill_relay::rtmp_play::serve(request, play_bus.clone(), play_stats.clone());
    if config.rtmps.enabled() {
        let tls = rill_ingest::rtmp::tls::acceptor_from_pem_files(&config.rtmps.cert, &config.rtmps.key)
            .context("loading the [rtmps] certificate")?;
        let listener = TcpListener::bind(config.rtmps.listen)
            .await
            .with_context(|| format!("binding rtmps.listen {}", config.rtmps.listen))?;
        tokio::spawn(rill_ingest::rtmp::serve_tls(listener, tls, rtmp.clone(), play.clone()));
    }
    tokio::spawn(rill_ingest::rtmp::serve(rtmp_listener, rtmp, play));

    // SRT: publish (MPEG-TS) and read on one UDP port.
    let srt_stats = Arc::new(rill_ingest::srt::SrtStats::default());
    let (_srt_listener, srt_incoming) =
        rill_ingest::srt::bind(config.srt.listen, Duration::from_millis(config.srt.latency_ms))
            .await
            .with_context(|| format!("binding srt.listen {}", config.srt.listen))?;
    let srt = Arc::new(rill_ingest::srt::SrtContext {
        listen: config.srt.listen,
        latency: Duration::from_millis(config.srt.latency_ms),
        bus: bus.clone(),
        keys: registry.clone(),
        passphrases: registry.clone(),
        idle_timeout: Duration::from_secs(config.srt.idle_timeout_s),
        max_pes_bytes: config.rtmp.max_message_size as usize,
        playback: config.srt.playback,
        stats: srt_stats.clone(),
    });
    let (srt_bus, srt_relay_stats) = (bus.clone(), relay_stats.clone());
    tokio::spawn(rill_ingest::srt::serve(srt_incoming, srt, move |request| {
        rill_relay::srt_play::serve(request, srt_bus.clone(), srt_relay_stats.clone())
    }));

    let segmenter = SegmenterConfig {
        segment_target: Duration::from_secs_f64(config.packager.segment_s),
        part_target: Duration::from_millis(config.packager.part_ms),
    };
    let packagers = Packagers::spawn(
        bus.clone(),
        PackagerConfig { segmenter, window_segments: config.packager.window_segments, ..PackagerConfig::default() },
    );
    let (library, recorder) = start_vod(&config, &bus, segmenter).await?;
    let rtsp_sources = Arc::new(sources::Sources::start(&config, bus.clone()).context("starting RTSP sources")?);
    rtsp_sources.serve_on_demand(packagers.clone());
    let transcoding = transcoding::Transcoding::spawn(bus.clone(), &config);
    let live_thumbnails = match (config.thumbnails.enabled, thumbnailer(config.thumbnails.width)) {
        (true, Some(thumbnailer)) => Some(thumbnails::LiveThumbnails::spawn(
            packagers.clone(),
            thumbnailer,
            Duration::from_secs(config.thumbnails.interval_s),
        )),
        _ => None,
    };
    let webrtc = start_webrtc(&config, &bus).await?;
    print_banner(&config, &registry, &admin_token, generated);
    let write_timeout = Duration::from_secs(config.http.write_timeout_s);
    let state = Arc::new(AppState {
        config,
        bus,
        registry,
        admin_token,
        rtmp_stats,
        relay_stats,
        packagers,
        library,
        recorder: recorder.clone(),
        vod_requests: AtomicU64::new(0),
        vod_bytes_out: AtomicU64::new(0),
        api_auth_failures: AtomicU64::new(0),
        started: Instant::now(),
        sources: rtsp_sources,
        srt_stats,
        thumbnails: live_thumbnails,
        transcoding,
        webrtc,
    });
    let bus = state.bus.clone();
    let app = http::router(state).into_make_service_with_connect_info::<http::PeerAddr>();
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signalled = stopping.clone();
    let server = axum::serve(http::TimeoutListener { inner: http_listener, write_timeout }, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // End every stream so HTTP-FLV bodies finish and graceful shutdown can complete.
            for stream in bus.snapshot() {
                bus.close(&stream.path);
            }
            signalled.notify_one();
        });
    tokio::select! {
        served = server => served.context("HTTP server failed")?,
        _ = async { stopping.notified().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
        }
    }
    // Let recordings index their last segments and mark their videos ready.
    recorder.wait_idle(SHUTDOWN_GRACE).await;
    tracing::info!("shut down");
    Ok(())
}

/// WebRTC (WHIP/WHEP): binds the media port; AAC sources get their Opus audio from the
/// transcoder's shared Opus feed, started while a viewer holds it.
async fn start_webrtc(config: &Config, bus: &Bus) -> Result<rill_webrtc::WebRtc> {
    let feeds = rill_transcode::audio::OpusFeeds::new(bus.clone());
    let opus_feed: rill_webrtc::OpusFeedFn =
        Arc::new(move |_bus: &Bus, path: &rill_media::StreamPath| match feeds.acquire(path) {
            Ok(guard) => Some(Box::new(guard) as Box<dyn std::any::Any + Send>),
            Err(e) => {
                tracing::warn!(stream = %path, error = %e, "no Opus audio for WebRTC viewers");
                None
            }
        });
    let c = &config.webrtc;
    let webrtc_config = rill_webrtc::WebRtcConfig {
        udp_listen: c.udp_listen,
        public_ips: c.public_ips.clone(),
        stun_servers: c.stun_servers.clone(),
        session_timeout: Duration::from_secs(c.session_timeout_s),
        max_sessions: c.max_sessions,
    };
    rill_webrtc::WebRtc::bind(webrtc_config, bus.clone(), Some(opus_feed))
        .await
        .with_context(|| format!("binding webrtc.udp_listen {}", c.udp_listen))
}

/// `rill thumbnail`: stdin (fMP4) → stdout (JPEG).
fn thumbnail(width: u32) -> Result<()> {
    use std::io::{Read, Write};
    let mut media = Vec::new();
    std::io::stdin().read_to_end(&mut media).context("reading the media from stdin")?;
    let jpeg = rill_transcode::thumbnail::first_picture_jpeg(media.into(), width)?;
    std::io::stdout().write_all(&jpeg).context("writing the JPEG to stdout")?;
    Ok(())
}

/// Thumbnails `width` pixels wide: each made by a `rill thumbnail` child process (GStreamer).
fn thumbnailer(width: u32) -> Option<rill_vod::recorder::Thumbnailer> {
    let exe = std::env::current_exe().ok()?;
    Some(Arc::new(move |media| {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new(&exe)
            .args(["thumbnail", "--width", &width.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        let mut stdin = child.stdin.take().expect("piped");
        let feeder = std::thread::spawn(move || stdin.write_all(&media));
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        let _ = feeder.join();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(stderr.trim().trim_start_matches("rill: ").to_string());
        }
        Ok(output.stdout.into())
    }))
}

/// Width of video thumbnails in pixels.
const THUMBNAIL_WIDTH: u32 = 320;

/// Opens the catalog and the recordings storage, indexes what a crash left, and starts the
/// recorder and the retention sweeper.
async fn start_vod(config: &Config, bus: &Bus, segmenter: SegmenterConfig) -> Result<(Arc<Library>, Arc<Recorder>)> {
    let url = config.database.url(&config.server);
    let catalog = Arc::new(Catalog::connect(&url).await.with_context(|| format!("opening the catalog {url}"))?);
    let dir = config.record.dir(&config.server);
    let storage: Arc<dyn Storage> =
        Arc::new(FsStorage::open(&dir).with_context(|| format!("opening the recordings directory {}", dir.display()))?);
    let recovered =
        rill_vod::recorder::recover(&catalog, &storage).await.context("recovering interrupted recordings")?;
    if !recovered.is_empty() {
        tracing::warn!(videos = recovered.len(), "recovered recordings interrupted by an unclean stop");
    }
    let enabled = config.record.enabled;
    let overrides: std::collections::HashMap<String, bool> =
        config.streams.iter().filter_map(|s| Some((s.name.clone(), s.record?))).collect();
    let recorder = Recorder::spawn(
        bus.clone(),
        catalog.clone(),
        storage.clone(),
        RecorderConfig { segmenter, visibility: config.record.visibility, thumbnailer: thumbnailer(THUMBNAIL_WIDTH) },
        Box::new(move |name| overrides.get(name).copied().unwrap_or(enabled)),
    );
    let gb = config.record.max_total_gb;
    let days = config.record.max_age_days;
    let policy = RetentionPolicy {
        max_age: (days > 0.0).then(|| Duration::from_secs_f64(days * 86_400.0)),
        max_total_bytes: (gb > 0.0).then_some((gb * 1e9) as u64),
    };
    rill_vod::retention::spawn_sweeper(
        catalog.clone(),
        storage.clone(),
        policy,
        Duration::from_secs(config.record.sweep_interval_s.max(1)),
    );
    Ok((Arc::new(Library::new(catalog, storage)), recorder))
}

/// How long shutdown waits for open HTTP connections after the streams have ended.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn print_banner(config: &Config, registry: &StreamRegistry, admin_token: &str, generated: bool) {
    let rtmp = config.rtmp.listen.port();
    let http = config.http.listen.port();
    let host = if config.server.public_host.is_empty() { "localhost" } else { &config.server.public_host };
    println!("Rill is running.");
    println!("  RTMP  rtmp://{host}:{rtmp}/live   (publish: rtmp://{host}:{rtmp}/live/<stream-key>)");
    if config.rtmps.enabled() {
        println!("  RTMPS rtmps://{host}:{}/live", config.rtmps.listen.port());
    } else {
        println!("  RTMPS off (set [rtmps] cert and key)");
    }
    let srt = config.srt.listen.port();
    println!("  SRT   srt://{host}:{srt}?streamid=publish:live/<stream-key>   (read: streamid=read:live/<name>)");
    println!("  HTTP  http://{host}:{http}        (player /play/<name>, LL-HLS /live/<name>/index.m3u8, DASH /live/<name>/manifest.mpd, API /api/v1, metrics /metrics)");
    if generated {
        println!(
            "  Admin token (shown once, stored in {}): {admin_token}",
            config.server.data_dir.join("admin_token").display()
        );
    } else {
        println!("  Admin token: in [auth] admin_token or {}", config.server.data_dir.join("admin_token").display());
    }
    match registry.mode() {
        AuthMode::Open => {
            println!("  Auth mode: open (anyone may publish; the key is the stream name)");
            println!("  Try: ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine -c:v libx264 -tune zerolatency -g 60 -c:a aac -f flv rtmp://{host}:{rtmp}/live/demo");
            println!("  Watch: http://{host}:{http}/play/demo  (LL-HLS/DASH in the browser)");
            println!("         ffplay http://{host}:{http}/live/demo/index.m3u8   or   ffplay http://{host}:{http}/live/demo.flv");
        }
        AuthMode::Keys => {
            let streams = registry.list();
            println!("  Auth mode: keys ({} stream(s) configured)", streams.len());
            for s in &streams {
                println!(
                    "    {}: watch http://{host}:{http}/live/{}.flv or rtmp://{host}:{rtmp}/live/{}",
                    s.name, s.name, s.name
                );
            }
            println!("  Create a stream and get its key:");
            println!("    curl -s -X POST -H 'Authorization: Bearer <admin-token>' -d '{{\"name\":\"demo\"}}' -H 'Content-Type: application/json' http://{host}:{http}/api/v1/streams");
            println!("  OBS: Settings > Stream > Custom, Server rtmp://{host}:{rtmp}/live, Stream Key <key>");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
