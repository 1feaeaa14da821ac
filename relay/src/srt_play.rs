//! SRT read: serves a caller accepted by the SRT driver with `read:live/<name>` (or `m=request`):
//! the Bus stream muxed to MPEG-TS, sent as 1316-byte messages (seven TS packets).
//!
//! A reader starts with the Bus's GOP and then gets a keyframe's worth of messages at once, so
//! the socket's send buffer must hold bursts of hundreds of packets: the listener sets it to
//! libsrt's 8192 packets (`rill_ingest::srt::driver::SEND_BUFFER_PACKETS`, where the failure
//! with srt-tokio's 32-packet default is described). The socket's loss counters are logged when
//! the reader stops, and any packet the sender had to drop is logged as it happens.

use crate::RelayStats;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use rill_ingest::srt::driver::SocketStatistics;
use rill_ingest::srt::SrtReadRequest;
use rill_media::mpegts::{TsMuxer, PACKET_SIZE};
use rill_media::{Bus, BusError, Delivery};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// SRT live payload: seven TS packets.
const MESSAGE_SIZE: usize = 7 * PACKET_SIZE;
/// A send that cannot proceed this long closes the reader.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Wait before the first data. srt-tokio 0.4.4's listener hands the socket over (`accept`)
/// *before* it sends the handshake's conclusion response, so data sent at once can reach the
/// caller first: libsrt then logs "received DATA while HANDSHAKE expected", drops it and asks for
/// the handshake again (the data comes back through retransmission, late).
const HANDSHAKE_GRACE: Duration = Duration::from_millis(20);

/// Serves one SRT reader until it leaves, the stream ends or the reader is too slow.
pub async fn serve(request: SrtReadRequest, bus: Bus, stats: Arc<RelayStats>) {
    let SrtReadRequest { mut socket, path, .. } = request;
    let mut sub = match bus.subscribe(&path, "srt") {
        Ok(sub) => sub,
        Err(e) => {
            info!(reason = %e, "SRT read refused");
            let _ = socket.close_and_finish().await;
            return;
        }
    };
    stats.viewers_total.fetch_add(1, Ordering::Relaxed);
    info!("srt reader started");
    tokio::time::sleep(HANDSHAKE_GRACE).await;
    let mut muxer = TsMuxer::default();
    let mut ts = BytesMut::new();
    let mut muxable = false;
    let mut statistics = socket.statistics().clone();
    let mut last: Option<SocketStatistics> = None;
    let outcome: Result<&str, String> = loop {
        let delivery = tokio::select! {
            d = sub.recv() => d,
            // Readers send nothing but SRT control; the data stream ends when they leave.
            incoming = socket.next() => match incoming {
                None | Some(Err(_)) => break Ok("reader disconnected"),
                Some(Ok(_)) => continue,
            },
            Some(now) = statistics.next() => {
                let dropped_before = last.as_ref().map_or(0, |s| s.tx_dropped_data);
                if now.tx_dropped_data > dropped_before {
                    warn!(
                        dropped = now.tx_dropped_data - dropped_before,
                        "SRT sender dropped packets the reader will miss (send buffer full or too late)"
                    );
                }
                last = Some(now);
                continue;
            },
        };
        match delivery {
            Ok(Delivery::Tracks(tracks)) => match muxer.set_tracks(&tracks) {
                Ok(()) => muxable = true,
                Err(e) => {
                    muxable = false;
                    warn!(error = %e, "stream cannot be sent over SRT");
                }
            },
            Ok(Delivery::Frames(frames)) if muxable => {
                for frame in frames.iter() {
                    if let Err(e) = muxer.push(frame, &mut ts) {
                        warn!(error = %e, "dropping a frame MPEG-TS cannot carry");
                    }
                }
                let sent = send(&mut socket, &mut ts).await;
                match sent {
                    Ok(n) => stats.srt_play_bytes_out.fetch_add(n as u64, Ordering::Relaxed),
                    Err(SendError::ReaderGone) => break Ok("reader disconnected"),
                    Err(e) => break Err(e.to_string()),
                };
            }
            Ok(Delivery::Frames(_)) => {}
            Ok(Delivery::Ended) => break Ok("stream ended"),
            Err(e @ BusError::TooSlow(_)) => {
                stats.viewers_disconnected_slow.fetch_add(1, Ordering::Relaxed);
                break Err(e.to_string());
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close_and_finish()).await;
    let s = last.unwrap_or_default();
    let (sent, retransmitted, dropped, reported_lost) =
        (s.tx_data, s.tx_retransmit_data, s.tx_dropped_data, s.tx_loss_data);
    match outcome {
        Ok(reason) => info!(reason, sent, retransmitted, dropped, reported_lost, "srt reader stopped"),
        Err(error) => warn!(%error, sent, retransmitted, dropped, reported_lost, "srt reader dropped"),
    }
}

/// Why a send to a reader failed.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// The connection is over (the reader left between two sends).
    #[error("the reader left")]
    ReaderGone,
    #[error("sending to a reader that does not keep up")]
    TooSlow,
    #[error(transparent)]
    Io(io::Error),
}

/// Sends whole 1316-byte messages (the rest waits for the next batch), within the timeout.
async fn send(socket: &mut rill_ingest::srt::driver::SrtSocket, ts: &mut BytesMut) -> Result<usize, SendError> {
    let whole = ts.len() / MESSAGE_SIZE * MESSAGE_SIZE;
    let mut data = ts.split_to(whole).freeze();
    let now = Instant::now();
    let sending = async {
        while !data.is_empty() {
            socket.feed((now, data.split_to(MESSAGE_SIZE))).await?;
        }
        socket.flush().await
    };
    match tokio::time::timeout(SEND_TIMEOUT, sending).await {
        Ok(Ok(())) => Ok(whole),
        // srt-tokio reports a finished connection task as NotConnected.
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotConnected => Err(SendError::ReaderGone),
        Ok(Err(e)) => Err(SendError::Io(e)),
        Err(_) => Err(SendError::TooSlow),
    }
}
