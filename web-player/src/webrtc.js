// Rill WebRTC clients for the pages: WHEP playback (RillWebRTC.play) and WHIP publishing
// (RillWebRTC.publish), with plain RTCPeerConnection and fetch. The server is ICE-lite and
// puts every candidate in its answer, so the offer is sent once ICE gathering is complete
// (no trickle). Both return { pc, stop(), stats() }.
'use strict';

(function () {
  const GATHER_TIMEOUT_MS = 2000;

  function gathered(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise(function (resolve) {
      const done = function () {
        if (pc.iceGatheringState === 'complete') {
          pc.removeEventListener('icegatheringstatechange', done);
          resolve();
        }
      };
      pc.addEventListener('icegatheringstatechange', done);
      // Host candidates are enough for the server; do not wait on unreachable STUN servers.
      setTimeout(resolve, GATHER_TIMEOUT_MS);
    });
  }

  async function exchange(pc, url, headers) {
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await gathered(pc);
    const response = await fetch(url, {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/sdp' }, headers || {}),
      body: pc.localDescription.sdp,
    });
    const text = await response.text();
    if (response.status !== 201) {
      const err = new Error(response.status + ': ' + text.trim());
      err.status = response.status;
      throw err;
    }
    const location = new URL(response.headers.get('Location'), url).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: text });
    return location;
  }

  function remover(location) {
    return function () {
      if (location) fetch(location, { method: 'DELETE', keepalive: true }).catch(function () {});
    };
  }

  // Inbound/outbound RTP stats by kind, plus the selected pair's RTT.
  async function rtpStats(pc) {
    const out = { video: {}, audio: {}, rttMs: null };
    const report = await pc.getStats();
    report.forEach(function (r) {
      if ((r.type === 'inbound-rtp' || r.type === 'outbound-rtp') && (r.kind === 'video' || r.kind === 'audio')) {
        Object.assign(out[r.kind], r);
      } else if (r.type === 'candidate-pair' && r.nominated && r.currentRoundTripTime != null) {
        out.rttMs = r.currentRoundTripTime * 1000;
      }
    });
    return out;
  }

  // WHEP: plays <url> (POST /whep/<name>) into <video>; <token> (optional) is a play token,
  // sent as `Authorization: Bearer`.
  async function play(url, video, onState, token) {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const stream = new MediaStream();
    pc.ontrack = function (e) {
      stream.addTrack(e.track);
      // Play as soon as frames arrive: no extra playout delay beyond the jitter buffer.
      if (e.receiver && 'playoutDelayHint' in e.receiver) e.receiver.playoutDelayHint = 0;
      if (e.receiver && 'jitterBufferTarget' in e.receiver) e.receiver.jitterBufferTarget = 0;
      video.srcObject = stream;
    };
    return session(pc, url, token ? { Authorization: 'Bearer ' + token } : {}, onState);
  }

  // WHIP: publishes <media> (a MediaStream) to <url> (POST /whip/<name>) with the stream key.
  // <videoCodec> ('h264', 'vp8', 'vp9' or 'av1'; optional) offers only that video codec
  // (RTCRtpTransceiver.setCodecPreferences); without it H.264 is preferred.
  async function publish(url, key, media, onState, videoCodec) {
    const pc = new RTCPeerConnection();
    for (const track of media.getTracks()) {
      const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind !== 'video') continue;
      if (!t.setCodecPreferences || !RTCRtpSender.getCapabilities) {
        if (videoCodec) { pc.close(); throw new Error('this browser cannot choose the video codec'); }
        continue;
      }
      const codecs = RTCRtpSender.getCapabilities('video').codecs;
      if (videoCodec) {
        // Only that codec (and the repair formats RTX/RED/FEC, which carry it).
        const want = new RegExp('^video/' + videoCodec.replace(/[^A-Za-z0-9]/g, '') + '$', 'i');
        const chosen = codecs.filter(function (c) { return want.test(c.mimeType); });
        if (!chosen.length) { pc.close(); throw new Error('this browser cannot send ' + videoCodec + ' video'); }
        const repair = codecs.filter(function (c) { return /^video\/(rtx|red|ulpfec|flexfec-03)$/i.test(c.mimeType); });
        t.setCodecPreferences(chosen.concat(repair));
      } else {
        // Prefer H.264 so the stream plays everywhere (HLS, DASH, FLV, WHEP) without transcoding.
        const h264 = codecs.filter(function (c) { return /h264/i.test(c.mimeType); });
        const rest = codecs.filter(function (c) { return !/h264/i.test(c.mimeType); });
        if (h264.length) t.setCodecPreferences(h264.concat(rest));
      }
    }
    return session(pc, url, { Authorization: 'Bearer ' + key }, onState);
  }

  // Runs the offer/answer exchange of <pc> with <url> and returns the session: its resource
  // (Location), stop() (DELETE, then close) and stats(). The connection is closed on failure.
  async function session(pc, url, headers, onState) {
    pc.onconnectionstatechange = function () { if (onState) onState(pc.connectionState); };
    let location = null;
    try {
      location = await exchange(pc, url, headers);
    } catch (e) {
      pc.close();
      throw e;
    }
    const remove = remover(location);
    return {
      pc: pc,
      location: location,
      stop: function () { remove(); pc.close(); },
      stats: function () { return rtpStats(pc); },
    };
  }

  window.RillWebRTC = { play: play, publish: publish };
})();
