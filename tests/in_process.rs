//! The whole server in-process (fast tier: no ffmpeg, GStreamer plugins, Chromium or
//! PostgreSQL): [`rill::app::App`] starts on free ports, a synthetic publisher pushes frames
//! onto its Bus, and plain HTTP requests check what players, operators and scrapers get —
//! LL-HLS playlists, blocking reloads, parts, segments, the MPD, HTTP-FLV, the API and metrics.

use rill::app::App;
use rill::config::Config;
use rill_media::cmaf::TrackKind;
use rill_media::testing::{avc_aac_tracks, SyntheticStream};
use rill_media::{PublisherInfo, StreamPath};
use rill_relay::packager::LiveState;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request (`Connection: close`), read to the end (or `limit` bytes of body).
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)], limit: Option<usize>) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await.unwrap().unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n");
        if let (Some(limit), Some(end)) = (limit, head_end) {
            if raw.len() >= end + 4 + limit {
                break;
            }
        }
    }
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[end + 4..].to_vec();
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    if chunked {
        body = dechunk(&body);
    }
    Response { status, head, body }
}

/// The chunks of a chunked body (as far as they were read).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
        let chunk = &data[line_end + 2..];
        out.extend_from_slice(&chunk[..size.min(chunk.len())]);
        if size == 0 || chunk.len() < size + 2 {
            break;
        }
        data = &chunk[size + 2..];
    }
    out
}

async fn start(dir: &std::path::Path) -> (SocketAddr, std::sync::Arc<rill::state::AppState>) {
    // SRT (srt-tokio) needs a concrete port: take one the system has free.
    let srt = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let env = [
        ("RILL_SERVER_DATA_DIR", dir.to_str().unwrap()),
        ("RILL_AUTH_MODE", "open"),
        ("RILL_AUTH_ADMIN_TOKEN", "admin-secret"),
        ("RILL_HTTP_LISTEN", "127.0.0.1:0"),
        ("RILL_RTMP_LISTEN", "127.0.0.1:0"),
        ("RILL_SRT_LISTEN", srt.as_str()),
        ("RILL_WEBRTC_UDP_LISTEN", "127.0.0.1:0"),
        ("RILL_RECORD_ENABLED", "false"),
        ("RILL_THUMBNAILS_ENABLED", "false"),
        ("RILL_TRANSCODE_ENABLED", "false"),
    ];
    let config = Config::load(None, env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
    let app = App::start(config).await.unwrap();
    let (addr, state) = (app.http_addr().unwrap(), app.state.clone());
    tokio::spawn(app.run(std::future::pending()));
    (addr, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_stream_is_served_to_players_operators_and_scrapers() {
    let dir = std::env::temp_dir().join(format!("rill-in-process-{}", std::process::id()));
    let (addr, state) = start(&dir).await;
    assert_eq!(get(addr, "/healthz", &[], None).await.text(), "ok\n");
    assert_eq!(get(addr, "/live/nobody/index.m3u8", &[], None).await.status, 404);
    assert_eq!(get(addr, "/live/bad%20name/index.m3u8", &[], None).await.status, 400);

    let path = StreamPath::live("demo").unwrap();
    let publisher = state.bus.publish(&path, PublisherInfo { protocol: "rtmp", peer: "127.0.0.1:1".into() }).unwrap();
    publisher.set_tracks(avc_aac_tracks(true));
    // Pushed a GOP at a time, each once the packager has taken the previous one (a burst of
    // several GOPs would fall out of the Bus's ring, as for any subscriber that far behind).
    let packaged = state.packagers.wait_live("demo", Instant::now() + Duration::from_secs(10)).await.unwrap();
    let stream = SyntheticStream { gop_ms: 1000, cts_ms: 0, audio: true, video_bytes: 2000 };
    for second in 0..6 {
        for frame in stream.frames(second * 1000, second * 1000 + 999) {
            publisher.push(frame);
        }
        let until = second as f64 + 0.5;
        let packaged_until = |st: &LiveState| {
            let video = st.track(TrackKind::Video)?;
            let last = video.segments.back()?;
            ((last.decode_time + last.duration) as f64 / video.track.timescale as f64 >= until).then_some(())
        };
        packaged.wait_for(Instant::now() + Duration::from_secs(10), packaged_until).await.expect("packaged");
    }

    // LL-HLS: the multivariant playlist (it waits for a first complete segment), a blocking
    // reload answered once the segment exists, a part and a complete segment.
    let multivariant = get(addr, "/live/demo/index.m3u8", &[], None).await;
    assert_eq!(multivariant.status, 200, "{}", multivariant.text());
    assert_eq!(multivariant.header("content-type"), Some("application/vnd.apple.mpegurl"));
    assert!(multivariant.text().contains("RESOLUTION=1280x720"), "{}", multivariant.text());
    let playlist = get(addr, "/live/demo/video/media.m3u8?_HLS_msn=1", &[], None).await;
    assert_eq!(playlist.status, 200, "{}", playlist.text());
    let text = playlist.text();
    assert!(text.contains("#EXT-X-PART:") && text.contains("#EXT-X-PRELOAD-HINT"), "{text}");
    let part_uri = text.lines().find_map(|l| l.split("URI=\"").nth(1)?.split('"').next()).unwrap().to_string();
    let part = get(addr, &format!("/live/demo/video/{part_uri}"), &[], None).await;
    assert_eq!((part.status, part.header("cache-control")), (200, Some("public, max-age=86400, immutable")));
    assert!(!part.body.is_empty());
    // A player that names no session gets one, carried in every URI of its playlists.
    assert!(part_uri.contains("?rs="), "{text}");
    let segment_uri = text.lines().find(|l| l.contains(".m4s?rs=") && !l.starts_with('#')).unwrap().to_string();
    let segment = get(addr, &format!("/live/demo/video/{segment_uri}"), &[], None).await;
    assert_eq!(segment.status, 200);
    assert_eq!(&segment.body[4..8], b"styp");
    let etag = segment.header("etag").unwrap().to_string();
    let again = get(addr, &format!("/live/demo/video/{segment_uri}"), &[("If-None-Match", &etag)], None).await;
    assert_eq!(again.status, 304);
    // A malformed directive is a clear 400.
    assert_eq!(get(addr, "/live/demo/video/media.m3u8?_HLS_part=1", &[], None).await.status, 400);

    // DASH.
    let mpd = get(addr, "/live/demo/manifest.mpd", &[], None).await;
    assert_eq!(mpd.status, 200);
    assert!(mpd.text().contains("type=\"dynamic\"") && mpd.text().contains("width=\"1280\""), "{}", mpd.text());

    // HTTP-FLV: the header and the GOP cache at once.
    let flv = get(addr, "/live/demo.flv", &[], Some(1024)).await;
    assert_eq!(flv.status, 200);
    assert_eq!(&flv.body[..3], b"FLV");

    // The API (admin only) and the metrics.
    assert_eq!(get(addr, "/api/v1/streams", &[], None).await.status, 401);
    let api = get(addr, "/api/v1/streams/demo", &[("Authorization", "Bearer admin-secret")], None).await;
    let stream: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(stream["state"], "live", "{stream}");
    assert_eq!(stream["video"]["width"], 1280);
    assert_eq!(stream["publisher"]["protocol"], "rtmp");
    assert!(stream["packaging"]["tracks"].as_array().unwrap().len() == 2, "{stream}");
    // LL-HLS and DASH players are viewers too (sessions from their requests).
    assert!(stream["viewers_now"]["hls"].as_u64().unwrap() >= 1, "{stream}");
    assert_eq!(stream["viewers_now"]["dash"], 1, "{stream}");
    let metrics = get(addr, "/metrics", &[], None).await.text();
    for line in [
        "rill_streams{state=\"live\"} 1",
        "rill_publishers{protocol=\"rtmp\"} 1",
        "rill_auth_failures_total{kind=\"admin_token\"} 1",
        "rill_packaged_streams 1",
        "rill_viewers_now{protocol=\"dash\"} 1",
        "# TYPE rill_qoe_startup_seconds histogram",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert_eq!(metrics.matches("# TYPE rill_bytes_sent_total counter").count(), 1, "one family, one TYPE");

    // The publisher leaves: after the grace period the playlist ends.
    drop(publisher);
    state.bus.close(&path);
    packaged.wait_for(Instant::now() + Duration::from_secs(10), |st| st.ended.then_some(())).await.expect("ended");
    let ended = get(addr, "/live/demo/video/media.m3u8", &[], None).await;
    assert!(ended.text().ends_with("#EXT-X-ENDLIST\n"), "{}", ended.text());
    let _ = std::fs::remove_dir_all(&dir);
}
