// Rill video page (/watch/<id>): a recorded video, played with hls.js (default) or dash.js.
// No framework and no external URL: the two players are served by Rill from /player/.
// The details come from /api/v1/videos/<id>, the media from /vod/<id>/index.m3u8 (HLS) or
// /vod/<id>/manifest.mpd (DASH). A ready video plays as VOD from 0 (or ?t=<seconds>); a video
// still recording plays as live (EVENT playlist, dynamic MPD) and the viewer can seek back to
// its start. window.rillWatch is refreshed every 250 ms for tests (tests/browser/watch.mjs) and
// tools; window.rillSeek(seconds) seeks. Captions (the HLS SUBTITLES group, the DASH text
// adaptation sets) are listed in the Captions menu; window.rillCaptions(lang or '') picks one.
// A video with a storyboard (/vod/<id>/storyboard.vtt: a WebVTT thumbnails track over a JPEG
// sprite) gets a seek bar whose hover or keyboard focus shows the picture at that time. A ready
// video has a "Download MP4" link (/vod/<id>/download).
'use strict';

(function () {
  const STATS_INTERVAL_MS = 250;
  const META_POLL_MS = 4000; // while the video is recording
  const RETRY_MIN_MS = 2000;
  const RETRY_MAX_MS = 10000;
  // No progress for this long while neither paused nor ended: rebuild the player where it was.
  const STALL_RESTART_MS = 15000;
  const LIBS = { hls: '/player/hls.min.js', dash: '/player/dash.all.min.js' };
  const MODES = ['hls', 'dash'];
  const MODE_NAMES = { hls: 'HLS', dash: 'DASH' };
  const ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{12}$/; // Crockford base32, lowercase (vod/src/id.rs)
  const STATUS_NAMES = { recording: 'Recording (live)', ready: 'Ready', failed: 'Failed' };

  const video = document.getElementById('video');
  const captionsSelect = document.getElementById('captions');
  const captionsLabel = document.getElementById('captions-label');
  const modeSelect = document.getElementById('mode');
  const statusLine = document.getElementById('status');
  const el = {
    title: document.getElementById('title'),
    description: document.getElementById('description'),
    tags: document.getElementById('tags'),
    videoError: document.getElementById('video-error'),
    timeline: document.getElementById('timeline'),
    range: document.getElementById('timeline-range'),
    rangeText: document.getElementById('timeline-text'),
    live: document.getElementById('timeline-live'),
    preview: document.getElementById('preview'),
  };
  const out = {
    status: document.getElementById('s-status'),
    duration: document.getElementById('s-duration'),
    created: document.getElementById('s-created'),
    position: document.getElementById('s-position'),
    buffer: document.getElementById('s-buffer'),
    frames: document.getElementById('s-frames'),
  };

  const stats = {
    mode: null,
    state: 'loading', // loading | playing | waiting (stalled, seeking) | paused | ended | error
    currentTime: null,
    duration: null, // seconds; null while unknown or unbounded (a live DASH recording)
    seekable: null, // [start, end] in seconds, or null
    bufferedAhead: null,
    framesDecoded: null,
    errors: 0, // every error the player reported, fatal or not
    lastError: null,
    fatalError: null, // last unrecovered fatal error (cleared when playback resumes)
    status: null, // the video's status from the API: recording | ready | failed
    analyticsSession: null, // the CMCD session id of the running player
    storyboardTiles: 0, // seek preview pictures loaded
    captions: [], // [{ lang, label }] the player offers
    textTracks: [], // the element's text tracks: [{ language, label, mode, cues }]
  };
  window.rillWatch = Object.assign({}, stats);

  const id = videoIdFromPath(location.pathname);
  const query = new URLSearchParams(location.search);
  let meta = null; // the last metadata received
  let player = null; // { stop(), toLive() } of the running mode
  const retry = RillPage.restarter(RETRY_MIN_MS, RETRY_MAX_MS, function () { startPlayer(stats.mode, true); });
  let session = 0; // bumps on every (re)start so stale callbacks are ignored
  let progressAt = 0; // Date.now() when the picture last moved (or the player last started)
  let playedOnce = false; // the picture moved since the player (re)started
  let resumeAt = startFromQuery(); // where a (re)started player starts; null: the player's default
  let dragging = false; // the viewer is moving the timeline slider

  function videoIdFromPath(pathname) {
    const m = /\/watch\/([^/]+)\/?$/.exec(pathname);
    return m && ID_PATTERN.test(m[1]) ? m[1] : null;
  }

  function startFromQuery() {
    const t = query.has('t') ? Number(query.get('t')) : NaN;
    return isFinite(t) && t >= 0 ? t : null;
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

  function publish() {
    window.rillWatch = Object.assign({}, stats, {
      seekable: stats.seekable && stats.seekable.slice(),
      captions: stats.captions.slice(),
      textTracks: stats.textTracks.slice(),
    });
  }

  // Nothing to play (bad id, unknown video, failed recording): no empty player either.
  function fail(message) {
    document.querySelector('.stage').hidden = true;
    stats.fatalError = message;
    stats.state = 'error';
    publish();
    setStatus('Error: ' + message, true);
  }

  // 1:02:03, 2:03, 0:05
  function clock(seconds) {
    if (seconds == null || !isFinite(seconds)) return '–';
    const t = Math.max(0, Math.floor(seconds));
    const h = Math.floor(t / 3600);
    const m = Math.floor((t % 3600) / 60);
    const s = String(t % 60).padStart(2, '0');
    return h ? h + ':' + String(m).padStart(2, '0') + ':' + s : m + ':' + s;
  }


  // Starts playback; muted if the browser refuses sound without a click.
  function play() {
    const p = video.play();
    if (p && p.catch) {
      p.catch(function (e) {
        if (!e || e.name !== 'NotAllowedError') return;
        if (!video.muted) {
          video.muted = true;
          play();
        } else {
          setStatus('Autoplay was blocked: press play.', false);
        }
      });
    }
  }


  function playingText() {
    const live = stats.status === 'recording' ? ', recording' : '';
    return 'Playing (' + MODE_NAMES[stats.mode] + live + ')';
  }

  // ---- metadata ----------------------------------------------------------------------------

  // → { meta } | { notFound: message } | { error: message } (worth retrying)
  async function fetchMeta() {
    let res;
    try {
      // A private video's details come with its play token, as its media do.
      const token = new URLSearchParams(location.search).get('token');
      const query = token ? '?token=' + encodeURIComponent(token) : '';
      res = await fetch('/api/v1/videos/' + id + query, { cache: 'no-store', headers: { accept: 'application/json' } });
    } catch (e) {
      return { error: e.message || String(e) };
    }
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (res.status === 404) return { notFound: (body && body.error) || 'not found' };
    if (!res.ok) return { error: 'HTTP ' + res.status + (body && body.error ? ': ' + body.error : '') };
    if (!body || typeof body !== 'object') return { error: 'the server sent no JSON' };
    return { meta: body };
  }

  function showMeta(m) {
    meta = m;
    stats.status = m.status || null;
    const title = m.title || id;
    el.title.textContent = title;
    document.title = title + ' · Rill';
    el.description.textContent = m.description || '';
    el.description.hidden = !m.description;
    el.tags.replaceChildren();
    for (const tag of Array.isArray(m.tags) ? m.tags : []) {
      const li = document.createElement('li');
      li.textContent = String(tag);
      el.tags.appendChild(li);
    }
    el.tags.hidden = !el.tags.children.length;
    el.videoError.textContent = m.error ? 'Recording error: ' + m.error : '';
    el.videoError.hidden = !m.error;
    out.status.textContent = STATUS_NAMES[m.status] || String(m.status || '–');
    // A finished video downloads as one MP4 (/vod/<id>/download), with the page's token.
    const token = query.get('token');
    const download = document.getElementById('download');
    download.href = '/vod/' + id + '/download' + (token ? '?token=' + encodeURIComponent(token) : '');
    document.getElementById('download-line').hidden = m.status !== 'ready';
    out.created.textContent = m.created_at_ms ? new Date(m.created_at_ms).toLocaleString() : '–';
    if (player && !stats.fatalError && playedOnce) setStatus(playingText(), false);
  }

  // While recording: follow the status (nothing restarts when it becomes ready; the players
  // see the playlist end or the MPD turn static by themselves).
  function pollMeta() {
    setTimeout(async function () {
      const r = await fetchMeta();
      if (r.meta) showMeta(r.meta);
      else if (r.notFound) {
        setStatus('Warning: the video is no longer available (' + r.notFound + ')', false);
        return;
      }
      if (stats.status === 'recording' || r.error) pollMeta();
    }, META_POLL_MS);
  }

  // ---- seek previews -----------------------------------------------------------------------

  // [{ start, end, url, x, y, w, h }] from the storyboard's WebVTT, or null.
  let storyboard = null;

  function vttSeconds(text) {
    const parts = text.trim().split(':').map(Number);
    return parts.reduce(function (total, part) { return total * 60 + part; }, 0);
  }

  async function loadStoryboard() {
    const token = query.get('token');
    const url = new URL('/vod/' + id + '/storyboard.vtt' + (token ? '?token=' + encodeURIComponent(token) : ''), location.href);
    let text;
    try {
      const res = await fetch(url, { cache: 'no-store' });
      if (!res.ok) return; // no storyboard (yet): no previews
      text = await res.text();
    } catch (_) {
      return;
    }
    const cues = [];
    const re = /([\d:.]+)\s+-->\s+([\d:.]+)[^\n]*\n([^\n#]+)#xywh=(\d+),(\d+),(\d+),(\d+)/g;
    let m;
    while ((m = re.exec(text)) !== null) {
      cues.push({
        start: vttSeconds(m[1]), end: vttSeconds(m[2]), url: new URL(m[3].trim(), url).href,
        x: +m[4], y: +m[5], w: +m[6], h: +m[7],
      });
    }
    storyboard = cues.length ? cues : null;
    stats.storyboardTiles = cues.length;
  }

  // Shows the picture at `seconds` above the seek bar at horizontal `offset` (px in the bar).
  function showPreview(seconds, offset) {
    if (!storyboard) return;
    const cue = storyboard.find(function (c) { return seconds >= c.start && seconds < c.end; }) ||
      storyboard[storyboard.length - 1];
    const p = el.preview;
    p.style.width = cue.w + 'px';
    p.style.height = cue.h + 'px';
    p.style.backgroundImage = 'url("' + cue.url + '")';
    p.style.backgroundPosition = -cue.x + 'px ' + -cue.y + 'px';
    const barLeft = el.range.offsetLeft;
    const left = Math.max(0, Math.min(barLeft + offset - cue.w / 2, el.timeline.clientWidth - cue.w));
    p.style.left = left + 'px';
    p.dataset.time = String(seconds);
    p.hidden = false;
  }

  function rangeFraction(seconds) {
    const min = Number(el.range.min);
    const max = Number(el.range.max);
    return max > min ? (seconds - min) / (max - min) : 0;
  }

  el.range.addEventListener('pointermove', function (e) {
    const box = el.range.getBoundingClientRect();
    const fraction = Math.max(0, Math.min(1, (e.clientX - box.left) / box.width));
    const min = Number(el.range.min);
    const seconds = min + fraction * (Number(el.range.max) - min);
    showPreview(seconds, fraction * box.width);
  });
  el.range.addEventListener('pointerleave', function () {
    if (document.activeElement !== el.range) el.preview.hidden = true;
  });
  const previewAtValue = function () {
    const seconds = Number(el.range.value);
    showPreview(seconds, rangeFraction(seconds) * el.range.clientWidth);
  };
  el.range.addEventListener('focus', previewAtValue);
  el.range.addEventListener('input', previewAtValue);
  el.range.addEventListener('blur', function () { el.preview.hidden = true; });

  // ---- captions ----------------------------------------------------------------------------

  // The running player's caption choices: list() → [{ lang, label }], pick(index or -1).
  let captionControl = null;

  function showCaptions(control) {
    captionControl = control;
    const list = control ? control.list() : [];
    stats.captions = list.map(function (c) { return { lang: c.lang, label: c.label }; });
    const chosen = captionsSelect.value;
    captionsSelect.replaceChildren(new Option('Off', ''));
    for (const c of list) captionsSelect.appendChild(new Option(c.label || c.lang, c.lang));
    captionsSelect.value = list.some(function (c) { return c.lang === chosen; }) ? chosen : '';
    captionsLabel.hidden = !list.length;
    if (captionsSelect.value) pickCaptions(captionsSelect.value);
  }

  function pickCaptions(lang) {
    if (!captionControl) return;
    const index = captionControl.list().findIndex(function (c) { return c.lang === lang; });
    captionControl.pick(index);
  }

  captionsSelect.addEventListener('change', function () { pickCaptions(captionsSelect.value); });
  window.rillCaptions = function (lang) {
    captionsSelect.value = lang || '';
    pickCaptions(captionsSelect.value);
  };

  // ---- HLS (hls.js) ------------------------------------------------------------------------

  function startHls(url, my, startAt) {
    const Hls = window.Hls;
    if (!Hls.isSupported()) {
      if (video.canPlayType('application/vnd.apple.mpegurl')) return startNativeHls(url, startAt);
      throw new Error('this browser supports neither MSE nor native HLS');
    }
    // No low-latency mode. A recording (EVENT playlist, no ENDLIST) is live for hls.js: it
    // starts near the live edge, never jumps back there by itself (liveMaxLatencyDuration is
    // unset) and, with liveDurationInfinity off, gives the element a finite duration that grows
    // with the playlist, so the native seek bar covers the whole recording.
    const cmcd = RillPage.cmcdSession('vod/' + id);
    stats.analyticsSession = cmcd.sid;
    const hls = new Hls({
      lowLatencyMode: false,
      startPosition: startAt != null ? startAt : -1,
      liveDurationInfinity: false,
      backBufferLength: 60,
      cmcd: RillPage.hlsCmcd(cmcd),
    });

    hls.on(Hls.Events.MANIFEST_PARSED, function () {
      if (my !== session) return;
      play();
    });
    hls.subtitleDisplay = true;
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, function () {
      if (my !== session) return;
      showCaptions({
        list: function () {
          return hls.subtitleTracks.map(function (t) { return { lang: t.lang, label: t.name }; });
        },
        pick: function (index) {
          hls.subtitleDisplay = index >= 0;
          hls.subtitleTrack = index;
        },
      });
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
      toLive: function () {
        if (hls.liveSyncPosition != null) video.currentTime = hls.liveSyncPosition;
      },
    };
  }

  function startNativeHls(url, startAt) {
    video.src = url;
    if (startAt != null) {
      video.addEventListener('loadedmetadata', function () { video.currentTime = startAt; }, { once: true });
    }
    play();
    return { stop: function () { RillPage.resetVideo(video); } };
  }

  // ---- DASH (dash.js 5) --------------------------------------------------------------------

  // Errors after which dash.js stops: the page restarts the player (as on /play/<name>).
  const DASH_FATAL = new Set([10, 11, 20, 23, 25, 28, 31, 32, 34, 35]);

  function startDash(url, my, startAt) {
    const dashjs = window.dashjs;
    const dash = dashjs.MediaPlayer().create();
    const cmcd = RillPage.cmcdSession('vod/' + id);
    stats.analyticsSession = cmcd.sid;
    dash.updateSettings({
      debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
      // A viewer who went back in a recording stays there: no catch-up towards the live edge.
      streaming: { liveCatchup: { enabled: false }, cmcd: RillPage.dashCmcd(cmcd) },
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
      play();
      const texts = function () { return dash.getTracksFor('text') || []; };
      const label = function (t) {
        const l = Array.isArray(t.labels) && t.labels[0];
        return (l && (l.text || l)) || t.lang;
      };
      showCaptions({
        list: function () {
          return texts().map(function (t) { return { lang: t.lang, label: label(t) }; });
        },
        pick: function (index) {
          dash.enableText(index >= 0);
          if (index >= 0) dash.setCurrentTrack(texts()[index]);
        },
      });
    });
    dash.initialize(video, null, true);
    // No third-party clock (see play.js): UTCTiming from the MPD, else its Date header.
    dash.clearDefaultUTCTimingSources();
    // Start time: from the first period for a static MPD, from availabilityStartTime (the
    // recording's media time 0) for a dynamic one; NaN lets dash.js choose (0, or live edge).
    dash.attachSource(url, startAt != null ? startAt : NaN);

    return {
      stop: function () { dash.destroy(); RillPage.cmcdEnd(cmcd); },
      toLive: function () { dash.seekToOriginalLive(); },
    };
  }

  // ---- mode switching, restarts ------------------------------------------------------------

  function stopPlayer() {
    retry.cancel();
    showCaptions(null);
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
    playedOnce = false;
    stats.mode = mode;
    if (!isRetry) {
      retry.reset();
      stats.fatalError = null;
    }
    stats.state = 'loading';
    // Absolute URLs: dash.js (CMCD reporting) builds URL objects from them without a base.
    const base = new URL('/vod/' + id + '/', location.href).href;
    const startAt = resumeAt;
    try {
      if (!LIBS[mode]) throw new Error('unknown mode ' + mode);
      setStatus('Loading (' + MODE_NAMES[mode] + ')…', false);
      await RillPage.loadScript(LIBS[mode]);
      if (my !== session) return;
      // ?token=… is passed on to the first manifest request.
      const token = new URLSearchParams(location.search).get('token');
      const withToken = token ? '?token=' + encodeURIComponent(token) : '';
      player = mode === 'hls'
        ? startHls(base + 'index.m3u8' + withToken, my, startAt)
        : startDash(base + 'manifest.mpd' + withToken, my, startAt);
    } catch (e) {
      if (my !== session) return;
      reportError(e.message || String(e), true);
      retry.schedule();
    }
  }


  let lastTime = -1;
  function sample() {
    const s = stats;
    s.currentTime = video.currentTime;
    s.duration = isFinite(video.duration) ? video.duration : null;
    const sk = video.seekable;
    s.seekable = sk.length ? [sk.start(0), sk.end(sk.length - 1)] : null;
    s.bufferedAhead = RillPage.bufferAhead(video);
    if (video.getVideoPlaybackQuality) s.framesDecoded = video.getVideoPlaybackQuality().totalVideoFrames;
    s.textTracks = Array.from(video.textTracks).map(function (t) {
      return { language: t.language, label: t.label, mode: t.mode, cues: t.cues ? t.cues.length : 0 };
    });
    // The picture moved since the last sample (readyState dips between segments without a stall).
    const advancing = !video.paused && !video.seeking && video.currentTime !== lastTime;
    lastTime = video.currentTime;
    if (advancing) {
      progressAt = Date.now();
      resumeAt = video.currentTime;
      s.state = 'playing';
      if (!playedOnce || s.fatalError) setStatus(playingText(), false);
      playedOnce = true;
      if (s.fatalError) {
        s.fatalError = null;
        retry.reset();
      }
    } else {
      if (s.state !== 'error') {
        if (video.ended) s.state = 'ended';
        else if (video.paused && playedOnce) s.state = 'paused';
        else if (playedOnce) s.state = 'waiting';
      }
      const stalled = player && !retry.pending() && !video.paused && !video.ended;
      if (!stalled) progressAt = Date.now();
      else if (Date.now() - progressAt > STALL_RESTART_MS) {
        reportError('no progress for ' + STALL_RESTART_MS / 1000 + ' s, reloading', true);
        startPlayer(s.mode, true);
      }
    }
    publish();

    const recording = s.status === 'recording';
    const known = meta && meta.duration_ms > 0 && !recording ? meta.duration_ms / 1000 : s.duration;
    out.duration.textContent = recording
      ? (s.seekable ? clock(s.seekable[1] - s.seekable[0]) + ' so far' : 'recording…')
      : clock(known != null ? Math.round(known) : null);
    out.position.textContent = clock(s.currentTime) + (s.duration != null ? ' / ' + clock(Math.round(s.duration)) : '');
    out.buffer.textContent = s.bufferedAhead.toFixed(2) + ' s';
    out.frames.textContent = s.framesDecoded != null ? String(s.framesDecoded) : '–';
    updateTimeline();
  }

  // The native controls have no seek bar while the duration is unbounded (dash.js on a dynamic
  // MPD): then a slider over the seekable range takes its place.
  function updateTimeline() {
    const range = stats.seekable;
    const unbounded = stats.duration == null && video.duration === Infinity;
    const show = !!player && range != null && (unbounded || !!storyboard);
    el.timeline.hidden = !show;
    el.live.hidden = !unbounded;
    if (!show) return;
    el.range.min = String(range[0]);
    el.range.max = String(range[1]);
    if (!dragging) el.range.value = String(video.currentTime);
    el.rangeText.textContent = clock(video.currentTime - range[0]) + ' / ' + clock(range[1] - range[0]);
  }

  // ---- boot --------------------------------------------------------------------------------

  if (!id) {
    fail('invalid video id in the address (12 characters of 0-9 a-z without i, l, o, u)');
    return;
  }

  window.rillSeek = function (seconds) {
    const t = Number(seconds);
    if (isFinite(t)) video.currentTime = t;
  };

  const asked = query.get('mode');
  const initial = MODES.includes(asked) ? asked : 'hls';
  modeSelect.value = initial;
  modeSelect.addEventListener('change', function () {
    const mode = modeSelect.value;
    const q = new URLSearchParams(location.search);
    q.set('mode', mode);
    history.replaceState(null, '', location.pathname + '?' + q.toString());
    if (video.ended) resumeAt = null; // switching at the end starts over
    if (meta && meta.status !== 'failed') startPlayer(mode, false);
  });
  // A retry or a mode switch resumes where the viewer went.
  video.addEventListener('seeking', function () {
    if (player && video.readyState > 0) resumeAt = video.currentTime;
  });
  video.addEventListener('error', function () {
    const e = video.error;
    if (e && player) reportError('video element: ' + (e.message || 'code ' + e.code), false);
  });
  el.range.addEventListener('input', function () { dragging = true; });
  el.range.addEventListener('change', function () {
    dragging = false;
    video.currentTime = Number(el.range.value);
  });
  el.live.addEventListener('click', function () {
    if (player && player.toLive) player.toLive();
  });

  let metaDelay = RETRY_MIN_MS;
  async function boot() {
    const r = await fetchMeta();
    if (r.notFound) {
      el.title.textContent = 'video not found';
      fail('no video ' + id + ' (unknown, deleted or private)');
      return;
    }
    if (r.error) {
      setStatus('Could not load the video details (' + r.error + '), retrying…', true);
      setTimeout(boot, metaDelay);
      metaDelay = Math.min(metaDelay * 2, RETRY_MAX_MS);
      return;
    }
    showMeta(r.meta);
    publish();
    if (r.meta.status === 'failed') {
      el.videoError.hidden = true; // said by the status line
      fail('this video failed' + (r.meta.error ? ': ' + r.meta.error : ''));
      return;
    }
    if (r.meta.status === 'recording') pollMeta();
    else loadStoryboard();
    startPlayer(initial, false);
  }

  setInterval(sample, STATS_INTERVAL_MS);
  boot();
})();
