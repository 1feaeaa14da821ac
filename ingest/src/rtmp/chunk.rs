//! RTMP chunk stream (Adobe RTMP spec §5.3): a bounded decoder from bytes to messages, and an
//! encoder that chunks messages into header bytes plus slices of the untouched payload.
//!
//! Written here rather than taken from `rml_rtmp::chunk_io` because that deserializer keeps a
//! single partial-payload buffer for all chunk streams (interleaved chunk streams corrupt each
//! other), accepts any chunk size up to 2³¹ and offers no bound on message size.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use thiserror::Error;

/// Limits on what a peer may make us hold.
#[derive(Clone, Debug)]
pub struct ChunkLimits {
    /// Largest chunk size a peer may announce with SetChunkSize.
    pub max_chunk_size: u32,
    /// Largest message (e.g. a video frame) a peer may send.
    pub max_message_size: u32,
    /// Most chunk streams with a message in progress at once.
    pub max_chunk_streams: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits { max_chunk_size: 1 << 20, max_message_size: 8 << 20, max_chunk_streams: 64 }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk size {size} is over the limit of {limit} bytes")]
    ChunkSizeTooLarge { size: u32, limit: u32 },
    #[error("chunk size 0 is invalid")]
    ChunkSizeZero,
    #[error("message of {size} bytes on chunk stream {csid} is over the limit of {limit} bytes")]
    MessageTooLarge { csid: u32, size: u32, limit: u32 },
    #[error("chunk stream {csid} continues a message it never started (format {fmt} header)")]
    NoPreviousHeader { csid: u32, fmt: u8 },
    #[error("chunk stream {csid} changed message length in the middle of a message")]
    LengthChangedMidMessage { csid: u32 },
    #[error("more than {limit} chunk streams with messages in progress")]
    TooManyChunkStreams { limit: usize },
    #[error("partly received messages would hold over {limit} bytes")]
    TooMuchInProgress { limit: u32 },
}

/// A complete RTMP message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub csid: u32,
    /// RTMP timestamp (milliseconds, wraps at 2³²).
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

/// The message header fields a chunk stream carries over from chunk to chunk.
#[derive(Clone, Copy, Debug, Default)]
struct HeaderFields {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    extended: bool,
}

#[derive(Clone, Debug, Default)]
struct ChunkStreamState {
    last: HeaderFields,
    partial: Option<BytesMut>,
    started: bool,
}

/// Decodes chunks into messages. Feed bytes with [`ChunkDecoder::push`], then call
/// [`ChunkDecoder::next_message`] until it returns `Ok(None)`. After an error the stream is
/// out of sync: close the connection.
pub struct ChunkDecoder {
    limits: ChunkLimits,
    chunk_size: u32,
    buffer: BytesMut,
    streams: HashMap<u32, ChunkStreamState>,
    in_progress: usize,
    /// Bytes held in partly received messages, over all chunk streams: at most
    /// `max_message_size` (one large message in flight, or several small ones).
    in_progress_bytes: usize,
}

impl ChunkDecoder {
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkDecoder {
            limits,
            chunk_size: 128,
            buffer: BytesMut::new(),
            streams: HashMap::new(),
            in_progress: 0,
            in_progress_bytes: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// Bytes held but not yet decoded (at most one chunk).
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Applies the peer's SetChunkSize.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        let size = size & 0x7fff_ffff;
        if size == 0 {
            return Err(ChunkError::ChunkSizeZero);
        }
        if size > self.limits.max_chunk_size {
            return Err(ChunkError::ChunkSizeTooLarge { size, limit: self.limits.max_chunk_size });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops a partly received message (the peer's Abort message).
    pub fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.get_mut(&csid) {
            if let Some(partial) = s.partial.take() {
                self.in_progress -= 1;
                self.in_progress_bytes -= partial.len();
            }
        }
    }

    /// Decodes the next complete message, if the buffer holds one.
    pub fn next_message(&mut self) -> Result<Option<Message>, ChunkError> {
        loop {
            let Some(header) = self.parse_header()? else { return Ok(None) };
            let state = self.streams.get(&header.csid).expect("header parse registers the stream");
            let have = state.partial.as_ref().map_or(0, |p| p.len() as u32);
            let want = (header.fields.length - have).min(self.chunk_size) as usize;
            if self.buffer.len() < header.len + want {
                return Ok(None);
            }
            self.buffer.advance(header.len);
            let state = self.streams.get_mut(&header.csid).expect("registered");
            state.last = header.fields;
            state.started = true;
            let complete = have as usize + want == header.fields.length as usize;
            let payload = if have == 0 && complete {
                // Single-chunk message: hand out the received bytes without another copy.
                self.buffer.split_to(want).freeze()
            } else {
                let partial = match &mut state.partial {
                    Some(p) => p,
                    None => {
                        self.in_progress += 1;
                        if self.in_progress > self.limits.max_chunk_streams {
                            return Err(ChunkError::TooManyChunkStreams { limit: self.limits.max_chunk_streams });
                        }
                        state.partial.insert(BytesMut::with_capacity((header.fields.length as usize).min(1 << 16)))
                    }
                };
                if self.in_progress_bytes + want > self.limits.max_message_size as usize {
                    return Err(ChunkError::TooMuchInProgress { limit: self.limits.max_message_size });
                }
                partial.put_slice(&self.buffer[..want]);
                self.in_progress_bytes += want;
                self.buffer.advance(want);
                if !complete {
                    continue;
                }
                self.in_progress -= 1;
                let message = state.partial.take().expect("partial in progress");
                self.in_progress_bytes -= message.len();
                message.freeze()
            };
            let HeaderFields { timestamp, type_id, stream_id, .. } = header.fields;
            return Ok(Some(Message { csid: header.csid, timestamp, type_id, stream_id, payload }));
        }
    }

    /// Parses the chunk header at the front of the buffer without consuming it.
    fn parse_header(&mut self) -> Result<Option<ParsedHeader>, ChunkError> {
        let b = &self.buffer[..];
        let Some(&first) = b.first() else { return Ok(None) };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (64 + x as u32, 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&x), Some(&y)) => (64 + x as u32 + y as u32 * 256, 3),
                _ => return Ok(None),
            },
            id => (id as u32, 1),
        };
        let header_len = [11, 7, 3, 0][fmt as usize];
        if b.len() < pos + header_len {
            return Ok(None);
        }
        let be24 = |s: &[u8]| (s[0] as u32) << 16 | (s[1] as u32) << 8 | s[2] as u32;
        if !self.streams.contains_key(&csid) {
            if fmt != 0 {
                return Err(ChunkError::NoPreviousHeader { csid, fmt });
            }
            if self.streams.len() >= self.limits.max_chunk_streams * 4 {
                // Forget idle chunk streams rather than grow without bound.
                self.streams.retain(|_, s| s.partial.is_some());
            }
            self.streams.insert(csid, ChunkStreamState::default());
        }
        let prev_state = &self.streams[&csid];
        let (prev, started) = (prev_state.last, prev_state.started);
        if fmt != 0 && !started {
            return Err(ChunkError::NoPreviousHeader { csid, fmt });
        }
        let mid_message = prev_state.partial.is_some();
        let h = &b[pos..pos + header_len];
        let (field, length, type_id, stream_id) = match fmt {
            0 => (be24(&h[0..3]), be24(&h[3..6]), h[6], u32::from_le_bytes([h[7], h[8], h[9], h[10]])),
            1 => (be24(&h[0..3]), be24(&h[3..6]), h[6], prev.stream_id),
            2 => (be24(&h[0..3]), prev.length, prev.type_id, prev.stream_id),
            _ => (0, prev.length, prev.type_id, prev.stream_id),
        };
        pos += header_len;
        let extended = if fmt == 3 { prev.extended } else { field == 0xff_ffff };
        let mut field = field;
        if extended {
            let Some(ext) = b.get(pos..pos + 4) else { return Ok(None) };
            pos += 4;
            if fmt != 3 {
                field = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            }
        }
        if mid_message && fmt != 3 && length != prev.length {
            return Err(ChunkError::LengthChangedMidMessage { csid });
        }
        if length > self.limits.max_message_size {
            return Err(ChunkError::MessageTooLarge { csid, size: length, limit: self.limits.max_message_size });
        }
        let (timestamp, delta) = match fmt {
            0 => (field, 0),
            1 | 2 => (prev.timestamp.wrapping_add(field), field),
            // A type 3 chunk that starts a new message repeats the previous delta.
            _ if !mid_message => (prev.timestamp.wrapping_add(prev.delta), prev.delta),
            _ => (prev.timestamp, prev.delta),
        };
        // Mid-message headers only continue; they never move the message's own timestamp.
        let timestamp = if mid_message { prev.timestamp } else { timestamp };
        Ok(Some(ParsedHeader {
            csid,
            len: pos,
            fields: HeaderFields { timestamp, delta, length, type_id, stream_id, extended },
        }))
    }
}

struct ParsedHeader {
    csid: u32,
    /// Bytes the header takes on the wire.
    len: usize,
    fields: HeaderFields,
}

/// Where and how an outgoing message is sent.
#[derive(Clone, Copy, Debug)]
pub struct OutHeader {
    pub csid: u32,
    /// RTMP timestamp in milliseconds (wraps at 2³²).
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
}

/// Chunks outgoing messages. Every message starts with a full (type 0) header; continuation
/// chunks use type 3. Payload bytes are never copied: the output is a list of `Bytes` pieces.
pub struct ChunkEncoder {
    chunk_size: usize,
    scratch: BytesMut,
}

impl ChunkEncoder {
    pub fn new(chunk_size: u32) -> Self {
        ChunkEncoder { chunk_size: chunk_size as usize, scratch: BytesMut::with_capacity(1024) }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size as u32
    }

    /// Appends the chunks of one message to `out`. The message body is `prefix` (a few codec
    /// header bytes, copied beside the chunk header; must fit in one chunk) then `payload`
    /// (never copied: sliced into the output).
    pub fn encode(&mut self, header: OutHeader, prefix: &[u8], payload: &Bytes, out: &mut Vec<Bytes>) {
        let OutHeader { csid, timestamp, type_id, stream_id } = header;
        debug_assert!(prefix.len() <= self.chunk_size);
        let length = prefix.len() + payload.len();
        let extended = timestamp >= 0xff_ffff;
        self.basic_header(0, csid);
        let field = if extended { 0xff_ffff } else { timestamp };
        self.scratch.put_slice(&field.to_be_bytes()[1..]);
        self.scratch.put_slice(&(length as u32).to_be_bytes()[1..]);
        self.scratch.put_u8(type_id);
        self.scratch.put_u32_le(stream_id);
        if extended {
            self.scratch.put_u32(timestamp);
        }
        self.scratch.put_slice(prefix);
        out.push(self.scratch.split().freeze());
        let mut in_chunk = prefix.len();
        let mut offset = 0;
        while offset < payload.len() {
            if in_chunk == self.chunk_size {
                self.basic_header(3, csid);
                if extended {
                    self.scratch.put_u32(timestamp);
                }
                out.push(self.scratch.split().freeze());
                in_chunk = 0;
            }
            let n = (payload.len() - offset).min(self.chunk_size - in_chunk);
            out.push(payload.slice(offset..offset + n));
            offset += n;
            in_chunk += n;
        }
    }

    fn basic_header(&mut self, fmt: u8, csid: u32) {
        match csid {
            2..=63 => self.scratch.put_u8(fmt << 6 | csid as u8),
            64..=319 => self.scratch.put_slice(&[fmt << 6, (csid - 64) as u8]),
            _ => {
                let id = csid - 64;
                self.scratch.put_slice(&[fmt << 6 | 1, id as u8, (id >> 8) as u8]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(enc: &mut ChunkEncoder, csid: u32, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = OutHeader { csid, timestamp: ts, type_id: 9, stream_id: 1 };
        enc.encode(header, &body[..3], &Bytes::copy_from_slice(&body[3..]), &mut out);
        out.concat()
    }

    #[test]
    fn round_trip_multi_chunk_and_extended_timestamp() {
        for (csid, ts) in [(6, 1000), (70, 0x0100_0000), (400, 0xffff_fff0)] {
            let mut enc = ChunkEncoder::new(128);
            let body: Vec<u8> = (0..1000).map(|i| i as u8).collect();
            let wire = encode(&mut enc, csid, ts, &body);
            let mut dec = ChunkDecoder::new(ChunkLimits::default());
            // Byte by byte: no message until the last byte.
            for (i, b) in wire.iter().enumerate() {
                dec.push(&[*b]);
                let msg = dec.next_message().unwrap();
                assert_eq!(msg.is_some(), i == wire.len() - 1, "byte {i}");
                if let Some(m) = msg {
                    assert_eq!((m.csid, m.timestamp, m.type_id, m.stream_id), (csid, ts, 9, 1));
                    assert_eq!(&m.payload[..], &body[..]);
                }
            }
        }
    }

    #[test]
    fn encoder_does_not_copy_payload() {
        let mut enc = ChunkEncoder::new(4);
        let body = Bytes::from_static(b"0123456789");
        let mut out = Vec::new();
        enc.encode(OutHeader { csid: 4, timestamp: 0, type_id: 8, stream_id: 1 }, &[], &body, &mut out);
        let payload_pieces: Vec<_> = out.iter().filter(|p| body.as_ptr_range().contains(&p.as_ptr())).collect();
        assert_eq!(payload_pieces.len(), 3);
    }

    #[test]
    fn interleaved_chunk_streams_assemble_separately() {
        // Two messages on csid 4 and 6, chunk size 4, chunks interleaved.
        let mut wire = vec![0x04, 0, 0, 1, 0, 0, 6, 8, 1, 0, 0, 0];
        wire.extend_from_slice(b"aaaa");
        wire.extend_from_slice(&[0x06, 0, 0, 2, 0, 0, 5, 9, 1, 0, 0, 0]);
        wire.extend_from_slice(b"vvvv");
        wire.extend_from_slice(&[0xc4]);
        wire.extend_from_slice(b"aa");
        wire.extend_from_slice(&[0xc6]);
        wire.extend_from_slice(b"v");
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        dec.set_chunk_size(4).unwrap();
        dec.push(&wire);
        let a = dec.next_message().unwrap().unwrap();
        let v = dec.next_message().unwrap().unwrap();
        assert_eq!((&a.payload[..], a.timestamp), (&b"aaaaaa"[..], 1));
        assert_eq!((&v.payload[..], v.timestamp), (&b"vvvvv"[..], 2));
        assert_eq!(dec.next_message().unwrap(), None);
    }

    #[test]
    fn type_3_new_message_applies_previous_delta() {
        let mut wire = vec![0x04, 0, 0, 10, 0, 0, 1, 8, 1, 0, 0, 0, b'x'];
        wire.extend_from_slice(&[0x44, 0, 0, 20, 0, 0, 1, 8, b'y']); // type 1: delta 20
        wire.extend_from_slice(&[0xc4, b'z']); // type 3: delta 20 again
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        dec.push(&wire);
        let ts: Vec<u32> = std::iter::from_fn(|| dec.next_message().unwrap()).map(|m| m.timestamp).collect();
        assert_eq!(ts, vec![10, 30, 50]);
    }

    #[test]
    fn limits_are_errors() {
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        assert!(matches!(dec.set_chunk_size(0x7fff_ffff), Err(ChunkError::ChunkSizeTooLarge { .. })));
        assert_eq!(dec.set_chunk_size(0), Err(ChunkError::ChunkSizeZero));
        let limits = ChunkLimits { max_message_size: 1000, ..Default::default() };
        let mut dec = ChunkDecoder::new(limits);
        dec.push(&[0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
        assert!(matches!(dec.next_message(), Err(ChunkError::MessageTooLarge { size: 0xffffff, .. })));
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        dec.push(&[0xc5, 1, 2, 3]);
        assert_eq!(dec.next_message(), Err(ChunkError::NoPreviousHeader { csid: 5, fmt: 3 }));
    }

    #[test]
    fn partial_messages_share_one_byte_budget() {
        // Two chunk streams each start a 600-byte message; together they pass the 1000-byte budget.
        let limits = ChunkLimits { max_message_size: 1000, ..Default::default() };
        let mut dec = ChunkDecoder::new(limits);
        for csid in [3u8, 4] {
            dec.push(&[csid, 0, 0, 0, 0, 0x02, 0x58, 9, 1, 0, 0, 0]);
            dec.push(&[0; 128]);
            for _ in 0..3 {
                dec.push(&[0xc0 | csid]);
                dec.push(&[0; 128]);
            }
        }
        assert_eq!(dec.next_message(), Err(ChunkError::TooMuchInProgress { limit: 1000 }));
    }

    #[test]
    fn too_many_messages_in_progress() {
        let limits = ChunkLimits { max_chunk_streams: 2, ..Default::default() };
        let mut dec = ChunkDecoder::new(limits);
        for csid in 3..6u8 {
            dec.push(&[csid, 0, 0, 0, 0, 1, 0, 9, 1, 0, 0, 0]);
            dec.push(&[0; 128]);
        }
        assert_eq!(dec.next_message(), Err(ChunkError::TooManyChunkStreams { limit: 2 }));
    }
}
