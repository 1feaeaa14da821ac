// Headless Chromium seek probe for the video page: node watch.mjs <url> <seekToSeconds> <timeoutSeconds>
//
// Opens <url> (a /watch/<id> page) in the system Chromium and samples window.rillWatch every
// 250 ms. Once playback has started (framesDecoded > 0 and currentTime advancing between two
// samples) it seeks (video.currentTime = <seekToSeconds>, like the native seek bar), then waits
// until currentTime >= seekTo + 1 and more frames were decoded than at the seek. It gives up
// after <timeoutSeconds> in all (from the page load). Prints ONE JSON line:
//   {"url", "started", "startedAfterMs", "seekedTo", "seekedAfterMs", "resumedAfterMs",
//    "beforeSeek":{currentTime, framesDecoded} (read at the seek), "afterSeek":{t, ...rillWatch},
//    "final":{...rillWatch}, "samples":[{t, state, currentTime, ...}], "samplesDropped",
//    "consoleErrors":[...], "offOriginRequests":[...]}
// Times are milliseconds since the navigation started (resumedAfterMs: since the seek); null
// when that step was not reached. samples keeps the first 40 and the last 80 (samplesDropped:
// how many were left out between). Exit status is 0 whatever the page did: judging is the
// caller's job. It is non-zero only when the browser could not be launched (2) or on bad
// arguments (64).
//
// Environment: CHROMIUM (default /usr/bin/chromium), SCREENSHOT=<file.png> to save a
// screenshot of the page at the end.
import { launchChromium, screenshotIfAsked, watchPage } from './browser.mjs';

const SAMPLE_MS = 250;
const RESUMED_AHEAD_S = 1.0;
const KEEP_FIRST = 40;
const KEEP_LAST = 80;

const [url, seekArg, timeoutArg] = process.argv.slice(2);
const seekTo = Number(seekArg);
const timeout = Number(timeoutArg);
let validUrl = false;
try { validUrl = /^https?:$/.test(new URL(url).protocol); } catch (_) { /* not a URL */ }
if (!validUrl || seekArg === '' || !Number.isFinite(seekTo) || seekTo < 0 || !Number.isFinite(timeout) || timeout <= 0) {
  console.error('usage: node watch.mjs <url> <seekToSeconds> <timeoutSeconds>');
  process.exit(64);
}

const browser = await launchChromium();

const consoleErrors = [];
const offOriginRequests = [];
let samples = [];
let samplesDropped = 0;
let started = false;
let startedAfterMs = null;
let seekedAfterMs = null;
let resumedAfterMs = null;
let beforeSeek = null;
let afterSeek = null;
let final = null;

const round = (x, digits) => (typeof x === 'number' && Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
const compact = (t, s) =>
  s
    ? {
        t,
        state: s.state,
        currentTime: round(s.currentTime, 3),
        duration: round(s.duration, 3),
        seekable: Array.isArray(s.seekable) ? s.seekable.map((x) => round(x, 3)) : s.seekable,
        bufferedAhead: round(s.bufferedAhead, 2),
        framesDecoded: s.framesDecoded,
        errors: s.errors,
      }
    : { t };

try {
  const page = await browser.newPage();
  watchPage(page, url, consoleErrors, offOriginRequests);
  const t0 = Date.now();
  const deadline = t0 + timeout * 1000;
  try {
    await page.goto(url, { waitUntil: 'load', timeout: timeout * 1000 });
  } catch (e) {
    consoleErrors.push(`goto: ${e.message}`);
  }
  let prev = null;
  let framesAtSeek = null;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    let s = null;
    try {
      s = await page.evaluate(() => window.rillWatch ?? null);
    } catch (e) {
      consoleErrors.push(`evaluate: ${e.message}`);
    }
    const t = Date.now() - t0;
    samples.push(compact(t, s));
    if (!s) {
      prev = null;
      continue;
    }
    final = s;
    if (!started) {
      if (s.framesDecoded > 0 && prev && s.currentTime > prev.currentTime) {
        started = true;
        startedAfterMs = t;
        // Read the frame count at the very moment of the seek: rillWatch may be 250 ms old.
        beforeSeek = await page.evaluate((to) => {
          const v = document.querySelector('video');
          const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
          const at = { currentTime: v.currentTime, framesDecoded: q ? q.totalVideoFrames : null };
          v.currentTime = to;
          return at;
        }, seekTo);
        seekedAfterMs = Date.now() - t0;
        framesAtSeek = beforeSeek.framesDecoded ?? s.framesDecoded;
        samples.push({ t: seekedAfterMs, seek: seekTo });
      }
    } else if (s.currentTime >= seekTo + RESUMED_AHEAD_S && s.framesDecoded > framesAtSeek) {
      resumedAfterMs = t - seekedAfterMs;
      afterSeek = { t, ...s };
      break;
    }
    prev = s;
  }
  await screenshotIfAsked(page, consoleErrors);
} catch (e) {
  consoleErrors.push(`harness: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
if (samples.length > KEEP_FIRST + KEEP_LAST) {
  samplesDropped = samples.length - KEEP_FIRST - KEEP_LAST;
  samples = samples.slice(0, KEEP_FIRST).concat(samples.slice(-KEEP_LAST));
}
console.log(
  JSON.stringify({
    url,
    started,
    startedAfterMs,
    seekedTo: seekTo,
    seekedAfterMs,
    resumedAfterMs,
    beforeSeek,
    afterSeek,
    final,
    samples,
    samplesDropped,
    consoleErrors,
    offOriginRequests,
  }),
);
