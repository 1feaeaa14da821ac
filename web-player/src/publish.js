// Rill publish page (/publish): goes live from the browser's camera and microphone over WHIP
// (POST /whip/<name>, Authorization: Bearer <stream key>). ?name=…&key=…&auto=1 fill the form
// (and start); ?codec=h264|vp8|vp9|av1 offers only that video codec (default: H.264 preferred).
// window.rillPublish is refreshed every 500 ms for tests and tools.
'use strict';

(function () {
  const form = document.getElementById('form');
  const nameInput = document.getElementById('name');
  const keyInput = document.getElementById('key');
  const startButton = document.getElementById('start');
  const stopButton = document.getElementById('stop');
  const video = document.getElementById('video');
  const statusLine = document.getElementById('status');
  const watch = document.getElementById('watch');

  const state = {
    state: 'idle', // idle | starting | live | error
    connection: null,
    error: null,
    location: null,
    videoCodec: null,
    framesEncoded: null,
    packetsSent: null,
    bytesSent: null,
  };
  window.rillPublish = Object.assign({}, state);
  let client = null;
  let media = null;

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle('error', !!isError);
  }

  function stop() {
    if (client) client.stop();
    client = null;
    if (media) media.getTracks().forEach(function (t) { t.stop(); });
    media = null;
    video.srcObject = null;
    startButton.disabled = false;
    stopButton.disabled = true;
  }

  async function start() {
    const name = nameInput.value.trim();
    const key = keyInput.value;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
      setStatus('Error: invalid stream name (allowed: A-Z a-z 0-9 _ -, up to 64)', true);
      return;
    }
    state.state = 'starting';
    state.error = null;
    startButton.disabled = true;
    stopButton.disabled = false;
    setStatus('Opening the camera…', false);
    try {
      media = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720, frameRate: 30 }, audio: true });
      video.srcObject = media;
      setStatus('Connecting…', false);
      const url = new URL('/whip/' + encodeURIComponent(name), location.href).href;
      client = await RillWebRTC.publish(url, key, media, function (c) {
        state.connection = c;
        if (c === 'connected') {
          state.state = 'live';
          setStatus('Live as ' + name, false);
        } else if (c === 'failed' || c === 'disconnected') {
          state.state = 'error';
          state.error = 'connection ' + c;
          setStatus('Error: connection ' + c, true);
        }
      }, videoCodec);
      state.location = client.location;
      const playUrl = '/play/' + encodeURIComponent(name) + '?mode=webrtc';
      watch.href = playUrl;
      watch.textContent = location.origin + playUrl;
    } catch (e) {
      state.state = 'error';
      state.error = e.message || String(e);
      setStatus('Error: ' + state.error, true);
      stop();
    }
  }

  async function sample() {
    if (client) {
      try {
        const st = await client.stats();
        state.framesEncoded = st.video.framesEncoded ?? null;
        state.packetsSent = (st.video.packetsSent || 0) + (st.audio.packetsSent || 0);
        state.bytesSent = (st.video.bytesSent || 0) + (st.audio.bytesSent || 0);
        const report = await client.pc.getStats();
        report.forEach(function (r) {
          if (r.type === 'codec' && /^video\//.test(r.mimeType) && r.id === st.video.codecId) state.videoCodec = r.mimeType;
        });
      } catch (_) { /* closed */ }
    }
    window.rillPublish = Object.assign({}, state);
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    start();
  });
  stopButton.addEventListener('click', function () {
    stop();
    state.state = 'idle';
    setStatus('Stopped.', false);
  });
  window.addEventListener('pagehide', stop);

  const q = new URLSearchParams(location.search);
  const codecParam = (q.get('codec') || '').toLowerCase();
  const videoCodec = /^(h264|vp8|vp9|av1)$/.test(codecParam) ? codecParam : null;
  if (q.get('name')) nameInput.value = q.get('name');
  if (q.get('key')) keyInput.value = q.get('key');
  setInterval(sample, 500);
  if (q.get('auto') === '1' && nameInput.value && keyInput.value) start();
})();
