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
import { launchChromium, screenshotIfAsked, watchPage } from './browser.mjs';

const [url, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!url || !Number.isFinite(seconds) || seconds <= 0) {
  console.error('usage: node play.mjs <url> <seconds>');
  process.exit(64);
}

const enough = Number(process.env.PLAY_ENOUGH ?? 5);
const ENOUGH_PLAYING = Number.isFinite(enough) && enough > 0 ? enough : Infinity;

const browser = await launchChromium();

const consoleErrors = [];
const offOriginRequests = [];
const samples = [];
let final = null;
const started = Date.now();
try {
  const page = await browser.newPage();
  watchPage(page, url, consoleErrors, offOriginRequests);
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
  await screenshotIfAsked(page, consoleErrors);
} catch (e) {
  consoleErrors.push(`harness: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify({ url, samples, final, consoleErrors, offOriginRequests }));
