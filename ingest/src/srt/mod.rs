//! SRT: callers publish MPEG-TS (`streamid=publish:live/<key>` or `#!::r=live/<key>,m=publish`)
//! or read a live stream (`read:live/<name>`, `m=request`). [`streamid`] parses the request;
//! [`driver`] owns the `srt-tokio` listener, the accept/reject decision (keys, passphrase),
//! the publish pump through [`rill_media::mpegts::TsDemuxer`], and hands readers to the caller.

pub mod driver;
pub mod streamid;

pub use driver::{bind, serve, Refusal, SrtContext, SrtReadRequest, SrtStats};
pub use streamid::{Mode, StreamIdError, StreamIdRequest};
