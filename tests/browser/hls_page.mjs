// Opens mediarouter's player page for a path in headless Chromium and waits for its
// <video> to play. Usage: node hls_page.mjs PAGE_URL SECONDS SCREENSHOT.
// Prints {"currentTime", "width", "height"} (or {"error"}); exit 0 when currentTime
// reached SECONDS. The screenshot is taken either way.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, seconds = '3', screenshot] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'mediarouter-chromium-'));

const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync', '--disable-quic', '--autoplay-policy=no-user-gesture-required'],
});
let result;
try {
  const page = await context.newPage();
  const scripts = [];
  page.on('request', (r) => scripts.push(r.url()));
  await page.goto(url);
  result = await page.evaluate(async (seconds) => {
    const v = document.querySelector('video');
    if (!v) return { error: 'no video element' };
    const deadline = Date.now() + 40000;
    while (Date.now() < deadline) {
      if (v.currentTime >= seconds) {
        return { currentTime: v.currentTime, width: v.videoWidth, height: v.videoHeight,
          message: document.getElementById('message').textContent };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { error: `currentTime stuck at ${v.currentTime}`, readyState: v.readyState,
      message: document.getElementById('message').textContent };
  }, Number(seconds));
  result.offsite = scripts.filter((u) => /^(https?|wss?):/.test(u) && !u.startsWith(new URL(url).origin));
  if (screenshot) await page.screenshot({ path: screenshot });
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
process.exit(result && !result.error ? 0 : 1);
