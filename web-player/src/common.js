// Shared by the viewer pages (/play/<name>: play.js, /watch/<id>: watch.js), loaded before them:
// loading a player library once, the <video> element's buffer and reset, and restarting a
// player with exponential backoff. Exposes window.RillPage.
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

  return { loadScript: loadScript, resetVideo: resetVideo, bufferAhead: bufferAhead, restarter: restarter };
})();
