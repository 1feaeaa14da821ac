//! RTMP: the wire protocol (chunking, session, handshake via `rml_rtmp`) as sans-IO cores, the
//! publisher's FLV demux, and one tokio driver that owns the socket.

pub mod amf0;
pub mod chunk;
pub mod demux;
pub mod driver;
pub mod session;
pub mod tls;

pub use driver::{serve, serve_tls, Connection, PlayRequest, PublishRefusal, RtmpContext, RtmpStats};
pub use session::{ServerSession, SessionConfig, SessionError, SessionEvent};
