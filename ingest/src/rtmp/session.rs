//! The server side of an RTMP connection, without I/O: feed it received bytes, drain the
//! bytes it wants sent and the events it reports. Handshake and AMF0 messages come from
//! `rml_rtmp`; chunking is [`super::chunk`]'s.
//!
//! ```text
//! feed(bytes) ─▶ handshake ─▶ ChunkDecoder ─▶ messages ─▶ poll_event(): Publish/Play requests, media
//! accept_*/reject_*/send_media ─▶ ChunkEncoder ─▶ take_output(): Bytes pieces for a vectored write
//! ```

use super::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, ChunkLimits, Message, OutHeader};
use bytes::Bytes;
use rill_media::flv::{TagBody, TagType};
use rml_rtmp::handshake::{Handshake, HandshakeError, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::{PeerBandwidthLimitType, RtmpMessage, UserControlEventType};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;
use std::collections::{HashMap, VecDeque};
use thiserror::Error;

/// Limits and parameters of a server session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub limits: ChunkLimits,
    /// Chunk size we send with (large: fewer chunk headers per frame).
    pub out_chunk_size: u32,
    /// Window acknowledgement size we announce.
    pub window_ack_size: u32,
    /// Largest AMF command or data message accepted (bounds AMF nesting, too).
    pub max_command_size: usize,
    /// Longest app name or stream key/name accepted.
    pub max_name_len: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            limits: ChunkLimits::default(),
            out_chunk_size: 65536,
            window_ack_size: 2_500_000,
            max_command_size: 8192,
            max_name_len: 256,
        }
    }
}

#[derive(Debug, Error)]
pub enum SessionError {
    #[error("handshake failed: {0:?}")]
    Handshake(HandshakeError),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("{kind} message of {size} bytes is over the limit of {limit}")]
    CommandTooLarge { kind: &'static str, size: usize, limit: usize },
    #[error("malformed {0} message")]
    Malformed(&'static str),
    #[error("{what} of {len} bytes is longer than the limit of {limit}")]
    NameTooLong { what: &'static str, len: usize, limit: usize },
    #[error("{0} before connect")]
    NotConnected(&'static str),
    #[error("cannot serialize {0} message")]
    Serialize(&'static str),
}

/// What the session reports to its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The client asked to publish `key` in `app`; answer with accept/reject_publish.
    /// `query` is what followed a `?` in the name (`rtmp://HOST/live/<name>?token=…`).
    PublishRequested { app: String, key: String, query: Option<String> },
    /// The client asked to play `name` in `app`; answer with accept/reject_play.
    PlayRequested { app: String, name: String, query: Option<String> },
    /// onMetaData from the publisher.
    Metadata { encoder: Option<String> },
    /// A video message body (an FLV video tag body) with its RTMP timestamp.
    Video { timestamp: u32, body: Bytes },
    /// An audio message body (an FLV audio tag body) with its RTMP timestamp.
    Audio { timestamp: u32, body: Bytes },
    /// The client unpublished or closed its stream.
    StreamClosed,
}

enum Phase {
    Handshake(Box<Handshake>),
    Messages,
}

const CSID_CONTROL: u32 = 2;
/// Longest query after a stream name (it carries a token: `?token=<JWT>`), and longest token
/// given in place of a stream key.
const MAX_QUERY_LEN: usize = 4096;
const CSID_COMMAND: u32 = 3;
const CSID_AUDIO: u32 = 4;
const CSID_VIDEO: u32 = 6;
const STREAM_ID: u32 = 1;

/// A server-side RTMP session.
pub struct ServerSession {
    config: SessionConfig,
    phase: Phase,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    output: Vec<Bytes>,
    events: VecDeque<SessionEvent>,
    app: Option<String>,
    pending: Option<(f64, u32)>,
    media_stream_id: Option<u32>,
    received: u64,
    acked: u64,
    peer_window: u32,
}

impl ServerSession {
    pub fn new(config: SessionConfig) -> Self {
        ServerSession {
            decoder: ChunkDecoder::new(config.limits.clone()),
            encoder: ChunkEncoder::new(128),
            config,
            phase: Phase::Handshake(Box::new(Handshake::new(PeerType::Server))),
            output: Vec::new(),
            events: VecDeque::new(),
            app: None,
            pending: None,
            media_stream_id: None,
            received: 0,
            acked: 0,
            peer_window: 0,
        }
    }

    /// A session whose handshake is already done, for fuzzing and tests of the message layer.
    pub fn after_handshake(config: SessionConfig) -> Self {
        ServerSession { phase: Phase::Messages, ..ServerSession::new(config) }
    }

    /// Feeds bytes received from the peer. An error means the connection must be closed.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), SessionError> {
        self.received += data.len() as u64;
        let mut data = data;
        let leftover;
        if let Phase::Handshake(handshake) = &mut self.phase {
            match handshake.process_bytes(data).map_err(SessionError::Handshake)? {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    if !response_bytes.is_empty() {
                        self.output.push(Bytes::from(response_bytes));
                    }
                    return Ok(());
                }
                HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                    if !response_bytes.is_empty() {
                        self.output.push(Bytes::from(response_bytes));
                    }
                    self.phase = Phase::Messages;
                    leftover = remaining_bytes;
                    data = &leftover;
                }
            }
        }
        self.decoder.push(data);
        while let Some(message) = self.decoder.next_message()? {
            self.handle_message(message)?;
        }
        if self.peer_window > 0 && self.received - self.acked >= self.peer_window as u64 {
            self.acked = self.received;
            self.send(CSID_CONTROL, 0, RtmpMessage::Acknowledgement { sequence_number: self.received as u32 })?;
        }
        Ok(())
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Moves the bytes to send (in order) into `out`.
    pub fn take_output(&mut self, out: &mut Vec<Bytes>) {
        out.append(&mut self.output);
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// Confirms a publish request: media messages will now be reported.
    pub fn accept_publish(&mut self) -> Result<(), SessionError> {
        let (_, stream_id) = self.pending.take().unwrap_or((0.0, STREAM_ID));
        self.media_stream_id = Some(stream_id);
        self.on_status(stream_id, "status", "NetStream.Publish.Start", "publishing")
    }

    /// Refuses a publish request with an RTMP error status (e.g. `NetStream.Publish.BadName`).
    pub fn reject_publish(&mut self, code: &str, description: &str) -> Result<(), SessionError> {
        let (_, stream_id) = self.pending.take().unwrap_or((0.0, STREAM_ID));
        self.on_status(stream_id, "error", code, description)
    }

    /// Confirms a play request; media may then be sent with [`Self::send_media`].
    pub fn accept_play(&mut self) -> Result<(), SessionError> {
        let (_, stream_id) = self.pending.take().unwrap_or((0.0, STREAM_ID));
        self.media_stream_id = Some(stream_id);
        self.send(
            CSID_CONTROL,
            0,
            RtmpMessage::UserControl {
                event_type: UserControlEventType::StreamBegin,
                stream_id: Some(stream_id),
                buffer_length: None,
                timestamp: None,
            },
        )?;
        self.on_status(stream_id, "status", "NetStream.Play.Reset", "playing and resetting")?;
        self.on_status(stream_id, "status", "NetStream.Play.Start", "started playing")?;
        let sample_access = vec![
            Amf0Value::Utf8String("|RtmpSampleAccess".into()),
            Amf0Value::Boolean(false),
            Amf0Value::Boolean(false),
        ];
        self.send(CSID_COMMAND, stream_id, RtmpMessage::Amf0Data { values: sample_access })
    }

    /// Refuses a play request (e.g. `NetStream.Play.StreamNotFound`).
    pub fn reject_play(&mut self, code: &str, description: &str) -> Result<(), SessionError> {
        let (_, stream_id) = self.pending.take().unwrap_or((0.0, STREAM_ID));
        self.on_status(stream_id, "error", code, description)
    }

    /// Queues one audio/video message for a player. The payload is not copied.
    pub fn send_media(&mut self, body: &TagBody) {
        let (csid, type_id) = match body.tag_type {
            TagType::Audio => (CSID_AUDIO, 8),
            TagType::Video => (CSID_VIDEO, 9),
            TagType::Script => (CSID_COMMAND, 18),
        };
        let stream_id = self.media_stream_id.unwrap_or(STREAM_ID);
        let header = OutHeader { csid, timestamp: body.timestamp_ms, type_id, stream_id };
        self.encoder.encode(header, body.prefix(), &body.payload, &mut self.output);
    }

    fn handle_message(&mut self, message: Message) -> Result<(), SessionError> {
        match message.type_id {
            1 => {
                let size = message.payload.get(..4).ok_or(SessionError::Malformed("SetChunkSize"))?;
                self.decoder.set_chunk_size(u32::from_be_bytes([size[0], size[1], size[2], size[3]]))?;
            }
            2 => {
                let id = message.payload.get(..4).ok_or(SessionError::Malformed("Abort"))?;
                self.decoder.abort(u32::from_be_bytes([id[0], id[1], id[2], id[3]]));
            }
            5 => {
                let size = message.payload.get(..4).ok_or(SessionError::Malformed("WindowAcknowledgementSize"))?;
                self.peer_window = u32::from_be_bytes([size[0], size[1], size[2], size[3]]);
            }
            8 | 9 if self.media_stream_id == Some(message.stream_id) && self.pending.is_none() => {
                let event = if message.type_id == 8 {
                    SessionEvent::Audio { timestamp: message.timestamp, body: message.payload }
                } else {
                    SessionEvent::Video { timestamp: message.timestamp, body: message.payload }
                };
                self.events.push_back(event);
            }
            15 | 18 => {
                let values = self.amf0_values(&message, "data")?;
                self.handle_data(values);
            }
            17 | 20 => {
                let mut values = self.amf0_values(&message, "command")?.into_iter();
                let (Some(Amf0Value::Utf8String(name)), Some(Amf0Value::Number(txn))) = (values.next(), values.next())
                else {
                    return Err(SessionError::Malformed("command (expected name and transaction id)"));
                };
                let object = values.next().unwrap_or(Amf0Value::Null);
                self.handle_command(&name, txn, object, values.collect(), message.stream_id)?;
            }
            // Acknowledgement, user control, peer bandwidth, media before publish: nothing to do.
            _ => {}
        }
        Ok(())
    }

    /// Decodes the AMF0 values of a command or data message. Not `rml_rtmp`'s deserializers:
    /// its command deserializer panics on a command with fewer than three values (`drain(..3)`)
    /// and `rml_amf0` recurses without a depth bound (see [`super::amf0`]).
    fn amf0_values(&self, message: &Message, kind: &'static str) -> Result<Vec<Amf0Value>, SessionError> {
        let limit = self.config.max_command_size;
        if message.payload.len() > limit {
            return Err(SessionError::CommandTooLarge { kind, size: message.payload.len(), limit });
        }
        // AMF3-flagged messages (15, 17) carry AMF0 after a format byte.
        let skip = usize::from(matches!(message.type_id, 15 | 17)).min(message.payload.len());
        super::amf0::decode_all(&message.payload[skip..]).map_err(|_| SessionError::Malformed(kind))
    }

    fn handle_data(&mut self, values: Vec<Amf0Value>) {
        let mut values = values.into_iter().peekable();
        if matches!(values.peek(), Some(Amf0Value::Utf8String(s)) if s == "@setDataFrame") {
            values.next();
        }
        if !matches!(values.next(), Some(Amf0Value::Utf8String(s)) if s == "onMetaData") {
            return;
        }
        let properties = match values.next() {
            Some(Amf0Value::Object(p)) => p,
            _ => HashMap::new(),
        };
        let encoder = properties.get("encoder").and_then(|v| match v {
            Amf0Value::Utf8String(s) => Some(s.chars().take(128).collect()),
            _ => None,
        });
        self.events.push_back(SessionEvent::Metadata { encoder });
    }

    fn handle_command(
        &mut self,
        name: &str,
        txn: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
        stream_id: u32,
    ) -> Result<(), SessionError> {
        match name {
            "connect" => {
                let (app, four_ccs) = match object {
                    Amf0Value::Object(mut p) => {
                        let app = match p.remove("app") {
                            Some(Amf0Value::Utf8String(app)) => app,
                            _ => String::new(),
                        };
                        (app, p.remove("fourCcList"))
                    }
                    _ => (String::new(), None),
                };
                let app = app.split('?').next().unwrap_or("").trim_matches('/').to_string();
                self.check_len("app name", &app)?;
                self.app = Some(app);
                self.send(CSID_CONTROL, 0, RtmpMessage::WindowAcknowledgement { size: self.config.window_ack_size })?;
                self.send(
                    CSID_CONTROL,
                    0,
                    RtmpMessage::SetPeerBandwidth {
                        size: self.config.window_ack_size,
                        limit_type: PeerBandwidthLimitType::Dynamic,
                    },
                )?;
                self.send(CSID_CONTROL, 0, RtmpMessage::SetChunkSize { size: self.config.out_chunk_size })?;
                self.encoder = ChunkEncoder::new(self.config.out_chunk_size);
                let mut properties =
                    object_of([("fmsVer", string("FMS/3,0,1,123")), ("capabilities", Amf0Value::Number(31.0))]);
                if let (Some(Amf0Value::StrictArray(requested)), Amf0Value::Object(properties)) =
                    (four_ccs, &mut properties)
                {
                    enhanced_rtmp_answer(&requested, properties);
                }
                let information = object_of([
                    ("level", string("status")),
                    ("code", string("NetConnection.Connect.Success")),
                    ("description", string("Connection succeeded.")),
                    ("objectEncoding", Amf0Value::Number(0.0)),
                ]);
                self.command(0, "_result", txn, properties, vec![information])?;
            }
            "createStream" => {
                self.require_connected("createStream")?;
                self.command(0, "_result", txn, Amf0Value::Null, vec![Amf0Value::Number(STREAM_ID as f64)])?;
            }
            "publish" | "play" if self.media_stream_id.is_some() || self.pending.is_some() => {
                tracing::debug!(command = name, "ignoring a second publish/play on one connection");
            }
            "publish" | "play" => {
                let app = self.require_connected(if name == "publish" { "publish" } else { "play" })?.to_string();
                let target = match args.into_iter().next() {
                    Some(Amf0Value::Utf8String(s)) => s,
                    _ => return Err(SessionError::Malformed("publish/play without a stream name")),
                };
                let (target, query) = match target.split_once('?') {
                    Some((name, query)) => (name.to_string(), Some(query.to_string())),
                    None => (target, None),
                };
                if rill_media::access::looks_like_token(&target) {
                    // A publish token given as the stream key (longer than names are).
                    if target.len() > MAX_QUERY_LEN {
                        let (len, limit) = (target.len(), MAX_QUERY_LEN);
                        return Err(SessionError::NameTooLong { what: "token", len, limit });
                    }
                } else {
                    self.check_len("stream name", &target)?;
                }
                if let Some(query) = &query {
                    if query.len() > MAX_QUERY_LEN {
                        return Err(SessionError::NameTooLong {
                            what: "stream name query",
                            len: query.len(),
                            limit: MAX_QUERY_LEN,
                        });
                    }
                }
                self.pending = Some((txn, if stream_id == 0 { STREAM_ID } else { stream_id }));
                self.events.push_back(if name == "publish" {
                    SessionEvent::PublishRequested { app, key: target, query }
                } else {
                    SessionEvent::PlayRequested { app, name: target, query }
                });
            }
            "deleteStream" | "closeStream" | "FCUnpublish" => {
                if self.media_stream_id.take().is_some() {
                    self.events.push_back(SessionEvent::StreamClosed);
                }
            }
            // releaseStream, FCPublish, getStreamLength, _checkbw and anything unknown: no answer needed.
            other => tracing::debug!(command = other, "ignoring RTMP command"),
        }
        Ok(())
    }

    fn require_connected(&self, what: &'static str) -> Result<&str, SessionError> {
        self.app.as_deref().ok_or(SessionError::NotConnected(what))
    }

    fn check_len(&self, what: &'static str, s: &str) -> Result<(), SessionError> {
        if s.len() > self.config.max_name_len {
            return Err(SessionError::NameTooLong { what, len: s.len(), limit: self.config.max_name_len });
        }
        Ok(())
    }

    fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) -> Result<(), SessionError> {
        let info = object_of([("level", string(level)), ("code", string(code)), ("description", string(description))]);
        self.command(stream_id, "onStatus", 0.0, Amf0Value::Null, vec![info])
    }

    fn command(
        &mut self,
        stream_id: u32,
        name: &str,
        txn: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Result<(), SessionError> {
        let message = RtmpMessage::Amf0Command {
            command_name: name.into(),
            transaction_id: txn,
            command_object: object,
            additional_arguments: args,
        };
        self.send(CSID_COMMAND, stream_id, message)
    }

    fn send(&mut self, csid: u32, stream_id: u32, message: RtmpMessage) -> Result<(), SessionError> {
        let type_id = message.get_message_type_id();
        let payload = message
            .into_message_payload(RtmpTimestamp::new(0), stream_id)
            .map_err(|_| SessionError::Serialize("control"))?;
        self.encoder.encode(OutHeader { csid, timestamp: 0, type_id, stream_id }, &[], &payload.data, &mut self.output);
        Ok(())
    }
}

/// Enhanced RTMP: the client listed the FourCCs it may send (`fourCcList`, and `"*"` for any);
/// the answer lists those the server takes (v1) and, per FourCC, that it forwards them
/// (`videoFourCcInfoMap`, v2: `CanForward` = 4).
fn enhanced_rtmp_answer(requested: &[Amf0Value], properties: &mut HashMap<String, Amf0Value>) {
    let wildcard = requested.iter().any(|v| matches!(v, Amf0Value::Utf8String(s) if s == "*"));
    let accepted: Vec<&str> = rill_media::flv::ENHANCED_VIDEO_FOURCCS
        .into_iter()
        .filter(|ours| wildcard || requested.iter().any(|v| matches!(v, Amf0Value::Utf8String(s) if s == ours)))
        .collect();
    const CAN_FORWARD: f64 = 4.0;
    let info = accepted.iter().map(|f| (f.to_string(), Amf0Value::Number(CAN_FORWARD))).collect();
    properties.insert("fourCcList".into(), Amf0Value::StrictArray(accepted.into_iter().map(string).collect()));
    properties.insert("videoFourCcInfoMap".into(), Amf0Value::Object(info));
}

fn string(s: &str) -> Amf0Value {
    Amf0Value::Utf8String(s.into())
}

fn object_of<const N: usize>(pairs: [(&str, Amf0Value); N]) -> Amf0Value {
    Amf0Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(name: &str, txn: f64, args: Vec<Amf0Value>) -> Vec<u8> {
        let object = if name == "connect" { object_of([("app", string("live"))]) } else { Amf0Value::Null };
        let message = RtmpMessage::Amf0Command {
            command_name: name.into(),
            transaction_id: txn,
            command_object: object,
            additional_arguments: args,
        };
        chunked(20, 0, message.into_message_payload(RtmpTimestamp::new(0), 1).unwrap().data)
    }

    fn chunked(type_id: u8, timestamp: u32, body: Bytes) -> Vec<u8> {
        let mut out = Vec::new();
        ChunkEncoder::new(128).encode(OutHeader { csid: 3, timestamp, type_id, stream_id: 1 }, &[], &body, &mut out);
        out.concat()
    }

    fn events(session: &mut ServerSession) -> Vec<SessionEvent> {
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    /// A publish token given as the stream key may be longer than names; a name may not.
    #[test]
    fn tokens_as_keys_may_be_longer_than_names() {
        let token = format!("eyJ{}.{}.{}", "a".repeat(200), "b".repeat(200), "c".repeat(43));
        for (target, accepted) in [(token.clone(), true), ("n".repeat(300), false), (format!("n?token={token}"), true)]
        {
            let mut s = ServerSession::after_handshake(SessionConfig::default());
            s.feed(&command("connect", 1.0, vec![])).unwrap();
            s.feed(&command("createStream", 2.0, vec![])).unwrap();
            let fed = s.feed(&command("publish", 3.0, vec![string(&target), string("live")]));
            assert_eq!(fed.is_ok(), accepted, "{}", &target[..20]);
        }
    }

    #[test]
    fn publish_flow() {
        let mut s = ServerSession::after_handshake(SessionConfig::default());
        s.feed(&command("connect", 1.0, vec![])).unwrap();
        assert_eq!(s.app(), Some("live"));
        s.feed(&command("createStream", 2.0, vec![])).unwrap();
        s.feed(&command("publish", 3.0, vec![string("key?token=1"), string("live")])).unwrap();
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::PublishRequested {
                app: "live".into(),
                key: "key".into(),
                query: Some("token=1".into())
            }]
        );
        // Media before the publish is accepted is ignored.
        s.feed(&chunked(9, 40, Bytes::from_static(&[0x17, 1, 0, 0, 0]))).unwrap();
        assert!(events(&mut s).is_empty());
        s.accept_publish().unwrap();
        let mut out = Vec::new();
        s.take_output(&mut out);
        let wire = out.concat();
        assert!(wire.windows(23).any(|w| w == b"NetStream.Publish.Start"));
        s.feed(&chunked(9, 80, Bytes::from_static(&[0x17, 1, 0, 0, 0]))).unwrap();
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::Video { timestamp: 80, body: Bytes::from_static(&[0x17, 1, 0, 0, 0]) }]
        );
        s.feed(&command("deleteStream", 4.0, vec![Amf0Value::Number(1.0)])).unwrap();
        assert_eq!(events(&mut s), vec![SessionEvent::StreamClosed]);
    }

    #[test]
    fn enhanced_rtmp_connect_is_answered_with_the_fourccs_we_take() {
        let connect = |four_ccs: &[&str]| {
            let list = Amf0Value::StrictArray(four_ccs.iter().map(|f| string(f)).collect());
            let message = RtmpMessage::Amf0Command {
                command_name: "connect".into(),
                transaction_id: 1.0,
                command_object: object_of([("app", string("live")), ("fourCcList", list)]),
                additional_arguments: vec![],
            };
            let mut s = ServerSession::after_handshake(SessionConfig::default());
            s.feed(&chunked(20, 0, message.into_message_payload(RtmpTimestamp::new(0), 1).unwrap().data)).unwrap();
            let mut out = Vec::new();
            s.take_output(&mut out);
            out.concat()
        };
        let has = |wire: &[u8], text: &str| wire.windows(text.len()).any(|w| w == text.as_bytes());
        let wire = connect(&["hvc1", "vp08", "av01"]);
        assert!(has(&wire, "fourCcList") && has(&wire, "videoFourCcInfoMap"));
        assert!(has(&wire, "hvc1") && has(&wire, "av01"));
        assert!(!has(&wire, "vp08"), "a FourCC we do not take is not echoed");
        let wire = connect(&["*"]);
        assert!(has(&wire, "hvc1") && has(&wire, "av01") && has(&wire, "avc1"));
        // A legacy client (no fourCcList) gets the legacy answer.
        let mut s = ServerSession::after_handshake(SessionConfig::default());
        s.feed(&command("connect", 1.0, vec![])).unwrap();
        let mut out = Vec::new();
        s.take_output(&mut out);
        assert!(!has(&out.concat(), "fourCcList"));
    }

    #[test]
    fn commands_before_connect_and_long_names_are_errors() {
        let mut s = ServerSession::after_handshake(SessionConfig::default());
        assert!(matches!(s.feed(&command("publish", 3.0, vec![string("k")])), Err(SessionError::NotConnected(_))));
        let mut s = ServerSession::after_handshake(SessionConfig::default());
        s.feed(&command("connect", 1.0, vec![])).unwrap();
        let long = "k".repeat(300);
        assert!(matches!(s.feed(&command("publish", 3.0, vec![string(&long)])), Err(SessionError::NameTooLong { .. })));
    }

    /// Found by the `rtmp_session` fuzz target: a command message with no values made
    /// `rml_rtmp`'s command deserializer panic (`drain(..3)` on an empty list).
    #[test]
    fn empty_command_is_an_error_not_a_panic() {
        let mut s = ServerSession::after_handshake(SessionConfig::default());
        let crash = [0x00, 0x60, 0, 0, 0, 0, 0, 0, 0x11, 0, 0, 0x84, 0, 0x41, 0, 0];
        for b in crash {
            if s.feed(&[b]).is_err() {
                return;
            }
        }
        let mut s = ServerSession::after_handshake(SessionConfig::default());
        assert!(matches!(s.feed(&chunked(20, 0, Bytes::new())), Err(SessionError::Malformed(_))));
        let mut s = ServerSession::after_handshake(SessionConfig::default());
        assert!(matches!(s.feed(&chunked(20, 0, Bytes::from_static(&[0x05]))), Err(SessionError::Malformed(_))));
    }

    #[test]
    fn deeply_nested_amf_within_the_size_limit_does_not_exhaust_the_stack() {
        // 8 KiB of nested objects (the size limit) is ~2000 levels: decoded or refused, never a crash.
        let mut body = vec![0x02, 0, 7];
        body.extend_from_slice(b"connect");
        body.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
        while body.len() + 4 <= 8192 {
            body.extend_from_slice(&[0x03, 0, 1, b'a']);
        }
        let mut s = ServerSession::after_handshake(SessionConfig::default());
        let _ = s.feed(&chunked(20, 0, Bytes::from(body)));
    }
}
