// Headless Chromium probe for WebRTC: node webrtc.mjs <base-url> <name> <key|-> <seconds>
//
// With a key: opens <base>/publish?name=<name>&key=<key>&auto=1 (fake camera and microphone)
// and waits for it to be live. Then opens <base>/play/<name>?mode=webrtc and samples
// window.rillStats once a second for up to <seconds>, stopping after PLAY_ENOUGH (default 5)
// consecutive samples in which the picture advanced and frames were decoded. With HOLD=<s>,
// the publisher stays live that many more seconds after playback was judged (for other
// checks running beside). CODEC=<vp8|vp9|av1|h264> publishes with only that video codec
// (/publish?codec=…); PLAY=0 skips playback (the publisher then stays HOLD seconds). Prints
// ONE JSON line:
//   {"publish": {...rillPublish} | null, "publishSamples": [...], "samples": [...], "final": {...},
//    "firstFrameMs": <ms from page load to the first decoded frame> | null, "consoleErrors": [...]}
import { launchChromium, watchPage } from './browser.mjs';

const [base, name, key, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!base || !name || !key || !Number.isFinite(seconds) || seconds <= 0) {
  console.error('usage: node webrtc.mjs <base-url> <name> <key|-> <seconds>');
  process.exit(64);
}
const enough = Number(process.env.PLAY_ENOUGH ?? 5);
const hold = Number(process.env.HOLD ?? 0);
const codec = process.env.CODEC ?? '';
const play = process.env.PLAY !== '0';

const browser = await launchChromium([
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
]);
const consoleErrors = [];
const offOrigin = [];
const out = { publish: null, publishSamples: [], samples: [], final: null, firstFrameMs: null, consoleErrors };
const started = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
try {
  if (key !== '-') {
    const pub = await browser.newPage();
    watchPage(pub, base, consoleErrors, offOrigin);
    const q = new URLSearchParams({ name, key, auto: '1' });
    if (codec) q.set('codec', codec);
    await pub.goto(`${base}/publish?${q}`, { waitUntil: 'load' });
    const until = Date.now() + 20000;
    while (Date.now() < until) {
      await sleep(500);
      const s = await pub.evaluate(() => window.rillPublish ?? null);
      out.publishSamples.push(s);
      out.publish = s;
      if (s && (s.state === 'error' || (s.state === 'live' && s.framesEncoded > 30))) break;
    }
    if (!out.publish || out.publish.state !== 'live') throw new Error(`publisher not live: ${JSON.stringify(out.publish)}`);
  }
  const page = play ? await browser.newPage() : null;
  if (page) {
    watchPage(page, base, consoleErrors, offOrigin);
  }
  const loadAt = Date.now();
  if (page) await page.goto(`${base}/play/${name}?mode=webrtc`, { waitUntil: 'load' });
  let playing = 0;
  let lastTime = null;
  const deadline = Date.now() + seconds * 1000;
  while (page && Date.now() < deadline) {
    // Fine-grained until the first frame (first-frame time), then once a second.
    await sleep(out.firstFrameMs == null ? 50 : 1000);
    const s = await page.evaluate(() => window.rillStats ?? null);
    if (!s) continue;
    const decoded = s.webrtc && s.webrtc.framesDecoded;
    if (out.firstFrameMs == null && decoded > 0) out.firstFrameMs = Date.now() - loadAt;
    if (out.firstFrameMs == null) continue;
    out.samples.push({ t: (Date.now() - started) / 1000, ...s });
    out.final = s;
    const advancing = typeof s.currentTime === 'number' && lastTime !== null && s.currentTime > lastTime;
    lastTime = s.currentTime;
    playing = advancing && decoded > 0 ? playing + 1 : 0;
    if (enough > 0 && playing >= enough) break;
  }
  if (hold > 0) await sleep(hold * 1000);
} catch (e) {
  consoleErrors.push(`harness: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(out));
