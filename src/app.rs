//! The composition root: builds every subsystem from the configuration — the Bus, RTMP/RTMPS
//! and SRT ingest with their players, the packagers, the recorder and catalog, RTSP cameras,
//! the ABR ladders, live thumbnails, WebRTC — hands them to the HTTP router and serves until
//! SIGINT/SIGTERM, then ends every stream and lets recordings finish.

use crate::audience::Audience;
use crate::config::{AuthMode, Config};
use crate::http::{PeerAddr, TimeoutListener};
use crate::state::{AppState, HttpStats};
use crate::streams::{self, StreamRegistry};
use crate::thumbnailer::{thumbnailer, THUMBNAIL_WIDTH};
use crate::thumbnails::LiveThumbnails;
use anyhow::{Context, Result};
use rill_analytics::session::Protocol;
use rill_ingest::rtmp::{RtmpContext, RtmpStats, SessionConfig};
use rill_media::cmaf::SegmenterConfig;
use rill_media::{Bus, BusConfig};
use rill_relay::packager::{PackagerConfig, Packagers};
use rill_relay::RelayStats;
use rill_vod::catalog::{Catalog, Visibility};
use rill_vod::library::Library;
use rill_vod::recorder::{Recorder, RecorderConfig, VisibilityOf};
use rill_vod::retention::RetentionPolicy;
use rill_vod::storage::{FsStorage, Storage};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Runs the server with `config` until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.server.log))
        .context("server.log is not a valid log filter")?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let app = App::start(config).await?;
    print_banner(&app.state.config, &app.state.registry, &app.state.admin_token, app.admin_token_generated);
    app.run(shutdown_signal()).await
}

/// A started server: every subsystem running, the HTTP port bound but not yet served.
pub struct App {
    pub state: Arc<AppState>,
    http_listener: TcpListener,
    /// Whether the admin token was made at this start (it is printed once).
    pub admin_token_generated: bool,
}

impl App {
    /// Builds and starts every subsystem from `config` and binds every port (a port of 0
    /// takes a free one: see [`App::http_addr`]).
    pub async fn start(config: Config) -> Result<App> {
        std::fs::create_dir_all(&config.server.data_dir)
            .with_context(|| format!("creating data_dir {}", config.server.data_dir.display()))?;
        let (admin_token, generated) = streams::admin_token(&config)?;
        let registry = Arc::new(StreamRegistry::load(&config)?);
        let access = Arc::new(crate::access::AccessControl::new(&config, registry.clone())?);
        let gate: Arc<dyn rill_media::access::Gate> = access.clone();
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
            access: gate.clone(),
            session,
            handshake_timeout: Duration::from_secs(config.rtmp.handshake_timeout_s),
            idle_timeout: Duration::from_secs(config.rtmp.idle_timeout_s),
            write_timeout: Duration::from_secs(config.rtmp.write_timeout_s),
            stats: rtmp_stats.clone(),
        });
        let segmenter = SegmenterConfig {
            segment_target: Duration::from_secs_f64(config.packager.segment_s),
            part_target: Duration::from_millis(config.packager.part_ms),
        };
        let (library, recorder) = start_vod(&config, &bus, segmenter, access.clone()).await?;
        let audience = Audience::start(&config, library.clone(), recorder.clone()).await?;
        let play_bus = bus.clone();
        let play_stats = relay_stats.clone();
        let play_audience = audience.clone();
        let play_gate = gate.clone();
        let play = move |request: rill_ingest::rtmp::PlayRequest| {
            let session = (request.app == "live")
                .then(|| play_audience.connect(Protocol::Rtmp, &request.name, request.conn.peer(), "", None));
            let serve = rill_relay::rtmp_play::serve(request, play_bus.clone(), play_stats.clone(), play_gate.clone());
            async move {
                serve.await;
                drop(session);
            }
        };
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
        let (srt_listener, srt_incoming) =
            rill_ingest::srt::bind(config.srt.listen, Duration::from_millis(config.srt.latency_ms))
                .await
                .with_context(|| format!("binding srt.listen {}", config.srt.listen))?;
        let srt = Arc::new(rill_ingest::srt::SrtContext {
            listen: config.srt.listen,
            latency: Duration::from_millis(config.srt.latency_ms),
            bus: bus.clone(),
            access: gate.clone(),
            passphrases: registry.clone(),
            idle_timeout: Duration::from_secs(config.srt.idle_timeout_s),
            max_pes_bytes: config.rtmp.max_message_size as usize,
            playback: config.srt.playback,
            stats: srt_stats.clone(),
        });
        let (srt_bus, srt_relay_stats, srt_audience) = (bus.clone(), relay_stats.clone(), audience.clone());
        tokio::spawn(rill_ingest::srt::serve(srt_listener, srt_incoming, srt, move |request| {
            let session = srt_audience.connect(Protocol::Srt, request.path.name.as_str(), request.peer, "", None);
            let serve = rill_relay::srt_play::serve(request, srt_bus.clone(), srt_relay_stats.clone());
            async move {
                serve.await;
                drop(session);
            }
        }));

        let packagers = Packagers::spawn(
            bus.clone(),
            PackagerConfig { segmenter, window_segments: config.packager.window_segments, ..PackagerConfig::default() },
        );
        let uploads = crate::uploads::start(&config, &library).context("starting uploads")?;
        let rtsp_sources =
            crate::sources::start(&config, bus.clone(), packagers.clone()).context("starting RTSP sources")?;
        let transcoding = crate::transcoding::spawn(bus.clone(), &config);
        let live_thumbnails = match (config.thumbnails.enabled, thumbnailer(config.thumbnails.width)) {
            (true, Some(thumbnailer)) => Some(LiveThumbnails::spawn(
                packagers.clone(),
                thumbnailer,
                Duration::from_secs(config.thumbnails.interval_s),
            )),
            _ => None,
        };
        let (webrtc, webrtc_renditions) = start_webrtc(&config, &bus).await?;
        audience.follow_whep(webrtc.clone());
        let state = Arc::new(AppState {
            config,
            bus,
            registry,
            access,
            admin_token,
            rtmp_stats,
            relay_stats,
            packagers,
            library,
            recorder: recorder.clone(),
            uploads,
            http_stats: HttpStats::default(),
            started: Instant::now(),
            sources: rtsp_sources,
            srt_stats,
            thumbnails: live_thumbnails,
            transcoding,
            webrtc,
            audience,
            webrtc_renditions,
        });
        Ok(App { state, http_listener, admin_token_generated: generated })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.http_listener.local_addr()
    }

    /// Serves HTTP until `shutdown` completes; then ends every stream, gives open connections
    /// a moment, and lets recordings index their last segments.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
        let App { state, http_listener, .. } = self;
        let write_timeout = Duration::from_secs(state.config.http.write_timeout_s);
        let recorder = state.recorder.clone();
        let audience = state.audience.clone();
        let bus = state.bus.clone();
        let app = crate::http::router(state).into_make_service_with_connect_info::<PeerAddr>();
        let stopping = Arc::new(tokio::sync::Notify::new());
        let signalled = stopping.clone();
        let server = axum::serve(TimeoutListener { inner: http_listener, write_timeout }, app).with_graceful_shutdown(
            async move {
                shutdown.await;
                // End every stream so HTTP-FLV bodies finish and graceful shutdown can complete.
                for stream in bus.snapshot() {
                    bus.close(&stream.path);
                }
                signalled.notify_one();
            },
        );
        tokio::select! {
            served = server => served.context("HTTP server failed")?,
            _ = async { stopping.notified().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
            }
        }
        // Let recordings index their last segments and mark their videos ready.
        recorder.wait_idle(SHUTDOWN_GRACE).await;
        audience.service.finish().await;
        tracing::info!("shut down");
        Ok(())
    }
}

/// WebRTC (WHIP/WHEP): binds the media port; AAC sources get their Opus audio from the
/// transcoder's shared Opus feed, and viewers that cannot decode the source's video the shared
/// WebRTC rendition, each started while a viewer holds it.
async fn start_webrtc(
    config: &Config,
    bus: &Bus,
) -> Result<(rill_webrtc::WebRtc, Option<rill_transcode::webrtc::BaselineFeeds>)> {
    let (derived, renditions) = crate::webrtc_feeds::derived_feeds(config, bus);
    let c = &config.webrtc;
    let webrtc_config = rill_webrtc::WebRtcConfig {
        udp_listen: c.udp_listen,
        public_ips: c.public_ips.clone(),
        stun_servers: c.stun_servers.clone(),
        session_timeout: Duration::from_secs(c.session_timeout_s),
        max_sessions: c.max_sessions,
    };
    let webrtc = rill_webrtc::WebRtc::bind(webrtc_config, bus.clone(), derived)
        .await
        .with_context(|| format!("binding webrtc.udp_listen {}", c.udp_listen))?;
    Ok((webrtc, renditions))
}

/// A recording's visibility: `[record] visibility`, except that a stream playing with a token
/// only records private videos (which play with a token only).
fn recording_visibility(default: Visibility, access: Arc<crate::access::AccessControl>) -> VisibilityOf {
    use rill_media::access::{Directory, Playback, Resource};
    Arc::new(move |name| match access.playback(Resource::Stream(name)) {
        Playback::Token => Visibility::Private,
        Playback::Public => default,
    })
}

/// Opens the catalog and the recordings storage, indexes what a crash left, and starts the
/// recorder and the retention sweeper.
async fn start_vod(
    config: &Config,
    bus: &Bus,
    segmenter: SegmenterConfig,
    access: Arc<crate::access::AccessControl>,
) -> Result<(Arc<Library>, Arc<Recorder>)> {
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
    let library = Arc::new(Library::new(catalog.clone(), storage.clone()));
    // A recording that became ready gets its storyboard (seek previews).
    let on_ready: Option<rill_vod::recorder::OnReady> =
        crate::storyboard::Storyboarder::new(storage.clone()).map(|storyboarder| {
            let library = library.clone();
            Arc::new(move |id| {
                let (storyboarder, library) = (storyboarder.clone(), library.clone());
                tokio::spawn(async move { crate::storyboard::for_video(&storyboarder, &library, id).await });
            }) as rill_vod::recorder::OnReady
        });
    let enabled = config.record.enabled;
    let overrides: std::collections::HashMap<String, bool> =
        config.streams.iter().filter_map(|s| Some((s.name.clone(), s.record?))).collect();
    let recorder = Recorder::spawn(
        bus.clone(),
        catalog.clone(),
        storage.clone(),
        RecorderConfig {
            segmenter,
            visibility: recording_visibility(config.record.visibility, access),
            thumbnailer: thumbnailer(THUMBNAIL_WIDTH),
            spool: Default::default(),
            spool_dir: Some(dir.join(".spool")),
            on_ready,
        },
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
    Ok((library, recorder))
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

/// SIGINT or SIGTERM (SIGINT only, said once, if SIGTERM cannot be watched).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => term.recv().await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stop with SIGINT");
                std::future::pending().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
