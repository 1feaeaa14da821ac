// Shared by the headless probes (play.mjs, watch.mjs): launching the system Chromium and
// collecting what a page did wrong.
import { chromium } from 'playwright-core';

// The system Chromium (CHROMIUM, default /usr/bin/chromium; no Playwright browser download),
// allowed to autoplay with sound muted, with `extraArgs` (e.g. fake camera flags). Exits with
// status 2 when it cannot be launched.
export async function launchChromium(extraArgs = []) {
  try {
    return await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio', ...extraArgs],
    });
  } catch (e) {
    console.error(`could not launch Chromium: ${e.message}`);
    process.exit(2);
  }
}

// Appends the page's console errors, uncaught exceptions and failed requests (but aborts,
// which are normal: players cancel requests when they switch or seek) to consoleErrors, and
// every request to an origin other than pageUrl's to offOriginRequests (the page must make none).
export function watchPage(page, pageUrl, consoleErrors, offOriginRequests) {
  const origin = new URL(pageUrl).origin;
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
    if (failure && !/ERR_ABORTED/.test(failure.errorText)) consoleErrors.push(`requestfailed: ${req.url()} ${failure.errorText}`);
  });
}

// SCREENSHOT=<file.png>: saves the page (failures go to consoleErrors).
export async function screenshotIfAsked(page, consoleErrors) {
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT }).catch((e) => consoleErrors.push(`screenshot: ${e.message}`));
}
