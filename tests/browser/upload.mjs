// Headless Chromium upload probe: node upload.mjs <pageUrl> <token> <file> <timeoutSeconds>
//
// Opens the /upload page, fills in the token and a title, chooses <file> and submits: the page
// uploads it with tus-js-client (8 MiB PATCHes). The PATCH that carries the middle of the file
// is cut off (the connection is reset, as a network drop does); tus-js-client then
// asks the server for its offset (HEAD) and resumes from there. Waits until the page says the
// upload is complete (window.rillUpload.state is no longer 'uploading'). Prints ONE JSON line:
//   {"state", "url", "length", "patches":[{"offset", "cut"}], "heads", "consoleErrors":[...]}
// Exit status 0 whatever happened (judging is the caller's job); 2 if Chromium cannot be
// launched, 64 on bad arguments.
import { launchChromium } from './browser.mjs';
import { statSync } from 'node:fs';

const [pageUrl, token, file, timeoutArg] = process.argv.slice(2);
const timeout = Number(timeoutArg);
if (!pageUrl || !token || !file || !Number.isFinite(timeout) || timeout <= 0) {
  console.error('usage: node upload.mjs <pageUrl> <token> <file> <timeoutSeconds>');
  process.exit(64);
}
const length = statSync(file).size;
const browser = await launchChromium();
const consoleErrors = [];
const patches = [];
let heads = 0;
let cut = false;
let result = { state: null, url: null };
try {
  const page = await browser.newPage();
  page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
  await page.route('**/api/v1/uploads/**', async (route) => {
    const request = route.request();
    if (request.method() === 'HEAD') heads += 1;
    if (request.method() !== 'PATCH') return route.continue();
    const offset = Number(request.headers()['upload-offset']);
    const cutThis = !cut && offset >= length / 2 - 8 * 1024 * 1024 && offset > 0;
    patches.push({ offset, cut: cutThis });
    if (cutThis) {
      cut = true;
      return route.abort('connectionreset');
    }
    return route.continue();
  });
  await page.goto(pageUrl, { waitUntil: 'load', timeout: timeout * 1000 });
  await page.fill('#token', token);
  await page.fill('#title', 'From Chromium');
  await page.setInputFiles('#file', file);
  await page.click('#start');
  const deadline = Date.now() + timeout * 1000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    result = await page.evaluate(() => ({ state: window.rillUpload.state, url: window.rillUpload.url, error: window.rillUpload.error }));
    if (result.state && result.state !== 'uploading' && result.state !== 'idle') break;
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ...result, length, patches, heads, consoleErrors }));
