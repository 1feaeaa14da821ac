// Headless Chromium viewer for the analytics tests: node analytics.mjs <url> <playSeconds> <timeoutSeconds>
//
// Opens <url> (a /play/<name> or /watch/<id> page, whose player reports CMCD to Rill) and
// watches the <video> element's own events: it plays until the picture has been playing for
// <playSeconds> (time spent stalled or seeking not counted), then closes the page (unload
// handlers run, like a viewer closing the tab) and the browser. Gives up after
// <timeoutSeconds>. Prints ONE JSON line:
//   {"url", "sid" (the page's CMCD session id), "firstPlayingMs" (from navigation), "playedMs"
//    (wall time in the playing state), "stalls" (`waiting` events after the first frame),
//    "stalledMs", "throttled": {atMs, untilMs} | null, "final": {...rillStats|rillWatch},
//    "consoleErrors": [...]}
//
// Network throttling (Chrome DevTools Protocol, Network.emulateNetworkConditions), from the
// environment: THROTTLE_KBPS=<download kbit/s> applied once the picture has played THROTTLE_AT
// seconds (0: before the page loads), lifted after THROTTLE_FOR seconds (default: never).
// STOP_FILE=<path>: the viewer also leaves as soon as that file exists.
// Exit status is 0 whatever the page did; 2 when Chromium cannot be launched, 64 on bad arguments.
import { existsSync } from 'node:fs';
import { launchChromium, watchPage } from './browser.mjs';

const [url, playArg, timeoutArg] = process.argv.slice(2);
const playSeconds = Number(playArg);
const timeout = Number(timeoutArg);
if (!url || !(playSeconds > 0) || !(timeout > 0)) {
  console.error('usage: node analytics.mjs <url> <playSeconds> <timeoutSeconds>');
  process.exit(64);
}
const throttleKbps = Number(process.env.THROTTLE_KBPS ?? 0);
const throttleAt = Number(process.env.THROTTLE_AT ?? 0);
const throttleFor = Number(process.env.THROTTLE_FOR ?? 0);
const stopFile = process.env.STOP_FILE ?? '';

// Installed in the page before its scripts: media events are caught on the way down (they do
// not bubble).
function probeVideo() {
  const p = { firstPlaying: null, since: null, playedMs: 0, stalls: 0, stalledSince: null, stalledMs: 0 };
  window.__probe = p;
  const now = () => performance.now();
  const stopPlaying = () => {
    if (p.since != null) p.playedMs += now() - p.since;
    p.since = null;
  };
  document.addEventListener('playing', () => {
    if (p.firstPlaying == null) p.firstPlaying = now();
    if (p.stalledSince != null) p.stalledMs += now() - p.stalledSince;
    p.stalledSince = null;
    if (p.since == null) p.since = now();
  }, true);
  document.addEventListener('waiting', () => {
    if (p.firstPlaying != null && p.since != null) {
      p.stalls += 1;
      p.stalledSince = now();
    }
    stopPlaying();
  }, true);
  for (const e of ['pause', 'ended', 'emptied']) document.addEventListener(e, stopPlaying, true);
  window.__probeRead = () => ({
    firstPlaying: p.firstPlaying,
    playedMs: p.playedMs + (p.since != null ? now() - p.since : 0),
    stalls: p.stalls,
    stalledMs: p.stalledMs + (p.stalledSince != null ? now() - p.stalledSince : 0),
    navigationStart: performance.timeOrigin,
  });
}

const browser = await launchChromium();
const consoleErrors = [];
const offOrigin = [];
const out = { url, sid: null, firstPlayingMs: null, playedMs: 0, stalls: 0, stalledMs: 0, throttled: null, final: null, consoleErrors };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
try {
  const page = await browser.newPage();
  watchPage(page, url, consoleErrors, offOrigin);
  await page.addInitScript(probeVideo);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const throttle = async (on) => {
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: on ? (throttleKbps * 1000) / 8 : -1,
      uploadThroughput: -1,
    });
    if (on) out.throttled = { atMs: Date.now() - t0, untilMs: null };
    else if (out.throttled) out.throttled.untilMs = Date.now() - t0;
  };
  if (throttleKbps > 0 && throttleAt === 0) await throttle(true);
  try {
    await page.goto(url, { waitUntil: 'load', timeout: timeout * 1000 });
  } catch (e) {
    consoleErrors.push(`goto: ${e.message}`);
  }
  const deadline = t0 + timeout * 1000;
  let read = null;
  while (Date.now() < deadline) {
    await sleep(100);
    try {
      read = await page.evaluate(() => window.__probeRead());
    } catch (e) {
      consoleErrors.push(`evaluate: ${e.message}`);
      continue;
    }
    if (read.firstPlaying == null) continue;
    if (throttleKbps > 0 && out.throttled == null && read.playedMs >= throttleAt * 1000) await throttle(true);
    if (out.throttled && out.throttled.untilMs == null && throttleFor > 0 && Date.now() - t0 - out.throttled.atMs >= throttleFor * 1000) {
      await throttle(false);
    }
    if (read.playedMs >= playSeconds * 1000 || (stopFile && existsSync(stopFile))) break;
  }
  if (read) {
    out.firstPlayingMs = read.firstPlaying == null ? null : Math.round(read.firstPlaying);
    out.playedMs = Math.round(read.playedMs);
    out.stalls = read.stalls;
    out.stalledMs = Math.round(read.stalledMs);
  }
  out.final = await page.evaluate(() => window.rillStats ?? window.rillWatch ?? null).catch(() => null);
  out.sid = out.final && out.final.analyticsSession;
  // The viewer closes the tab.
  await page.close({ runBeforeUnload: true });
  await sleep(300);
} catch (e) {
  consoleErrors.push(`harness: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(out));
