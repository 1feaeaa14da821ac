// Shared by the viewer pages (/play/<name>: play.js, /watch/<id>: watch.js), loaded before them:
// loading a player library once, the <video> element's buffer and reset, restarting a player
// with exponential backoff, and handling hls.js errors. Exposes window.RillPage.
'use strict';

window.RillPage = (function () {
  const scripts = {};

  // Loads a script once (a failed load may be retried).
  function loadScript(src) {
    if (!scripts[src]) {
      scripts[src] = new Promise(function (resolve, reject) {
        const s = document.createElement('script');
        s.src = src;
        s.onload = resolve;
        s.onerror = function () {
          delete scripts[src];
          reject(new Error('could not load ' + src));
        };
        document.head.appendChild(s);
      });
    }
    return scripts[src];
  }

  // Detaches whatever the element was playing.
  function resetVideo(video) {
    video.removeAttribute('src');
    video.load();
  }

  // Seconds buffered ahead of the playhead.
  function bufferAhead(video) {
    const t = video.currentTime;
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= t + 0.1 && t <= b.end(i)) return Math.max(0, b.end(i) - t);
    }
    return 0;
  }

  // Calls restart() after minMs, doubling up to maxMs with every schedule() until reset();
  // cancel() drops a restart not yet due.
  function restarter(minMs, maxMs, restart) {
    let timer = null;
    let delay = minMs;
    return {
      schedule: function () {
        if (timer) return;
        const wait = delay;
        delay = Math.min(delay * 2, maxMs);
        timer = setTimeout(function () {
          timer = null;
          restart();
        }, wait);
      },
      cancel: function () {
        clearTimeout(timer);
        timer = null;
      },
      reset: function () {
        delay = minMs;
      },
      pending: function () {
        return timer !== null;
      },
    };
  }

  // How long a stall keeps ABR below the rendition that stalled.
  const STALL_CAP_MS = 30000;

  // hls.js errors: non-fatal ones are only counted (hls.js retries them itself); a fatal media
  // error is recovered in place twice; any other fatal error restarts the player.
  // page: { current() (still this player's session?), count(what), report(what, fatal), restart() }
  function handleHlsErrors(hls, page) {
    const Hls = window.Hls;
    let mediaRecoveries = 0;
    let capTimer = null;
    hls.on(Hls.Events.ERROR, function (_e, data) {
      if (!page.current()) return;
      const what = data.type + ': ' + data.details + (data.response && data.response.code ? ' (HTTP ' + data.response.code + ')' : '');
      if (!data.fatal) {
        page.count(what);
        // A stall while ABR is on: step down one rendition for the next fragment. hls.js's
        // bandwidth estimate follows a sudden drop in throughput slowly on low-latency live
        // streams (parts are small and arrive as they are made), and a stall is the surest sign.
        // The lower rendition becomes ABR's ceiling for a while (hls.js would otherwise climb
        // straight back on its stale estimate and stall again), then the ceiling is lifted.
        if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR && hls.autoLevelEnabled && hls.loadLevel > 0) {
          const ceiling = hls.loadLevel - 1;
          hls.autoLevelCapping = ceiling;
          hls.nextAutoLevel = ceiling;
          clearTimeout(capTimer);
          capTimer = setTimeout(function () { hls.autoLevelCapping = -1; }, STALL_CAP_MS);
        }
        return;
      }
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
        mediaRecoveries += 1;
        page.report(what + ', recovering', false);
        hls.recoverMediaError();
        return;
      }
      page.report(what, true);
      page.restart();
    });
  }

  // ---- Analytics (CMCD v2, CTA-5004-B) --------------------------------------------------------

  // Player events sent to Rill's collector: play state changes, errors, bitrate changes, and a
  // heartbeat every 10 s. Request mode (the CMCD query argument on every request) rides along.
  const CMCD_EVENTS = ['ps', 'e', 't', 'bc'];
  const CMCD_INTERVAL_S = 10;
  const CMCD_EVENT_KEYS = ['e', 'ts', 'sid', 'cid', 'sta', 'msd', 'bl', 'br', 'pb', 'pt', 'ltc', 'dfa', 'bsa', 'bsd', 'bsda', 'sf', 'st', 'v'];

  // The host of another site that sent the viewer here, kept for this browser session: the
  // Referer of media requests is this page itself.
  (function rememberReferrer() {
    try {
      const from = document.referrer ? new URL(document.referrer).host : '';
      if (from && from !== location.host) document.cookie = 'rill_ref=' + encodeURIComponent(from) + '; path=/; SameSite=Lax';
    } catch (_) { /* no referrer */ }
  })();

  function newSessionId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return 'xxxxxxxxxxxx4xxxyxxxxxxxxxxxxxxx'.replace(/[xy]/g, function () { return (Math.random() * 16 | 0).toString(16); });
  }

  // The session of the running player. hls.js and dash.js send no event when they are
  // destroyed or the page goes away: without one, Rill would count the viewer as watching
  // until the session went quiet (45 s), and count the time since the last heartbeat short.
  let currentCmcd = null;

  // Tells the collector that `session` is over (`ps` event, `sta=q`), in a request that
  // outlives the page.
  function cmcdQuit(session) {
    const line = 'e=ps,sid="' + session.sid + '",cid="' + session.cid + '",sta=q,ts=' + Date.now() + ',v=2\n';
    try {
      fetch(session.url, { method: 'POST', body: line, keepalive: true, headers: { 'Content-Type': 'application/cmcd' } })
        .catch(function () { /* best effort: the session expires anyway */ });
    } catch (_) { /* no fetch: the session expires when it goes quiet */ }
  }

  window.addEventListener('pagehide', function () {
    if (currentCmcd) cmcdQuit(currentCmcd);
    currentCmcd = null;
  });

  // One CMCD session per player start: { sid, cid, url } for `live/<name>` or `vod/<id>`.
  function cmcdSession(contentId) {
    if (currentCmcd) cmcdQuit(currentCmcd);
    currentCmcd = { sid: newSessionId(), cid: contentId, url: location.origin + '/analytics/cmcd' };
    return currentCmcd;
  }

  // The player of `session` was stopped (a restart, another mode).
  function cmcdEnd(session) {
    if (session !== currentCmcd) return;
    cmcdQuit(session);
    currentCmcd = null;
  }

  // hls.js 1.7 `cmcd` settings.
  function hlsCmcd(session) {
    return {
      version: 2,
      sessionId: session.sid,
      contentId: session.cid,
      useHeaders: false,
      eventTargets: [{ url: session.url, events: CMCD_EVENTS, interval: CMCD_INTERVAL_S, batchSize: 1 }],
    };
  }

  // dash.js 5.2 `streaming.cmcd` settings.
  function dashCmcd(session) {
    return {
      enabled: true,
      version: 2,
      sid: session.sid,
      cid: session.cid,
      mode: 'query',
      eventTargets: [{
        enabled: true, url: session.url, events: CMCD_EVENTS, interval: CMCD_INTERVAL_S, batchSize: 1,
        enabledKeys: CMCD_EVENT_KEYS,
      }],
    };
  }

  return {
    cmcdSession: cmcdSession,
    cmcdEnd: cmcdEnd,
    hlsCmcd: hlsCmcd,
    dashCmcd: dashCmcd,
    loadScript: loadScript,
    resetVideo: resetVideo,
    bufferAhead: bufferAhead,
    restarter: restarter,
    handleHlsErrors: handleHlsErrors,
  };
})();
