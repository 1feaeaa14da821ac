// Headless Chromium WHEP viewer with a chosen offer: node whep_offer.mjs <base-url> <name> <seconds>
//
// Opens a plain RTCPeerConnection on a page of <base> (no player page), offers WHEP to
// <base>/whep/<name> and samples getStats() once a second for up to <seconds>, stopping once
// video frames were decoded and audio packets received (or only audio, for an audio-only
// offer) over ENOUGH (default 3) consecutive samples. What is offered:
//   VIDEO=0            no video transceiver (an audio-only offer)
//   AUDIO=0            no audio transceiver
//   H264=<p1,p2,…>     video limited to H.264 entries whose profile-level-id is one of these
//                      (e.g. 42e01f, as Firefox offers), through setCodecPreferences
//   CODEC=<vp9|av1|h265|…>  video limited to that codec
// Prints ONE JSON line:
//   {"status": <POST status>, "error": <body when not 201> | null, "answer": <SDP> | null,
//    "offered": [<video codec lines offered>], "samples": [...], "final": {...} | null,
//    "firstFrameMs": <ms from the POST to the first decoded frame> | null, "consoleErrors": [...]}
import { launchChromium, watchPage } from './browser.mjs';

const [base, name, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!base || !name || !Number.isFinite(seconds) || seconds <= 0) {
  console.error('usage: node whep_offer.mjs <base-url> <name> <seconds>');
  process.exit(64);
}
const opts = {
  video: process.env.VIDEO !== '0',
  audio: process.env.AUDIO !== '0',
  h264: (process.env.H264 ?? '').split(',').filter(Boolean).map((s) => s.toLowerCase()),
  codec: process.env.CODEC ?? '',
  enough: Number(process.env.ENOUGH ?? 3),
  seconds,
  url: `${base}/whep/${name}`,
};

const browser = await launchChromium();
const consoleErrors = [];
let out = { status: null, error: null, answer: null, offered: [], samples: [], final: null, firstFrameMs: null };
try {
  const page = await browser.newPage();
  watchPage(page, base, consoleErrors, []);
  await page.goto(`${base}/healthz`);
  out = await page.evaluate(async (o) => {
    const r = { status: null, error: null, answer: null, offered: [], samples: [], final: null, firstFrameMs: null };
    const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
    const pc = new RTCPeerConnection();
    if (o.video) {
      const t = pc.addTransceiver('video', { direction: 'recvonly' });
      let codecs = RTCRtpReceiver.getCapabilities('video').codecs;
      const repair = codecs.filter((c) => /^video\/(rtx|red|ulpfec|flexfec-03)$/i.test(c.mimeType));
      if (o.h264.length) {
        codecs = codecs.filter((c) => /h264/i.test(c.mimeType) && o.h264.some((p) => (c.sdpFmtpLine || '').toLowerCase().includes(`profile-level-id=${p}`)));
      } else if (o.codec) {
        const want = new RegExp(`^video/${o.codec}$`, 'i');
        codecs = codecs.filter((c) => want.test(c.mimeType));
      }
      if (o.h264.length || o.codec) {
        if (!codecs.length) throw new Error(`this browser offers no such video codec: ${o.codec || o.h264}`);
        t.setCodecPreferences(codecs.concat(repair));
      }
    }
    if (o.audio) pc.addTransceiver('audio', { direction: 'recvonly' });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await new Promise((res) => {
      if (pc.iceGatheringState === 'complete') return res();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && res());
      setTimeout(res, 2000);
    });
    r.offered = pc.localDescription.sdp.split('\r\n').filter((l) => /^a=(rtpmap|fmtp):/.test(l) && !/rtx|red|ulpfec|flexfec|opus|telephone|CN|G72|PCM|ISAC|ILBC/i.test(l));
    const postedAt = Date.now();
    const resp = await fetch(o.url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    r.status = resp.status;
    const text = await resp.text();
    if (resp.status !== 201) {
      r.error = text.trim();
      pc.close();
      return r;
    }
    r.answer = text;
    const location = new URL(resp.headers.get('Location'), o.url).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: text });
    let ok = 0;
    const deadline = Date.now() + o.seconds * 1000;
    while (Date.now() < deadline) {
      await sleep(r.firstFrameMs == null && o.video ? 100 : 1000);
      const s = { t: Date.now() - postedAt, connection: pc.connectionState, video: {}, audio: {} };
      (await pc.getStats()).forEach((x) => {
        if (x.type === 'inbound-rtp' && (x.kind === 'video' || x.kind === 'audio')) {
          s[x.kind] = {
            packetsReceived: x.packetsReceived ?? 0,
            packetsLost: x.packetsLost ?? 0,
            framesDecoded: x.framesDecoded ?? null,
            frameWidth: x.frameWidth ?? null,
            frameHeight: x.frameHeight ?? null,
            decoderImplementation: x.decoderImplementation ?? null,
            keyFramesDecoded: x.keyFramesDecoded ?? null,
            codecId: x.codecId ?? null,
          };
        }
      });
      if (r.firstFrameMs == null && (s.video.framesDecoded || 0) > 0) r.firstFrameMs = s.t;
      r.samples.push(s);
      r.final = s;
      const videoOk = !o.video || (s.video.framesDecoded || 0) > 0;
      const audioOk = !o.audio || (s.audio.packetsReceived || 0) > 0;
      ok = videoOk && audioOk ? ok + 1 : 0;
      if (ok >= o.enough) break;
    }
    // The negotiated codecs, by mime type.
    const codecs = {};
    (await pc.getStats()).forEach((x) => {
      if (x.type === 'codec') codecs[x.id] = `${x.mimeType} ${x.sdpFmtpLine || ''}`.trim();
    });
    for (const k of ['video', 'audio']) if (r.final && r.final[k].codecId) r.final[k].codec = codecs[r.final[k].codecId];
    await fetch(location, { method: 'DELETE' }).catch(() => {});
    pc.close();
    return r;
  }, opts);
} catch (e) {
  consoleErrors.push(`harness: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
// The blank page's favicon request is not the server's fault.
console.log(JSON.stringify({ ...out, consoleErrors: consoleErrors.filter((e) => !e.includes('favicon.ico')) }));
