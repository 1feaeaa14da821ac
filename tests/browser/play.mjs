// Headless Chromium probe for the viewer page: node play.mjs <url> <seconds>
//
// Opens <url> in the system Chromium (no Playwright browser download), samples
// window.rillStats once a second for up to <seconds> and prints ONE JSON line:
//   {"url", "samples":[{t, ...rillStats}], "final":{...rillStats}, "consoleErrors":[...],
//    "offOriginRequests":[...]}   (requests to any origin but the page's: the page must make none)
// It stops early after PLAY_ENOUGH (default 5) consecutive samples in which the picture advanced
// and a latency was known; PLAY_ENOUGH=0 always runs the full <seconds>. Exit status is 0 whatever
// the page did: judging the numbers is the caller's job. It is non-zero only when the browser
// could not be launched (2) or on bad arguments (64).
//
// Environment: CHROMIUM (default /usr/bin/chromium), PLAY_ENOUGH (see above), SCREENSHOT=<file.png>
// to save a screenshot of the page at the end.
import { chromium } from 'playwright-core';

const [url, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!url || !Number.isFinite(seconds) || seconds <= 0) {
  console.error('usage: node play.mjs <url> <seconds>');
  process.exit(64);
}

const enough = Number(process.env.PLAY_ENOUGH ?? 5);
const ENOUGH_PLAYING = Number.isFinite(enough) && enough > 0 ? enough : Infinity;

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
  });
} catch (e) {
  console.error(`could not launch Chromium: ${e.message}`);
  process.exit(2);
}

const consoleErrors = [];
const offOriginRequests = [];
const origin = new URL(url).origin;
const samples = [];
let final = null;
const started = Date.now();
try {
  const page = await browser.newPage();
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const where = msg.location() && msg.location().url;
    consoleErrors.push(where ? `${msg.text()} (${where})` : msg.text());
  });
  page.on('request', (req) => {
    const u = req.url();
    if (/^(https?|wss?):/.test(u) && new URL(u).origin !== origin) offOriginRequests.push(u);
  });
  page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
  page.on('requestfailed', (req) => {
    const failure = req.failure();
    // Aborts are normal (players cancel requests when they switch or catch up).
    if (failure && !/ERR_ABORTED/.test(failure.errorText)) consoleErrors.push(`requestfailed: ${req.url()} ${failure.errorText}`);
  });
  try {
    await page.goto(url, { waitUntil: 'load', timeout: seconds * 1000 });
  } catch (e) {
    consoleErrors.push(`goto: ${e.message}`);
  }
  let playing = 0;
  let lastTime = null;
  while (Date.now() - started < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    let s = null;
    try {
      s = await page.evaluate(() => window.rillStats ?? null);
    } catch (e) {
      consoleErrors.push(`evaluate: ${e.message}`);
    }
    const t = (Date.now() - started) / 1000;
    samples.push({ t, ...(s ?? {}) });
    if (s) final = s;
    const advancing = s && typeof s.currentTime === 'number' && lastTime !== null && s.currentTime > lastTime;
    lastTime = s ? s.currentTime : null;
    playing = advancing && s.latency != null ? playing + 1 : 0;
    if (playing >= ENOUGH_PLAYING) break;
  }
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT }).catch((e) => consoleErrors.push(`screenshot: ${e.message}`));
} catch (e) {
  consoleErrors.push(`harness: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify({ url, samples, final, consoleErrors, offOriginRequests }));
