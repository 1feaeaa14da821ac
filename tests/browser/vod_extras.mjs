// Headless Chromium probe of the video page's extras: node vod_extras.mjs <url> <lang> <timeoutSeconds>
//
// Opens <url> (a /watch/<id>?mode=hls|dash page), waits until playback started and the player
// lists its captions (window.rillWatch.captions), picks <lang> with window.rillCaptions, then
// waits until the element's text track in that language is 'showing' with cues loaded. It also
// hovers the middle of the seek bar (#timeline-range) and reads the preview (#preview: shown,
// its background image and position), and the page's download link. Prints ONE JSON line:
//   {"url", "started", "captions":[{lang,label}], "textTracks":[{language,label,mode,cues}],
//    "shown": {language,mode,cues} | null, "preview": {hidden, image, position, width, height, time} | null,
//    "download": the "Download MP4" link's URL | null,
//    "consoleErrors":[...], "offOriginRequests":[...]}
// Exit status 0 whatever the page did (judging is the caller's job); 2 if the browser could
// not be launched, 64 on bad arguments.
import { launchChromium, screenshotIfAsked, watchPage } from './browser.mjs';

const [url, lang, timeoutArg] = process.argv.slice(2);
const timeout = Number(timeoutArg);
if (!url || !lang || !Number.isFinite(timeout) || timeout <= 0) {
  console.error('usage: node vod_extras.mjs <url> <lang> <timeoutSeconds>');
  process.exit(64);
}

const browser = await launchChromium();
const consoleErrors = [];
const offOriginRequests = [];
const result = { url, started: false, captions: [], textTracks: [], shown: null, preview: null };
try {
  const page = await browser.newPage();
  watchPage(page, url, consoleErrors, offOriginRequests);
  const deadline = Date.now() + timeout * 1000;
  try {
    await page.goto(url, { waitUntil: 'load', timeout: timeout * 1000 });
  } catch (e) {
    consoleErrors.push(`goto: ${e.message}`);
  }
  let picked = false;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const s = await page.evaluate(() => window.rillWatch).catch(() => null);
    if (!s) continue;
    result.started = result.started || (s.framesDecoded > 0 && s.state === 'playing');
    result.captions = s.captions || [];
    result.textTracks = s.textTracks || [];
    if (!result.started) continue;
    if (!picked && result.captions.some((c) => c.lang === lang)) {
      await page.evaluate((l) => window.rillCaptions(l), lang);
      picked = true;
    }
    const shown = result.textTracks.find((t) => t.language === lang && t.mode === 'showing' && t.cues > 0);
    if (shown) {
      result.shown = shown;
      break;
    }
  }
  // The seek preview, when the page has a storyboard.
  const bar = await page.$('#timeline-range');
  if (bar && (await bar.isVisible())) {
    const box = await bar.boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await new Promise((r) => setTimeout(r, 500));
    result.preview = await page.evaluate(() => {
      const p = document.getElementById('preview');
      if (!p) return null;
      const style = getComputedStyle(p);
      return {
        hidden: p.hidden,
        image: style.backgroundImage,
        position: style.backgroundPosition,
        width: p.clientWidth,
        height: p.clientHeight,
        time: p.dataset.time ? Number(p.dataset.time) : null,
      };
    });
  }
  result.download = await page.evaluate(() => {
    const a = document.getElementById('download');
    return a && !document.getElementById('download-line').hidden ? a.href : null;
  });
  await screenshotIfAsked(page, consoleErrors);
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ...result, consoleErrors, offOriginRequests }));
