// Headless Chromium probe for ABR: node abr.mjs <play-url> <seconds-before> <kbps> <seconds-after>
//
// Opens the viewer page (hls.js), lets it play <seconds-before>, then throttles the page's
// network to <kbps> kbit/s with CDP (Network.emulateNetworkConditions) and keeps watching for
// <seconds-after>. Samples window.rillStats every 500 ms and prints ONE JSON line:
//   {"samples":[{t, throttled, height, currentTime, state, bufferSeconds}], "consoleErrors":[...]}
// Judging the samples (a switch down, playback that kept going) is the caller's job.
import { launchChromium, watchPage } from './browser.mjs';

const [url, beforeArg, kbpsArg, afterArg] = process.argv.slice(2);
const before = Number(beforeArg);
const kbps = Number(kbpsArg);
const after = Number(afterArg);
if (!url || !(before > 0) || !(kbps > 0) || !(after > 0)) {
  console.error('usage: node abr.mjs <play-url> <seconds-before> <kbps> <seconds-after>');
  process.exit(64);
}

const browser = await launchChromium();
const consoleErrors = [];
const offOriginRequests = [];
const samples = [];
const started = Date.now();
try {
  const page = await browser.newPage();
  watchPage(page, url, consoleErrors, offOriginRequests);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await page.goto(url, { waitUntil: 'load', timeout: 30000 }).catch((e) => consoleErrors.push(`goto: ${e.message}`));
  let throttled = false;
  while (Date.now() - started < (before + after) * 1000) {
    const t = (Date.now() - started) / 1000;
    if (!throttled && t >= before) {
      const bytesPerSecond = (kbps * 1000) / 8;
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false,
        latency: 20,
        downloadThroughput: bytesPerSecond,
        uploadThroughput: bytesPerSecond,
      });
      throttled = true;
    }
    const s = await page.evaluate(() => window.rillStats ?? null).catch(() => null);
    if (s) {
      samples.push({ t, throttled, height: s.height, currentTime: s.currentTime, state: s.state, bufferSeconds: s.bufferSeconds, errors: s.errors, lastError: s.lastError });
    }
    await new Promise((r) => setTimeout(r, 500));
  }
} catch (e) {
  consoleErrors.push(`harness: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify({ url, samples, consoleErrors, offOriginRequests }));
