// Glass-to-glass latency of WHIP → Rill → WHEP in one headless Chromium (one clock):
//   node webrtc_latency.mjs <base-url> <name> <key> <seconds>
// With <key> = "-", only the viewer runs, reading the clock an ffmpeg publisher burns in
// (benches/webrtc.sh latency-rtmp: 32 bits of the wall-clock ms in a 32×8 grid, rows 0–3 the
// bits, rows 4–7 their inverse, scaled to 320×240).
// A canvas paints Date.now() as 32 black/white blocks on every frame and is published over WHIP
// (RillWebRTC.publish on the /publish page); a second page plays the stream over WHEP and, on
// every presented frame (requestVideoFrameCallback), reads the blocks back: latency = now −
// painted time. H264=<profile-level-id> makes the viewer offer only that H.264. Prints ONE JSON line: {"samples": n, "medianMs", "p95Ms", "minMs", "maxMs",
// "errors": [...]}. Decoding errors (blurred blocks) are filtered by a checksum block row.
import { launchChromium } from './browser.mjs';

const [base, name, key, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
const browser = await launchChromium();
const errors = [];
const result = { samples: 0, medianMs: null, p95Ms: null, minMs: null, maxMs: null, errors };
try {
  const pub = key === '-' ? null : await browser.newPage();
  if (pub) pub.on('pageerror', (e) => errors.push(`publisher: ${e.message}`));
  if (pub) await pub.goto(`${base}/publish`, { waitUntil: 'load' });
  if (pub) await pub.evaluate(async ({ name, key }) => {
    const W = 320, H = 240, B = 20; // 16 blocks per row: row 0 = value bits 0..15, row 1 = 16..31, row 2 = inverted row 0
    const canvas = document.createElement('canvas');
    canvas.width = W;
    canvas.height = H;
    const ctx = canvas.getContext('2d');
    function paint() {
      const v = Date.now() % 4294967296;
      ctx.fillStyle = '#808080';
      ctx.fillRect(0, 0, W, H);
      for (let i = 0; i < 32; i++) {
        const bit = Math.floor(v / 2 ** i) % 2;
        ctx.fillStyle = bit ? '#fff' : '#000';
        ctx.fillRect((i % 16) * B, Math.floor(i / 16) * B * 2, B, B * 2);
        if (i < 16) {
          ctx.fillStyle = bit ? '#000' : '#fff';
          ctx.fillRect(i * B, 4 * B, B, B * 2);
        }
      }
    }
    setInterval(paint, 10);
    paint();
    const stream = canvas.captureStream(30);
    window.pub = await RillWebRTC.publish(new URL('/whip/' + name, location.href).href, key, stream);
  }, { name, key });
  await new Promise((r) => setTimeout(r, 3000));
  const view = await browser.newPage();
  view.on('pageerror', (e) => errors.push(`viewer: ${e.message}`));
  await view.goto(`${base}/publish`, { waitUntil: 'load' }); // any page of the origin with webrtc.js
  const samples = await view.evaluate(async ({ name, seconds, grid, h264 }) => {
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.appendChild(video);
    if (h264) {
      // Offer only H.264 of this profile-level-id (e.g. 42e01f, as Firefox): the WebRTC rendition.
      const add = RTCPeerConnection.prototype.addTransceiver;
      RTCPeerConnection.prototype.addTransceiver = function (kind, init) {
        const t = add.call(this, kind, init);
        if (kind === 'video') {
          const want = (c) => /h264/i.test(c.mimeType) && (c.sdpFmtpLine || '').includes('profile-level-id=' + h264);
          t.setCodecPreferences(RTCRtpReceiver.getCapabilities('video').codecs.filter(want));
        }
        return t;
      };
    }
    await RillWebRTC.play(new URL('/whep/' + name, location.href).href, video);
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 240;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const out = [];
    const end = Date.now() + seconds * 1000;
    const B = 20;
    const read = (x, y) => ctx.getImageData(x, y, 1, 1).data[0] > 128 ? 1 : 0;
    await new Promise((resolve) => {
      function onFrame() {
        const now = Date.now();
        if (video.videoWidth) {
          ctx.drawImage(video, 0, 0, 320, 240);
          let v = 0;
          let ok = true;
          for (let i = 0; i < 32; i++) {
            if (grid) {
              // ffmpeg: bit i at column i (10 px), rows 0–3 (30 px each), inverse at rows 4–7.
              const bit = read(i * 10 + 5, 45);
              v += bit * 2 ** i;
              if (read(i * 10 + 5, 165) === bit) ok = false;
            } else {
              const bit = read((i % 16) * B + B / 2, Math.floor(i / 16) * B * 2 + B);
              v += bit * 2 ** i;
              if (i < 16 && read(i * B + B / 2, 4 * B + B) === bit) ok = false;
            }
          }
          if (ok) out.push((now % 4294967296) - v);
        }
        if (Date.now() < end) video.requestVideoFrameCallback(onFrame);
        else resolve();
      }
      video.requestVideoFrameCallback(onFrame);
      setTimeout(resolve, seconds * 1000 + 5000);
    });
    return out;
  }, { name, seconds, grid: key === '-', h264: process.env.H264 || '' });
  const good = samples.filter((x) => x >= 0 && x < 10000).sort((a, b) => a - b);
  result.samples = good.length;
  if (good.length) {
    result.medianMs = good[Math.floor(good.length / 2)];
    result.p95Ms = good[Math.min(good.length - 1, Math.floor(good.length * 0.95))];
    result.minMs = good[0];
    result.maxMs = good[good.length - 1];
  }
} catch (e) {
  errors.push(`harness: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(result));
