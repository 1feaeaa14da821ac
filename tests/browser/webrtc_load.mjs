// N WHEP viewers of one stream from one headless Chromium page (a load client, not a player:
// the streams are received and decoded into hidden 1-pixel video elements):
//   node webrtc_load.mjs <base-url> <name> <viewers> <seconds>
// Prints ONE JSON line: {"viewers", "connected", "receiving" (packets arriving in the last
// 2 s), "firstPacketMs": {median, p95} (offer sent → first RTP packet, from getStats polling),
// "lastViewerFirstFrameMs" (one more viewer joining under load: offer → first decoded frame),
// "packetsLost", "errors"}.
import { launchChromium } from './browser.mjs';

const [base, name, viewersArg, secondsArg] = process.argv.slice(2);
const viewers = Number(viewersArg);
const seconds = Number(secondsArg);
const browser = await launchChromium();
const errors = [];
let result = { viewers, errors };
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/publish`, { waitUntil: 'load' });
  result = await page.evaluate(async ({ name, viewers, seconds }) => {
    const url = new URL('/whep/' + name, location.href).href;
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const errors = [];
    async function viewer() {
      const v = document.createElement('video');
      v.muted = true; v.autoplay = true; v.width = 1; v.height = 1;
      document.body.appendChild(v);
      const t0 = performance.now();
      const c = await RillWebRTC.play(url, v);
      return { c, t0, firstPacket: null, firstFrame: null };
    }
    const list = [];
    for (let i = 0; i < viewers; i++) {
      try { list.push(await viewer()); } catch (e) { errors.push(e.message); }
    }
    const end = performance.now() + seconds * 1000;
    const last = new Map();
    let receiving = 0;
    while (performance.now() < end) {
      await sleep(500);
      for (const x of list) {
        const st = await x.c.stats();
        const p = st.video.packetsReceived || 0;
        if (p > 0 && x.firstPacket == null) x.firstPacket = performance.now() - x.t0;
        if ((st.video.framesDecoded || 0) > 0 && x.firstFrame == null) x.firstFrame = performance.now() - x.t0;
        x.packets = p;
        x.lost = st.video.packetsLost || 0;
      }
    }
    for (const x of list) last.set(x, x.packets);
    await sleep(2000);
    for (const x of list) {
      const st = await x.c.stats();
      if ((st.video.packetsReceived || 0) > last.get(x)) receiving += 1;
    }
    // One more viewer joining under load.
    let lastViewerFirstFrameMs = null;
    try {
      const y = await viewer();
      const until = performance.now() + 10000;
      while (performance.now() < until) {
        await sleep(20);
        const st = await y.c.stats();
        if ((st.video.framesDecoded || 0) > 0) { lastViewerFirstFrameMs = performance.now() - y.t0; break; }
      }
      y.c.stop();
    } catch (e) { errors.push('last viewer: ' + e.message); }
    const fp = list.map((x) => x.firstPacket).filter((x) => x != null).sort((a, b) => a - b);
    const q = (p) => (fp.length ? Math.round(fp[Math.min(fp.length - 1, Math.floor(fp.length * p))]) : null);
    const out = {
      viewers,
      connected: list.filter((x) => x.c.pc.connectionState === 'connected').length,
      receiving,
      firstPacketMs: { median: q(0.5), p95: q(0.95) },
      lastViewerFirstFrameMs: lastViewerFirstFrameMs && Math.round(lastViewerFirstFrameMs),
      packetsLost: list.reduce((a, x) => a + (x.lost || 0), 0),
      errors,
    };
    for (const x of list) x.c.stop();
    return out;
  }, { name, viewers, seconds });
} catch (e) {
  errors.push(`harness: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(result));
