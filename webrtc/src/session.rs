//! One peer connection, sans-IO: webrtc-rs's `rtc::RTCPeerConnection` (ICE-lite, DTLS-SRTP,
//! NACK responder/generator, RTCP sender/receiver reports) configured from our offer checks,
//! plus the WHIP [`Ingest`] or WHEP [`Egress`] it feeds. Datagrams, timeouts and Bus frames go
//! in; datagrams to send and [`Output`]s come out. No sockets, no clock of its own.

use crate::error::WebRtcError;
use crate::sdp::{self, Kind, Offer, OfferedCodec};
use crate::sdp::{VideoOrigin, WhepVideo};
use crate::whep::{AudioSource, Egress, Media, Origin};
use crate::whip::{Ingest, IngestAction};
use bytes::BytesMut;
use rill_media::track::{CodecConfig, Tracks};
use rill_media::Frame;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_AV1, MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceServer,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How a session is set up (local ICE credentials are ours, so the mux can route by ufrag).
#[derive(Clone, Debug)]
pub struct SessionParams {
    pub ufrag: String,
    pub pwd: String,
    /// Host candidates we advertise (all on the one media port).
    pub candidates: Vec<SocketAddr>,
    pub stun_servers: Vec<String>,
    /// Randomness for SSRCs and RTP offsets.
    pub random: u32,
}

/// What a session tells its driver.
#[derive(Debug)]
pub enum Output {
    /// ICE and DTLS are up: media flows.
    Connected,
    /// The peer connection failed or closed: end the session.
    Closed,
    /// WHIP: announce tracks / push a frame on the Bus.
    Ingest(IngestAction),
    /// WHEP: the viewer asked for a keyframe (PLI/FIR); forward upstream if the source can.
    KeyframeRequested,
}

/// RTCP-derived counters of one session (deltas are taken by the driver).
#[derive(Debug, Default, Clone, Copy)]
pub struct SessionCounters {
    pub nacks_received: u64,
    pub plis_received: u64,
    pub plis_sent: u64,
    /// Cumulative loss the viewer reported (WHEP) — latest value.
    pub packets_lost_reported: u64,
    pub rtt_ms: Option<f64>,
    pub rtp_received: u64,
}

/// What the transcoder can derive for a WHEP viewer.
#[derive(Clone, Copy, Debug, Default)]
pub struct WhepDerived {
    /// An Opus feed for a source whose audio is not Opus.
    pub opus_feed: bool,
    /// The WebRTC video rendition, for a viewer that cannot decode the source's video.
    pub rendition: bool,
}

/// How a WHEP session was set up.
#[derive(Clone, Debug)]
pub struct WhepPlan {
    pub audio: AudioSource,
    /// Where its video comes from; `None`: no video.
    pub video: Option<VideoOrigin>,
    /// Why (the API shows it): the source's profile and the entry it is sent as, or what the
    /// offer lacks that the rendition makes up for.
    pub video_reason: Option<String>,
}

/// WHIP or WHEP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Whip,
    Whep,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Whip => "whip",
            Role::Whep => "whep",
        }
    }
}

pub struct Session {
    pc: RTCPeerConnection,
    role: Role,
    candidates: Vec<SocketAddr>,
    connected: bool,
    closed: bool,
    outputs: Vec<Output>,
    // WHIP
    ingest: Option<Ingest>,
    video_pt: Option<u8>,
    audio_pt: Option<u8>,
    tracks: HashMap<String, (RTCRtpReceiverId, u32)>,
    video_receiver: Option<(RTCRtpReceiverId, u32)>,
    // WHEP
    egress: Option<Egress>,
    video_sender: Option<(RTCRtpSenderId, u32)>,
    audio_sender: Option<(RTCRtpSenderId, u32)>,
    pub counters: SessionCounters,
}

fn feedback() -> Vec<RTCPFeedback> {
    [("nack", ""), ("nack", "pli"), ("ccm", "fir"), ("goog-remb", "")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback { typ: typ.into(), parameter: parameter.into() })
        .collect()
}

fn codec_parameters(c: &OfferedCodec, video: bool) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: match sdp::SendCodec::of(c) {
                _ if !video => MIME_TYPE_OPUS,
                Some(sdp::SendCodec::Vp8) => MIME_TYPE_VP8,
                Some(sdp::SendCodec::Vp9) => MIME_TYPE_VP9,
                Some(sdp::SendCodec::Av1) => MIME_TYPE_AV1,
                Some(sdp::SendCodec::H265) => MIME_TYPE_HEVC,
                Some(sdp::SendCodec::H264) | None => MIME_TYPE_H264,
            }
            .to_owned(),
            clock_rate: c.clock_rate,
            channels: if video { 0 } else { 2 },
            sdp_fmtp_line: c.fmtp.clone(),
            rtcp_feedback: if video { feedback() } else { vec![] },
        },
        payload_type: c.payload_type,
    }
}

impl Session {
    fn build(params: &SessionParams, engine: MediaEngine, now: Instant) -> Result<RTCPeerConnection, WebRtcError> {
        let mut engine = engine;
        let registry = register_default_interceptors(Registry::new(), &mut engine)?;
        let settings = SettingEngineBuilder::new()
            .with_lite(true)
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_ice_credentials(params.ufrag.clone(), params.pwd.clone())
            .build();
        let ice_servers = if params.stun_servers.is_empty() {
            vec![]
        } else {
            vec![RTCIceServer { urls: params.stun_servers.clone(), ..Default::default() }]
        };
        let config = RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build();
        Ok(RTCPeerConnectionBuilder::new()
            .with_configuration(config)
            .with_setting_engine(settings)
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .build(now)?)
    }

    fn answer(
        pc: &mut RTCPeerConnection,
        params: &SessionParams,
        offer: &str,
        now: Instant,
    ) -> Result<String, WebRtcError> {
        let offer = RTCSessionDescription::offer(offer.to_owned())?;
        pc.set_remote_description(now, offer)?;
        for addr in &params.candidates {
            let candidate = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: addr.ip().to_string(),
                    port: addr.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()?;
            pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
        }
        let answer = pc.create_answer(None)?;
        pc.set_local_description(now, answer)?;
        let local = pc.local_description().ok_or_else(|| WebRtcError::Rtc("no local description".into()))?;
        Ok(sdp::candidates_in_accepted_section(&local.sdp))
    }

    fn new(pc: RTCPeerConnection, role: Role, params: &SessionParams) -> Session {
        Session {
            pc,
            role,
            candidates: params.candidates.clone(),
            connected: false,
            closed: false,
            outputs: Vec::new(),
            ingest: None,
            video_pt: None,
            audio_pt: None,
            tracks: HashMap::new(),
            video_receiver: None,
            egress: None,
            video_sender: None,
            audio_sender: None,
            counters: SessionCounters::default(),
        }
    }

    /// A publisher's offer: takes H.264 (packetization-mode 1), VP9, AV1 or VP8 video and Opus audio.
    pub fn whip(
        offer_sdp: &str,
        offer: &Offer,
        params: &SessionParams,
        now: Instant,
    ) -> Result<(Session, String), WebRtcError> {
        let video = offer.section(Kind::Video).and_then(sdp::choose_whip);
        let audio = offer.section(Kind::Audio).and_then(sdp::choose_whip);
        if video.is_none() && audio.is_none() {
            let offered: Vec<String> = offer
                .media
                .iter()
                .flat_map(|m| m.codecs.iter().map(|c| format!("{}/{}", c.name, c.clock_rate)))
                .collect();
            return Err(WebRtcError::NoUsableCodec(format!(
                "WHIP takes H.264 (packetization-mode=1), VP8, VP9 or AV1 video and/or Opus audio; the offer has {}",
                if offered.is_empty() { "no codecs".to_string() } else { offered.join(", ") }
            )));
        }
        let mut engine = MediaEngine::default();
        if let Some(v) = &video {
            engine.register_codec(codec_parameters(v, true), RtpCodecKind::Video)?;
        }
        if let Some(a) = &audio {
            engine.register_codec(codec_parameters(a, false), RtpCodecKind::Audio)?;
        }
        let mut pc = Self::build(params, engine, now)?;
        for (kind, present) in [(RtpCodecKind::Audio, audio.is_some()), (RtpCodecKind::Video, video.is_some())] {
            if present {
                pc.add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    }),
                )?;
            }
        }
        let answer = Self::answer(&mut pc, params, offer_sdp, now)?;
        let mut s = Session::new(pc, Role::Whip, params);
        let video_codec = video.as_ref().and_then(sdp::whip_video_codec);
        s.ingest = Some(Ingest::with_video_codec(video.is_some(), video_codec, audio.is_some(), now));
        s.video_pt = video.map(|c| c.payload_type);
        s.audio_pt = audio.map(|c| c.payload_type);
        Ok((s, answer))
    }

    /// A viewer's offer for a stream with `tracks`; `opus_feed`: a derived Opus feed exists
    /// (or can be made) for a non-Opus audio track; `rendition`: the WebRTC video rendition can
    /// be made for a viewer that cannot decode the source's video.
    pub fn whep(
        offer_sdp: &str,
        offer: &Offer,
        tracks: &Tracks,
        derived: WhepDerived,
        params: &SessionParams,
        now: Instant,
    ) -> Result<(Session, String, WhepPlan), WebRtcError> {
        let video: Option<WhepVideo> =
            sdp::plan_whep_video(offer.section(Kind::Video), tracks.video.as_ref(), derived.rendition)
                .map_err(WebRtcError::NoUsableCodec)?;
        let audio_source = match &tracks.audio {
            Some(CodecConfig::Opus { .. }) => AudioSource::Source,
            Some(_) if derived.opus_feed => AudioSource::OpusFeed,
            _ => AudioSource::None,
        };
        let audio = match audio_source {
            AudioSource::None => None,
            _ => offer.section(Kind::Audio).and_then(sdp::choose_opus),
        };
        if video.is_none() && audio.is_none() {
            let source = match (&tracks.video, &tracks.audio) {
                (Some(v), _) => format!("{} video and the offer asks for no video", v.name()),
                (None, Some(a)) => format!("{} audio only, and no Opus feed is available", a.name()),
                (None, None) => "no tracks yet".to_string(),
            };
            return Err(WebRtcError::NoUsableCodec(format!("the stream is {source}")));
        }
        let video_origin = video.as_ref().map_or(VideoOrigin::Source, |v| v.origin);
        let video_reason = video.as_ref().map(|v| v.reason.clone());
        let video_send = video.as_ref().map_or(sdp::SendCodec::H264, |v| v.send);
        let video = video.map(|v| v.codec);
        let mut engine = MediaEngine::default();
        if let Some(v) = &video {
            engine.register_codec(codec_parameters(v, true), RtpCodecKind::Video)?;
        }
        if let Some(a) = &audio {
            engine.register_codec(codec_parameters(a, false), RtpCodecKind::Audio)?;
        }
        let mut pc = Self::build(params, engine, now)?;
        let mut senders = [None, None];
        for (i, (kind, codec)) in
            [(RtpCodecKind::Video, video.as_ref()), (RtpCodecKind::Audio, audio.as_ref())].into_iter().enumerate()
        {
            let Some(codec) = codec else { continue };
            let ssrc = params.random.wrapping_mul(2654435761).wrapping_add(i as u32 * 7919) | 1;
            let track = MediaStreamTrack::new(
                "rill".to_owned(),
                format!("rill-{}", if i == 0 { "video" } else { "audio" }),
                format!("rill-{}", if i == 0 { "video" } else { "audio" }),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                    codec: codec_parameters(codec, i == 0).rtp_codec,
                    ..Default::default()
                }],
            );
            senders[i] = Some((pc.add_track(track)?, ssrc, codec.payload_type));
        }
        let answer = Self::answer(&mut pc, params, offer_sdp, now)?;
        let mut s = Session::new(pc, Role::Whep, params);
        let [v, a] = senders;
        s.video_sender = v.map(|(id, ssrc, _)| (id, ssrc));
        s.audio_sender = a.map(|(id, ssrc, _)| (id, ssrc));
        let audio_source = if a.is_some() { audio_source } else { AudioSource::None };
        let mut egress = Egress::new(
            v.map(|(_, ssrc, pt)| (pt, ssrc, video_send)),
            a.map(|(_, ssrc, pt)| (pt, ssrc)),
            audio_source,
            video_origin,
            params.random,
        );
        egress.set_tracks(tracks, Origin::Source);
        s.egress = Some(egress);
        let plan = WhepPlan { audio: audio_source, video: v.is_some().then_some(video_origin), video_reason };
        Ok((s, answer, plan))
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The local address the ICE agent knows for a datagram from `peer`: the socket is bound
    /// to one port on every interface and cannot tell which address a datagram was sent to,
    /// so a loopback peer maps to the loopback candidate and others to the first candidate of
    /// their family. ICE-lite only answers checks, so this choice never misroutes a reply.
    fn local_for(&self, peer: SocketAddr) -> SocketAddr {
        self.candidates
            .iter()
            .find(|c| c.ip().is_loopback() == peer.ip().is_loopback() && c.is_ipv4() == peer.is_ipv4())
            .or_else(|| self.candidates.iter().find(|c| c.is_ipv4() == peer.is_ipv4()))
            .or(self.candidates.first())
            .copied()
            .unwrap_or(peer)
    }

    /// A datagram from the peer.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: BytesMut) {
        let transport = TransportContext {
            local_addr: self.local_for(from),
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        };
        tracing::trace!(%from, local = %transport.local_addr, len = data.len(), first = data.first().copied(), "datagram");
        if let Err(e) = self.pc.handle_read(TaggedBytesMut { now, transport, message: data }) {
            tracing::debug!(error = %e, "datagram refused");
        }
        self.drain(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(error = %e, "timeout handling failed");
        }
        self.drain(now);
    }

    /// When [`Session::handle_timeout`] is due next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.pc.poll_timeout()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.pc.poll_write().map(|m| (m.transport.peer_addr, m.message))
    }

    /// Outputs accumulated since the last call.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// WHEP: the tracks of the Bus stream `origin` changed.
    pub fn set_tracks(&mut self, tracks: &Tracks, origin: Origin) {
        if let Some(e) = &mut self.egress {
            e.set_tracks(tracks, origin);
        }
    }

    /// WHEP: frames from the Bus stream `origin`.
    pub fn send_frames(&mut self, now: Instant, frames: &[Frame], origin: Origin) {
        if !self.connected {
            return;
        }
        let Some(egress) = &mut self.egress else { return };
        let packets = egress.frames(frames, origin);
        if egress.take_keyframe_wanted() {
            self.outputs.push(Output::KeyframeRequested);
        }
        for (media, packet) in packets {
            let sender = match media {
                Media::Video => self.video_sender,
                Media::Audio => self.audio_sender,
            };
            let Some((id, _)) = sender else { continue };
            if let Some(mut s) = self.pc.rtp_sender(id) {
                if let Err(e) = s.write_rtp(now, packet) {
                    tracing::debug!(error = %e, "write_rtp failed");
                }
            }
        }
    }

    /// Access units the WHIP depacketizer dropped so far.
    pub fn ingest_dropped(&self) -> u64 {
        self.ingest.as_ref().map_or(0, |i| i.video_dropped())
    }

    /// Egress counters (WHEP).
    pub fn egress(&self) -> Option<&Egress> {
        self.egress.as_ref()
    }

    /// WHIP: ask the publisher for a keyframe (PLI on its video stream).
    pub fn request_keyframe(&mut self, now: Instant) -> bool {
        let Some((receiver, ssrc)) = self.video_receiver else { return false };
        let Some(mut r) = self.pc.rtp_receiver(receiver) else { return false };
        let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
        let ok = r.write_rtcp(now, vec![Box::new(pli)]).is_ok();
        if ok {
            self.counters.plis_sent += 1;
        }
        ok
    }

    /// Ends the peer connection.
    pub fn close(&mut self) {
        let _ = self.pc.close();
        self.closed = true;
    }

    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    tracing::debug!(%state, "peer connection state");
                    match state {
                        RTCPeerConnectionState::Connected if !self.connected => {
                            self.connected = true;
                            self.outputs.push(Output::Connected);
                        }
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed if !self.closed => {
                            self.closed = true;
                            self.outputs.push(Output::Closed);
                        }
                        _ => {}
                    }
                }
                RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) => {
                    tracing::debug!(%state, "ICE state");
                    if matches!(state, RTCIceConnectionState::Failed | RTCIceConnectionState::Closed) && !self.closed {
                        self.closed = true;
                        self.outputs.push(Output::Closed);
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    self.tracks.insert(init.track_id.clone(), (init.receiver_id, init.ssrc));
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(track_id, packet) => self.on_rtp(now, &track_id, packet),
                RTCMessage::RtcpPacket(_, packets) => {
                    for p in packets {
                        self.on_rtcp(&*p);
                    }
                }
                _ => {}
            }
        }
    }

    fn on_rtp(&mut self, now: Instant, track_id: &str, packet: rtc::rtp::packet::Packet) {
        self.counters.rtp_received += 1;
        let Some(ingest) = &mut self.ingest else { return };
        let pt = packet.header.payload_type;
        let h = &packet.header;
        let actions = if Some(pt) == self.video_pt {
            if self.video_receiver.is_none() {
                self.video_receiver = self.tracks.get(track_id).map(|(r, _)| (*r, h.ssrc));
            }
            ingest.push_video(now, h.sequence_number, h.timestamp, h.marker, &packet.payload)
        } else if Some(pt) == self.audio_pt {
            ingest.push_audio(now, h.timestamp, &packet.payload)
        } else {
            return;
        };
        self.outputs.extend(actions.into_iter().map(Output::Ingest));
    }

    fn on_rtcp(&mut self, p: &dyn rtc::rtcp::packet::Packet) {
        let any = p.as_any();
        if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
            self.counters.plis_received += 1;
            if let Some(e) = &mut self.egress {
                e.keyframe_requested();
            }
            self.outputs.push(Output::KeyframeRequested);
        } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
            self.counters.nacks_received +=
                nack.nacks.iter().map(|n| 1 + n.lost_packets.count_ones() as u64).sum::<u64>();
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            let ours: Vec<u32> = [self.video_sender, self.audio_sender].iter().flatten().map(|(_, s)| *s).collect();
            let mut lost = 0u64;
            for report in rr.reports.iter().filter(|r| ours.contains(&r.ssrc)) {
                lost += report.total_lost as u64;
                if report.last_sender_report != 0 {
                    let now = ntp_middle_32(SystemTime::now());
                    let rtt = now.wrapping_sub(report.last_sender_report).wrapping_sub(report.delay);
                    if rtt < 65536 * 10 {
                        self.counters.rtt_ms = Some(rtt as f64 * 1000.0 / 65536.0);
                    }
                }
            }
            if !rr.reports.is_empty() {
                self.counters.packets_lost_reported = lost;
            }
        }
    }
}

/// The middle 32 bits of the NTP time of `t` (RFC 3550 §4: LSR/DLSR units of 1/65536 s).
fn ntp_middle_32(t: SystemTime) -> u32 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (((secs & 0xffff) << 16) | (frac >> 16)) as u32
}
