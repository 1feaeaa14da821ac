// Rill viewer page (/play/<name>): LL-HLS with hls.js (default) or LL-DASH with dash.js.
// No framework and no external URL: the two players are served by Rill from /player/.
// window.rillStats is refreshed every 250 ms for tests (tests/browser/play.mjs) and tools.
'use strict';

(function () {
  const STATS_INTERVAL_MS = 250;
  const DASH_LIVE_DELAY_S = 1.5;
  const RETRY_MIN_MS = 2000;
  const RETRY_MAX_MS = 10000;
  // No picture progress for this long while playing (publisher gone, stream replaced by a new
  // session, a player stuck on a blocking reload): rebuild the player.
  const STALL_RESTART_MS = 10000;
  const LIBS = { hls: '/player/hls.min.js', dash: '/player/dash.all.min.js', webrtc: '/player/webrtc.js' };
  const MODES = ['hls', 'dash', 'webrtc'];

  const video = document.getElementById('video');
  const modeSelect = document.getElementById('mode');
  const statusLine = document.getElementById('status');
  const out = {
    latency: document.getElementById('s-latency'),
    bitrate: document.getElementById('s-bitrate'),
    resolution: document.getElementById('s-resolution'),
    buffer: document.getElementById('s-buffer'),
    frames: document.getElementById('s-frames'),
  };

  const stats = {
    mode: null,
    state: 'loading', // loading | playing | waiting (stalled) | paused (by the viewer) | error
    latency: null, // seconds behind live
    bitrateKbps: null,
    width: null,
    height: null,
    currentTime: null,
    bufferSeconds: null,
    framesDecoded: null,
    framesDropped: null,
    fatalError: null, // last unrecovered fatal error (cleared when playback resumes)
    errors: 0, // every error the player reported, fatal or not
    lastError: null,
    analyticsSession: null, // the CMCD session id of the running player (hls, dash)
    webrtc: null, // WebRTC mode: { framesDecoded, packetsLost, audioPacketsReceived, audioPacketsLost, rttMs, jitterBufferMs, connection }
  };
  window.rillStats = Object.assign({}, stats);

  const name = streamNameFromPath(location.pathname);
  let player = null; // { stop(), sample() } of the running mode
  const retry = RillPage.restarter(RETRY_MIN_MS, RETRY_MAX_MS, function () { startPlayer(stats.mode, true); });
  let session = 0; // bumps on every (re)start so stale callbacks are ignored
  let progressAt = 0; // Date.now() when the picture last moved (or the player last started)
  let userPaused = false; // the viewer paused: not a stall
  let interactedAt = 0; // Date.now() of the viewer's last click, tap or key press
  let autoplayBlocked = false; // the browser refused to start playback without a click: not a stall

  function streamNameFromPath(pathname) {
    const m = /\/play\/([^/]+)\/?$/.exec(pathname);
    if (!m) return null;
    let n;
    try { n = decodeURIComponent(m[1]); } catch (_) { return null; }
    return /^[A-Za-z0-9_-]{1,64}$/.test(n) ? n : null;
  }

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle('error', !!isError);
  }

  function reportError(message, fatal) {
    stats.errors += 1;
    stats.lastError = message;
    if (fatal) {
      stats.fatalError = message;
      stats.state = 'error';
    }
    setStatus((fatal ? 'Error: ' : 'Warning: ') + message, fatal);
  }


  function playMuted() {
    video.muted = true;
    const p = video.play();
    if (p && p.catch) {
      p.catch(function (e) {
        if (e && e.name === 'NotAllowedError') {
          autoplayBlocked = true;
          setStatus('Autoplay was blocked: press play.', false);
        }
      });
    }
  }


  // ---- LL-HLS (hls.js) ---------------------------------------------------------------------

  function startHls(url, my) {
    const Hls = window.Hls;
    if (!Hls.isSupported()) {
      if (video.canPlayType('application/vnd.apple.mpegurl')) return startNativeHls(url);
      throw new Error('this browser supports neither MSE nor native HLS');
    }
    // lowLatencyMode: parts, preload hints and blocking reloads; the target latency comes from the
    // playlist (PART-HOLD-BACK). Up to 1.5x speed to catch up after a stall instead of a jump.
    const cmcd = RillPage.cmcdSession('live/' + name);
    stats.analyticsSession = cmcd.sid;
    const hls = new Hls({
      lowLatencyMode: true,
      maxLiveSyncPlaybackRate: 1.5,
      backBufferLength: 30,
      cmcd: RillPage.hlsCmcd(cmcd),
    });
    let measured = null; // kbps from the last loaded fragment or part (when BANDWIDTH is unknown)

    hls.on(Hls.Events.MANIFEST_PARSED, function () {
      if (my !== session) return;
      setStatus('Playing ' + name + ' (LL-HLS)', false);
      playMuted();
    });
    hls.on(Hls.Events.FRAG_LOADED, function (_e, data) {
      const piece = data.part || data.frag;
      if (piece && piece.duration > 0 && piece.stats && piece.stats.loaded > 0) {
        measured = (piece.stats.loaded * 8) / piece.duration / 1000;
      }
    });
    RillPage.handleHlsErrors(hls, {
      current: function () { return my === session; },
      count: function (what) {
        stats.errors += 1;
        stats.lastError = what;
      },
      report: reportError,
      restart: retry.schedule,
    });
    hls.attachMedia(video);
    hls.loadSource(url);

    return {
      stop: function () { hls.destroy(); RillPage.cmcdEnd(cmcd); },
      sample: function (s) {
        if (hls.playingDate) s.latency = (Date.now() - hls.playingDate.getTime()) / 1000;
        else if (isFinite(hls.latency) && hls.latency > 0) s.latency = hls.latency;
        const level = hls.levels && hls.levels[hls.currentLevel];
        s.bitrateKbps = level && level.bitrate > 0 ? level.bitrate / 1000 : measured;
      },
    };
  }

  function startNativeHls(url) {
    video.src = url;
    playMuted();
    setStatus('Playing ' + name + ' (native HLS)', false);
    return {
      stop: function () { RillPage.resetVideo(video); },
      sample: function (s) {
        const start = video.getStartDate ? video.getStartDate().getTime() : NaN;
        if (isFinite(start)) s.latency = (Date.now() - (start + video.currentTime * 1000)) / 1000;
      },
    };
  }

  // ---- LL-DASH (dash.js 5) -----------------------------------------------------------------

  // Errors after which dash.js stops: the page restarts the player (the stream may come back).
  const DASH_FATAL = new Set([10, 11, 20, 23, 25, 28, 31, 32, 34, 35]);

  function startDash(url, my) {
    const dashjs = window.dashjs;
    const dash = dashjs.MediaPlayer().create();
    const cmcd = RillPage.cmcdSession('live/' + name);
    stats.analyticsSession = cmcd.sid;
    dash.updateSettings({
      debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
      streaming: {
        cmcd: RillPage.dashCmcd(cmcd),
        delay: { liveDelay: DASH_LIVE_DELAY_S },
        liveCatchup: { enabled: true, mode: 'liveCatchupModeDefault', maxDrift: 3, playbackRate: { min: -0.3, max: 0.3 } },
        buffer: { fastSwitchEnabled: true },
      },
    });
    const events = dashjs.MediaPlayer.events;
    dash.on(events.ERROR, function (e) {
      if (my !== session) return;
      const err = e.error || {};
      const what = 'dash.js ' + (err.code !== undefined ? err.code + ' ' : '') + (err.message || String(err));
      if (DASH_FATAL.has(err.code)) {
        reportError(what, true);
        retry.schedule();
      } else {
        reportError(what, false);
      }
    });
    dash.on(events.PLAYBACK_ERROR, function (e) {
      if (my !== session) return;
      reportError('playback: ' + ((e.error && e.error.message) || 'media error'), true);
      retry.schedule();
    });
    dash.on(events.STREAM_INITIALIZED, function () {
      if (my !== session) return;
      setStatus('Playing ' + name + ' (LL-DASH)', false);
      playMuted();
    });
    dash.initialize(video, null, true);
    // No third-party clock: without a UTCTiming element in the MPD, dash.js falls back to the MPD
    // response's Date header instead of its default time server on the internet.
    dash.clearDefaultUTCTimingSources();
    dash.attachSource(url);

    return {
      stop: function () { dash.destroy(); RillPage.cmcdEnd(cmcd); },
      sample: function (s) {
        const l = dash.getCurrentLiveLatency();
        if (isFinite(l) && l > 0) s.latency = l;
        const rep = dash.getCurrentRepresentationForType('video') || dash.getCurrentRepresentationForType('audio');
        if (rep && rep.bandwidth > 0) s.bitrateKbps = rep.bandwidth / 1000;
      },
    };
  }

  // ---- WebRTC (WHEP) -----------------------------------------------------------------------

  function startWebrtc(url, my) {
    let client = null;
    let last = null; // the latest getStats() summary (sample() is synchronous)
    let stopped = false;
    let connection = 'new';
    const poll = setInterval(function () {
      if (!client) return;
      client.stats().then(function (st) {
        const v = st.video;
        const a = st.audio;
        const jb = v.jitterBufferEmittedCount > 0 ? (v.jitterBufferDelay / v.jitterBufferEmittedCount) * 1000 : null;
        last = {
          framesDecoded: v.framesDecoded ?? null,
          packetsReceived: v.packetsReceived ?? null,
          packetsLost: v.packetsLost ?? null,
          nackCount: v.nackCount ?? null,
          pliCount: v.pliCount ?? null,
          audioPacketsReceived: a.packetsReceived ?? null,
          audioPacketsLost: a.packetsLost ?? null,
          audioCodec: null,
          rttMs: st.rttMs,
          jitterBufferMs: jb,
          bytesReceived: (v.bytesReceived || 0) + (a.bytesReceived || 0),
          connection: connection,
        };
      }).catch(function () {});
    }, STATS_INTERVAL_MS);
    let lastBytes = null;
    let lastAt = null;
    RillWebRTC.play(url, video, function (state) {
      connection = state;
      if (my !== session) return;
      if (state === 'connected') setStatus('Playing ' + name + ' (WebRTC)', false);
      if (state === 'failed' || state === 'disconnected' || state === 'closed') {
        if (!stopped) {
          reportError('WebRTC connection ' + state, true);
          retry.schedule();
        }
      }
    }, new URLSearchParams(location.search).get('token')).then(function (c) {
      if (stopped || my !== session) { c.stop(); return; }
      client = c;
      playMuted();
    }).catch(function (e) {
      if (my !== session) return;
      reportError('WHEP: ' + (e.message || String(e)), true);
      retry.schedule();
    });
    return {
      stop: function () {
        stopped = true;
        clearInterval(poll);
        if (client) client.stop();
        video.srcObject = null;
      },
      sample: function (s) {
        s.webrtc = last;
        if (!last) return;
        // Receive-side estimate: jitter buffer plus half the round trip (not glass-to-glass).
        if (last.jitterBufferMs != null) s.latency = (last.jitterBufferMs + (last.rttMs || 0) / 2) / 1000;
        const now = Date.now();
        if (lastBytes != null && now > lastAt) s.bitrateKbps = ((last.bytesReceived - lastBytes) * 8) / (now - lastAt);
        lastBytes = last.bytesReceived;
        lastAt = now;
      },
    };
  }

  // ---- mode switching, restarts ------------------------------------------------------------

  function stopPlayer() {
    retry.cancel();
    if (player) {
      try { player.stop(); } catch (_) { /* already torn down */ }
      player = null;
    }
  }


  async function startPlayer(mode, isRetry) {
    stopPlayer();
    RillPage.resetVideo(video);
    const my = ++session;
    progressAt = Date.now();
    stats.mode = mode;
    if (!isRetry) {
      retry.reset();
      stats.fatalError = null;
      userPaused = false;
    }
    stats.state = 'loading';
    // Absolute URLs: dash.js (CMCD reporting) builds URL objects from them without a base.
    const base = new URL('/live/' + encodeURIComponent(name), location.href).href;
    // ?token=… (a play token for a stream that needs one) goes on the first request; Rill
    // carries a session token into every later URL itself.
    const token = new URLSearchParams(location.search).get('token');
    const withToken = token ? '?token=' + encodeURIComponent(token) : '';
    try {
      if (mode === 'hls') {
        setStatus('Loading ' + name + ' (LL-HLS)…', false);
        await RillPage.loadScript(LIBS.hls);
        if (my !== session) return;
        player = startHls(base + '/index.m3u8' + withToken, my);
      } else if (mode === 'dash') {
        setStatus('Loading ' + name + ' (LL-DASH)…', false);
        await RillPage.loadScript(LIBS.dash);
        if (my !== session) return;
        player = startDash(base + '/manifest.mpd' + withToken, my);
      } else if (mode === 'webrtc') {
        setStatus('Connecting to ' + name + ' (WebRTC)…', false);
        await RillPage.loadScript(LIBS.webrtc);
        if (my !== session) return;
        player = startWebrtc(new URL('/whep/' + encodeURIComponent(name), location.href).href, my);
      } else {
        throw new Error('unknown mode ' + mode);
      }
    } catch (e) {
      if (my !== session) return;
      reportError(e.message || String(e), true);
      retry.schedule();
    }
  }


  let lastTime = -1;
  function sample() {
    const s = stats;
    s.latency = null;
    s.bitrateKbps = null;
    s.webrtc = null;
    if (player) {
      try { player.sample(s); } catch (_) { /* player not ready yet */ }
    }
    s.width = video.videoWidth || null;
    s.height = video.videoHeight || null;
    s.currentTime = video.currentTime;
    s.bufferSeconds = RillPage.bufferAhead(video);
    if (video.getVideoPlaybackQuality) {
      const q = video.getVideoPlaybackQuality();
      s.framesDecoded = q.totalVideoFrames;
      s.framesDropped = q.droppedVideoFrames;
    }
    // The picture moved since the last sample. Not readyState: at a low-latency live edge it dips
    // below HAVE_FUTURE_DATA between parts while playback goes on without a visible stall.
    const advancing = !video.paused && video.currentTime !== lastTime;
    lastTime = video.currentTime;
    if (advancing) {
      progressAt = Date.now();
      s.state = 'playing';
      if (s.fatalError) {
        s.fatalError = null;
        retry.reset();
        setStatus('Playing ' + name, false);
      }
    } else {
      if (video.paused && userPaused) s.state = 'paused';
      else if (s.state === 'playing' || s.state === 'paused') s.state = 'waiting';
      // Players pause the video themselves when they run dry; only a viewer's pause is not a stall.
      const stalled = player && !retry.pending() && !userPaused && !autoplayBlocked;
      if (stalled && Date.now() - progressAt > STALL_RESTART_MS) {
        reportError('no picture for ' + STALL_RESTART_MS / 1000 + ' s, reloading', true);
        startPlayer(s.mode, true);
      }
    }
    window.rillStats = Object.assign({}, s);

    out.latency.textContent = s.latency != null ? s.latency.toFixed(2) + ' s' : '–';
    out.bitrate.textContent = s.bitrateKbps != null ? Math.round(s.bitrateKbps) + ' kbps' : '–';
    out.resolution.textContent = s.width ? s.width + '×' + s.height : '–';
    out.buffer.textContent = s.bufferSeconds.toFixed(2) + ' s';
    out.frames.textContent = s.framesDecoded != null ? s.framesDecoded + ' / ' + s.framesDropped : '–';
  }

  // ---- boot --------------------------------------------------------------------------------

  if (!name) {
    stats.fatalError = 'invalid stream name in the address (allowed: [A-Za-z0-9_-]{1,64})';
    stats.state = 'error';
    window.rillStats = Object.assign({}, stats);
    setStatus('Error: ' + stats.fatalError, true);
    return;
  }
  document.getElementById('name').textContent = name;
  document.title = name + ' · Rill live';

  const asked = new URLSearchParams(location.search).get('mode');
  const initial = MODES.includes(asked) ? asked : 'hls';
  modeSelect.value = initial;
  modeSelect.addEventListener('change', function () {
    const mode = modeSelect.value;
    const q = new URLSearchParams(location.search);
    q.set('mode', mode);
    history.replaceState(null, '', location.pathname + '?' + q.toString());
    startPlayer(mode, false);
  });
  // A pause right after a click, tap or key press is the viewer's (players pause on their own
  // when they run dry). Not navigator.userActivation: automation (tests) grants it too.
  for (const type of ['pointerdown', 'keydown']) {
    document.addEventListener(type, function () { interactedAt = Date.now(); }, true);
  }
  video.addEventListener('pause', function () {
    if (Date.now() - interactedAt < 1000) userPaused = true;
  });
  video.addEventListener('play', function () {
    userPaused = false;
    autoplayBlocked = false;
  });
  video.addEventListener('error', function () {
    const e = video.error;
    if (e && player) reportError('video element: ' + (e.message || 'code ' + e.code), false);
  });

  // The viewer leaves: end the WHEP session (DELETE) rather than leave it to time out.
  window.addEventListener('pagehide', stopPlayer);
  // Back from the browser's back-forward cache: play again.
  window.addEventListener('pageshow', function (e) { if (e.persisted) startPlayer(stats.mode, false); });

  setInterval(sample, STATS_INTERVAL_MS);
  startPlayer(initial, false);
})();
