//! A WHIP session driven without sockets: a webrtc-rs (`rtc`) peer offers H.264 and publishes
//! through an in-memory "network" to our sans-IO [`Session`] on a virtual clock; the session
//! completes ICE-lite + DTLS-SRTP and turns the peer's RTP into Bus frames.

use bytes::BytesMut;
use rill_webrtc::sdp::Offer;
use rill_webrtc::session::{Output, Session, SessionParams};
use rill_webrtc::whip::IngestAction;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_H264};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03,
    0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

fn client(now: Instant, addr: SocketAddr) -> (RTCPeerConnection, rtc::rtp_transceiver::RTCRtpSenderId) {
    let codec = RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".to_owned(),
        rtcp_feedback: vec![],
    };
    let mut engine = MediaEngine::default();
    engine
        .register_codec(RTCRtpCodecParameters { rtp_codec: codec.clone(), payload_type: 102 }, RtpCodecKind::Video)
        .unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut engine).unwrap();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    let track = MediaStreamTrack::new(
        "s".into(),
        "v".into(),
        "v".into(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(4242), ..Default::default() },
            codec,
            ..Default::default()
        }],
    );
    let sender = pc.add_track(track).unwrap();
    let offer = pc.create_offer(None).unwrap();
    pc.set_local_description(now, offer).unwrap();
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .unwrap();
    pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json().unwrap()).unwrap();
    (pc, sender)
}

#[test]
fn whip_pair_connects_and_publishes_h264() {
    let t0 = Instant::now();
    let mut now = t0;
    let client_addr: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let server_addr: SocketAddr = "10.0.0.2:8189".parse().unwrap();
    let (mut peer, sender) = client(now, client_addr);
    let offer_sdp = peer.local_description().unwrap().sdp;
    let offer = Offer::parse(offer_sdp.as_bytes()).unwrap();
    let params = SessionParams {
        ufrag: "srvufrag".into(),
        pwd: "srvpassword0123456789abc".into(),
        candidates: vec![server_addr],
        stun_servers: vec![],
        random: 7,
    };
    let (mut session, answer) = Session::whip(&offer_sdp, &offer, &params, now).unwrap();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=ice-ufrag:srvufrag"), "{answer}");
    peer.set_remote_description(now, RTCSessionDescription::answer(answer).unwrap()).unwrap();

    let mut connected = false;
    let mut frames = Vec::new();
    let mut tracks = None;
    let mut sent_media = false;
    let mut seq = 1u16;
    while now < t0 + Duration::from_secs(10) {
        // Network: everything each side wants to send arrives at once.
        while let Some(m) = peer.poll_write() {
            assert_eq!(m.transport.peer_addr, server_addr);
            session.handle_datagram(now, client_addr, m.message);
        }
        while let Some((to, data)) = session.poll_transmit() {
            assert_eq!(to, client_addr);
            let transport = TransportContext {
                local_addr: client_addr,
                peer_addr: server_addr,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            };
            peer.handle_read(TaggedBytesMut { now, transport, message: BytesMut::from(&data[..]) }).unwrap();
        }
        while peer.poll_event().is_some() {}
        while peer.poll_read().is_some() {}
        for output in session.take_outputs() {
            match output {
                Output::Connected => connected = true,
                Output::Ingest(IngestAction::SetTracks(t)) => tracks = Some(t),
                Output::Ingest(IngestAction::Frame(f)) => frames.push(f),
                _ => {}
            }
        }
        if connected && !sent_media {
            // STAP-A(SPS, PPS) then an IDR, then a P-frame, one frame per 33 ms of RTP time.
            let mut stap = vec![24u8];
            for n in [SPS, PPS] {
                stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
                stap.extend_from_slice(n);
            }
            let packets: Vec<(u32, bool, Vec<u8>)> =
                vec![(3000, false, stap), (3000, true, vec![0x65, 1, 2, 3]), (6000, true, vec![0x41, 4, 5])];
            let mut s = peer.rtp_sender(sender).unwrap();
            for (ts, marker, payload) in packets {
                let header = Header {
                    version: 2,
                    marker,
                    payload_type: 102,
                    sequence_number: seq,
                    timestamp: ts,
                    ssrc: 4242,
                    ..Default::default()
                };
                seq += 1;
                s.write_rtp(now, Packet { header, payload: payload.into() }).unwrap();
            }
            sent_media = true;
        }
        if frames.len() >= 2 {
            break;
        }
        now += Duration::from_millis(5);
        if peer.poll_timeout().is_some_and(|t| t <= now) {
            peer.handle_timeout(now).unwrap();
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
    }
    assert!(connected, "ICE-lite + DTLS completed");
    let tracks = tracks.expect("tracks announced");
    assert!(matches!(tracks.video, Some(rill_media::CodecConfig::Avc(_))));
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(frames[0].keyframe && !frames[1].keyframe);
    assert_eq!(&frames[0].payload[..], &[0, 0, 0, 4, 0x65, 1, 2, 3]);
    assert_eq!((frames[1].pts - frames[0].pts).as_millis(), 33);
}
