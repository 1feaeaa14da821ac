//! HTTP-FLV: a live stream as one endless FLV file. The body is a stream of `Bytes` pieces —
//! small header pieces and the frames' own payload handles — so the HTTP server can send a
//! batch of frames with one vectored write and no payload copy.

use crate::feed::FlvFeed;
use crate::RelayStats;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use rill_media::flv::{carries, file_header, previous_tag_size, tag_header, TagBody};
use rill_media::{BusError, CodecConfig, Subscriber, Tracks};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Appends the wire pieces of `tags` to `pieces`: per tag one header piece (the previous tag's
/// PreviousTagSize, FLV tag header, codec prefix) and the payload itself, and after the last
/// tag its PreviousTagSize. A batch thus ends on a complete tag: readers such as ffmpeg read
/// each tag's PreviousTagSize right after it, and a size held back for the next batch kept
/// every frame waiting for the next one (one frame of latency).
pub fn tag_pieces(tags: &[TagBody], scratch: &mut BytesMut, pieces: &mut VecDeque<Bytes>) {
    let mut previous: Option<[u8; 4]> = None;
    for tag in tags {
        if let Some(size) = previous.take() {
            scratch.put_slice(&size);
        }
        scratch.put_slice(&tag_header(tag));
        scratch.put_slice(tag.prefix());
        pieces.push_back(scratch.split().freeze());
        if !tag.payload.is_empty() {
            pieces.push_back(tag.payload.clone());
        }
        previous = Some(previous_tag_size(tag));
    }
    if let Some(size) = previous {
        scratch.put_slice(&size);
        pieces.push_back(scratch.split().freeze());
    }
}

/// Why a stream with these tracks cannot be watched over HTTP-FLV (or RTMP play), or `None`
/// when it can: a WebRTC publisher's VP8 video and Opus audio have no FLV form, and an FLV
/// without tags would be a silent failure.
pub fn refusal(name: &str, tracks: &Tracks) -> Option<String> {
    let codecs: Vec<&CodecConfig> = tracks.video.iter().chain(tracks.audio.iter()).collect();
    if codecs.is_empty() || codecs.iter().any(|c| carries(c)) {
        return None;
    }
    let names: Vec<&str> = codecs.iter().map(|c| c.name()).collect();
    Some(format!(
        "stream {name} is {}, which HTTP-FLV does not carry; watch it over WebRTC (/play/{name}?mode=webrtc)",
        names.join(" + ")
    ))
}

/// The body of `GET /live/<name>.flv`.
pub fn body(sub: Subscriber, stats: Arc<RelayStats>) -> impl Stream<Item = Result<Bytes, io::Error>> + Send {
    struct State {
        feed: FlvFeed,
        started: bool,
        tags: Vec<TagBody>,
        scratch: BytesMut,
        pieces: VecDeque<Bytes>,
        stats: Arc<RelayStats>,
        done: bool,
    }
    let state = State {
        feed: FlvFeed::new(sub),
        started: false,
        tags: Vec::new(),
        scratch: BytesMut::with_capacity(1024),
        pieces: VecDeque::new(),
        stats,
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(piece) = st.pieces.pop_front() {
                return Some((Ok(piece), st));
            }
            if st.done {
                return None;
            }
            st.tags.clear();
            match st.feed.next_batch(&mut st.tags).await {
                Ok(true) => {}
                Ok(false) => {
                    // The FLV ends cleanly: every batch ended with its last PreviousTagSize.
                    st.done = true;
                    continue;
                }
                Err(e @ BusError::TooSlow(_)) => {
                    st.stats.viewers_disconnected_slow.fetch_add(1, Ordering::Relaxed);
                    st.done = true;
                    return Some((Err(io::Error::new(io::ErrorKind::TimedOut, e)), st));
                }
                Err(e) => {
                    st.done = true;
                    return Some((Err(io::Error::other(e)), st));
                }
            }
            if !st.started {
                st.started = true;
                let tracks = st.feed.tracks().expect("tracks arrive with the first batch");
                // Opus and VP8 (a WebRTC publisher's) have no FLV form here: announce only what
                // is sent, or players wait for tags that never come.
                let flv_audio = tracks.audio.as_ref().is_some_and(rill_media::flv::carries);
                let flv_video = tracks.video.as_ref().is_some_and(rill_media::flv::carries);
                // The file header and PreviousTagSize0.
                st.pieces.push_back(Bytes::copy_from_slice(&file_header(flv_audio, flv_video)));
            }
            tag_pieces(&st.tags, &mut st.scratch, &mut st.pieces);
            // Counted once per batch: a shared counter touched per piece by every viewer is contended.
            let batch_bytes: usize = st.pieces.iter().map(Bytes::len).sum();
            st.stats.http_flv_bytes_out.fetch_add(batch_bytes as u64, Ordering::Relaxed);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use rill_media::{Bus, BusConfig, CodecConfig, Frame, MediaTime, PublisherInfo, TrackId, Tracks};

    #[test]
    fn flv_refuses_only_streams_with_nothing_it_carries() {
        let vp8 = CodecConfig::Vp8 { width: 640, height: 360 };
        let opus = CodecConfig::Opus { sample_rate: 48_000, channels: 2 };
        let aac = CodecConfig::Aac(rill_media::AacConfig::from_asc(Bytes::from_static(&[0x12, 0x10])).unwrap());
        let tracks = |video: Option<&CodecConfig>, audio: Option<&CodecConfig>| Tracks {
            video: video.cloned(),
            audio: audio.cloned(),
            encoder: None,
        };
        let why = refusal("cam", &tracks(Some(&vp8), Some(&opus))).unwrap();
        assert!(why.contains("vp8 + opus") && why.contains("/play/cam?mode=webrtc"), "{why}");
        assert_eq!(refusal("cam", &tracks(Some(&vp8), Some(&aac))), None, "the AAC track plays");
        assert_eq!(refusal("cam", &tracks(None, None)), None, "no tracks yet: wait for them");
    }

    /// Zero-copy proof for HTTP-FLV: the payload piece the HTTP server is handed is the very
    /// memory the publisher pushed.
    #[tokio::test]
    async fn body_hands_out_the_publishers_payload_memory() {
        let bus = Bus::new(BusConfig { reconnect_grace: std::time::Duration::ZERO, ..Default::default() });
        let path = rill_media::StreamPath::live("z").unwrap();
        let publisher = bus.publish(&path, PublisherInfo { protocol: "test", peer: String::new() }).unwrap();
        let asc = rill_media::AacConfig::from_asc(Bytes::from_static(&[0x12, 0x10])).unwrap();
        publisher.set_tracks(Tracks { video: None, audio: Some(CodecConfig::Aac(asc)), encoder: None });
        let sub = bus.subscribe(&path, "http-flv").unwrap();
        let payload = Bytes::from(vec![7u8; 1000]);
        let time = MediaTime::from_millis(100);
        publisher.push(Frame { track: TrackId::AUDIO, pts: time, dts: time, keyframe: true, payload: payload.clone() });
        drop(publisher);
        let pieces: Vec<Bytes> = body(sub, Arc::default()).map(|p| p.unwrap()).collect().await;
        assert!(pieces.iter().any(|p| p.as_ptr() == payload.as_ptr() && p.len() == payload.len()));
        let flv = pieces.concat();
        assert_eq!(&flv[..3], b"FLV");
        assert_eq!(flv[4], 0b100, "audio only");
        // header + PTS0 + (seq header tag) + its size + (frame tag) + its size
        assert_eq!(flv.len(), 9 + 4 + (11 + 4) + 4 + (11 + 2 + 1000) + 4);
        // Each batch ends on a complete tag: its PreviousTagSize is not held back.
        assert_eq!(&flv[flv.len() - 4..], &(11 + 2 + 1000u32).to_be_bytes());
    }
}
